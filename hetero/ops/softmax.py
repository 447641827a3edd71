"""Softmax and LogSoftmax. In float mode the reference computes the real (log-)softmax over the
node's per-inference axes (``attrs["axes"]``): one axis from opset 13, and from opset 1 to 12 the
axes from ``axis`` to the last (those opsets flatten the input to 2-D at ``axis``); ``axis`` may
be any per-inference axis, never the batch axis. ``attrs["log"]``: LogSoftmax.

In fixed point the only strategy so far is ``argmax`` (config ``Strategy: argmax``, the default),
over the last axis only: (log-)softmax is monotonic, so the hardware outputs the index of the
largest logit (the first one on ties, like numpy.argmax) and the reference does the same; the
output has shape ``shape[:-1] + (1,)``. Reports say so.
Hardware (a vector input): a comparison chain, registered: latency 1, interval 1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..fixed import FixedType
from ..hw.fixed_hw import vector_stream
from ..onnx_import import attr
from .base import Cycles, Op, register
from .reshape import inference_axis, onnx_opset


def index_type(n: int) -> FixedType:
    bits = max(1, int(np.ceil(np.log2(n))))
    return FixedType(bits, bits, signed=False)


class Softmax(Op):
    name = "Softmax"
    onnx_ops = ("Softmax", "LogSoftmax")
    layer_types = ("Softmax", "Activation")
    hardware_note = "Softmax is implemented as argmax in hardware: the output is the class index"

    def import_onnx(self, node, ctx) -> None:
        shape = ctx.shape(node.input[0])
        rank = len(shape)
        if onnx_opset(ctx) < 13:
            axis = inference_axis(node, attr(node, "axis", 1), rank)
            axes = tuple(range(axis, rank))
        else:
            axes = (inference_axis(node, attr(node, "axis", -1), rank),)
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [shape],
                attrs={"axes": axes, "log": node.op_type == "LogSoftmax"})

    def assign_types(self, node, inputs, outputs, cfg):
        spec = node.attrs.get("out_spec")
        if spec is not None:  # quantized probabilities (QDQ models): the exact function, quantized
            dtype, scale, zero = spec.ir_type()
            return node.evolve(attrs={"strategy": "exact"}), [replace(
                outputs[0], dtype=dtype, scale=scale, zero_point=zero, integer=spec.kind == "linear")]
        strategy = cfg.strategy or "argmax"
        if strategy != "argmax":
            raise UserError(f"{node.source}: Softmax Strategy '{strategy}' not supported; use argmax")
        shape = inputs[0].shape
        if tuple(node.attrs.get("axes", (len(shape) - 1,))) != (len(shape) - 1,):
            raise UserError(f"{node.source}: in fixed point, softmax is computed as argmax over the "
                            f"last axis only; this one normalizes per-inference axes "
                            f"{list(node.attrs['axes'])} of {list(shape)}")
        out_shape = shape[:-1] + (1,)
        return node.evolve(attrs={"strategy": "argmax"}), [replace(outputs[0], shape=out_shape,
                                                                   dtype=index_type(shape[-1]))]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        spec = node.attrs.get("out_spec")
        if t_in.dtype is None or spec is not None:
            if t_in.dtype is not None:
                x = t_in.to_real(x)
            rank = len(graph.tensors[node.inputs[0]].shape)
            axes = tuple(a + 1 for a in node.attrs.get("axes", (rank - 1,)))
            shifted = x - x.max(axis=axes, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=axes, keepdims=True)
            y = shifted - np.log(total) if node.attrs.get("log") else e / total
            if spec is not None:  # the model's quantizer that followed, fused by fuse_epilogues
                if t_in.dtype is None:
                    return [spec.integers(y) if spec.kind == "linear" else spec.fake(y)]
                return [spec.integers(y).astype(np.int64)]
            return [y]
        return [np.argmax(x, axis=-1).astype(np.int64)[..., None]]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if node.attrs.get("strategy") != "argmax":
            raise UserError(f"{node.source}: no hardware yet for softmax probabilities (only argmax)")
        if len(t_in.shape) != 1:
            raise UserError(f"{node.source}: no hardware yet for argmax over the last axis of a "
                            f"{len(t_in.shape)}-D tensor {list(t_in.shape)}; only over a vector")
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
