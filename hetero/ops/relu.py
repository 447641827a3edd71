"""Relu: ``y = requant(x) if x > 0 else 0`` (the comparison is on the input, as in hls4ml).
On a model quantizer's integers (a scale or a zero point) it is ``max(x, zero_point)`` and the
type passes through. Hardware: :class:`~hetero.hw.lanes.LaneMap`, one register stage per beat."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Mux

from hetero.ir.fixed import requantize
from hetero.hw.lanes import LaneMap, stream_cycles, stream_layout
from hetero.hw.fixed_hw import requantize as hw_requantize
from hetero.hw.fixed_hw import shape_of
from hetero.ops.base import Op, register


class Relu(Op):
    name = "Relu"
    onnx_ops = ("Relu",)
    layer_types = ("Activation", "ReLU")
    is_relu = True
    moves_values = True

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
        lanes = stream_layout(graph, node.inputs[0]).lanes
        if t_in.scale is not None or t_in.zero_point:
            z = t_in.zero_point
            return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype), lanes,
                           lambda x, k: Mux(x > z, x, z))
        return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype), lanes,
                       lambda x, k: Mux(x > 0, hw_requantize(x, t_in.dtype.frac_bits, t_out.dtype), 0))

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_activation.h ``relu``."""
        from hetero.hw.hls_binding import HlsCall

        t = graph.tensors[node.inputs[0]]
        if t.dtype is None:
            return None
        return HlsCall("relu", "hetero_activation.h", {"n": t.size, "zero_point": t.zero_point,
                                                       "centre": t.scale is not None or bool(t.zero_point)})


register(Relu())
