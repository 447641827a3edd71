"""Relu: ``y = requant(x) if x > 0 else 0`` (the comparison is on the input, as in hls4ml).
Hardware: combinational, no cycles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..fixed import FixedType, requantize
from ..hw.fixed_hw import requantize as hw_requantize
from ..hw.fixed_hw import vector_stream
from .base import Cycles, Op, register


class Relu(Op):
    name = "Relu"
    onnx_ops = ("Relu",)
    layer_types = ("Activation", "ReLU")

    def import_onnx(self, node, ctx) -> None:
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [ctx.shape(node.input[0])])

    def assign_types(self, node, inputs, outputs, cfg):
        t = inputs[0]
        if t.scale is not None or t.zero_point:  # a model quantizer's integers: keep their type
            return node, [replace(outputs[0], dtype=t.dtype, scale=t.scale, zero_point=t.zero_point)]
        return node, [replace(outputs[0], dtype=cfg.type_of("result"))]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t = graph.tensors[node.inputs[0]]
        t_in = t.dtype
        if t_in is None:
            return [np.maximum(x, 0.0)]
        if t.scale is not None or t.zero_point:
            return [np.maximum(x, t.zero_point)]
        y = requantize(x, t_in.frac_bits, graph.tensors[node.outputs[0]].dtype)
        return [np.where(x > 0, y, 0)]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if t_in.scale is not None or t_in.zero_point:
            raise UserError(f"{node.source}: no hardware yet for ReLU on a model quantizer's scale")
        return ReluHW(t_in.dtype, t_out.dtype, t_in.size)

    def cycles(self, node, graph):
        return Cycles(0, 1)


class ReluHW(wiring.Component):
    """Combinational ReLU with requantization on a vector stream."""

    def __init__(self, t_in: FixedType, t_out: FixedType, n: int):
        self.t_in, self.t_out, self.n = t_in, t_out, n
        super().__init__({"i": In(vector_stream(t_in, n)), "o": Out(vector_stream(t_out, n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for k in range(self.n):
            x = self.i.payload[k]
            y = hw_requantize(x, self.t_in.frac_bits, self.t_out)
            m.d.comb += self.o.payload[k].eq(Mux(x > 0, y, 0))
        return m


register(Relu())
