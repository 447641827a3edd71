"""Softmax at the end of a classifier. In float mode the reference computes the real softmax;
in fixed point the only strategy so far is ``argmax`` (config ``Strategy: argmax``, the default):
softmax is monotonic, so the hardware outputs the index of the largest logit (the first one on
ties, like numpy.argmax) and the reference does the same. Reports say so.
Hardware: a comparison chain, registered: latency 1, interval 1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..fixed import FixedType
from ..hw.fixed_hw import vector_stream
from ..onnx_import import attr, describe
from .base import Cycles, Op, register


def index_type(n: int) -> FixedType:
    bits = max(1, int(np.ceil(np.log2(n))))
    return FixedType(bits, bits, signed=False)


class Softmax(Op):
    name = "Softmax"
    onnx_ops = ("Softmax",)
    layer_types = ("Softmax", "Activation")
    hardware_note = "Softmax is implemented as argmax in hardware: the output is the class index"

    def import_onnx(self, node, ctx) -> None:
        shape = ctx.shape(node.input[0])
        axis = attr(node, "axis", -1)
        if len(shape) != 1 or axis not in (1, -1):
            raise UserError(f"{describe(node)}: only softmax over a vector (axis 1 of [batch, n]) "
                            f"is supported, got shape {list(shape)} axis {axis}")
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [shape])

    def assign_types(self, node, inputs, outputs, cfg):
        strategy = cfg.strategy or "argmax"
        if strategy != "argmax":
            raise UserError(f"{node.source}: Softmax Strategy '{strategy}' not supported; use argmax")
        n = inputs[0].size
        return node.evolve(attrs={"strategy": "argmax"}), [replace(outputs[0], shape=(1,), dtype=index_type(n))]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        if graph.tensors[node.inputs[0]].dtype is None:
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return [e / e.sum(axis=-1, keepdims=True)]
        return [np.argmax(x, axis=-1).astype(np.int64)[:, None]]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        return ArgmaxHW(t_in.dtype, t_in.size, t_out.dtype)

    def cycles(self, node, graph):
        return Cycles(1, 1)


class ArgmaxHW(wiring.Component):
    def __init__(self, t_in: FixedType, n: int, t_out: FixedType):
        self.n = n
        super().__init__({"i": In(vector_stream(t_in, n)), "o": Out(vector_stream(t_out, 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        best_val, best_idx = self.i.payload[0], 0
        for k in range(1, self.n):
            better = self.i.payload[k] > best_val
            best_val = Mux(better, self.i.payload[k], best_val)
            best_idx = Mux(better, k, best_idx)
        with m.If(en):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload[0].eq(best_idx)]
        return m


register(Softmax())
