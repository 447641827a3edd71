"""LeakyRelu: ``y = x`` for ``x >= 0``, ``y = alpha * x`` below (``alpha`` default 0.01).

Typed: the output type is the config's ``result``. Both branches are exact integer
requantizations of the centred input ``x - zero_point`` (:func:`~hetero.ir.quant.requant_to_fixed`,
the output type's rounding and overflow): the positive one by the ratio of the scales (a shift
for plain fixed point), the negative one by ``alpha`` times that ratio, ``alpha`` taken as an
integer multiplier of :data:`~hetero.ir.quant.MULT_BITS` significant bits (exact when ``alpha`` is a
power of two). The branch is chosen on the sign of the input.

Hardware: both requantizations (:func:`~hetero.hw.requant_hw.requant_expr`) and a multiplexer per
lane, one register stage (:class:`~hetero.hw.lanes.LaneMap`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from amaranth.hdl import Mux

from hetero.hw.lanes import LaneMap, stream_cycles, stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_expr
from hetero.ops.onnx_context import attr
from hetero.ir.quant import requant_to_fixed
from hetero.ops.base import Op, register


class LeakyRelu(Op):
    name = "LeakyRelu"
    onnx_ops = ("LeakyRelu",)
    layer_types = ("Activation", "LeakyReLU")

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        ctx.add(node, self.name, [x], [node.output[0]], [ctx.shape(x)],
                attrs={"alpha": float(np.float32(attr(node, "alpha", 0.01)))})  # ONNX: float32

    def assign_types(self, node, inputs, outputs, cfg):
        t_in, t_out = inputs[0], cfg.type_of("result")
        ratio = t_in.real_scale / t_out.lsb
        bits = t_in.dtype.width + 1
        node = node.evolve(attrs={"pos": requant_to_fixed(ratio, 0.0, t_out, in_bits=bits),
                                  "neg": requant_to_fixed(ratio * node.attrs["alpha"], 0.0, t_out, in_bits=bits)})
        return node, [replace(outputs[0], dtype=t_out, scale=None, zero_point=0, integer=False)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return [np.where(x >= 0, x, node.attrs["alpha"] * x)]
        c = np.asarray(x, dtype=np.int64) - t_in.zero_point
        return [np.where(c >= 0, node.attrs["pos"](c), node.attrs["neg"](c))]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        pos, neg, z = node.attrs["pos"], node.attrs["neg"], t_in.zero_point

        def leaky(x, k):
            c = x - z if z else x
            return Mux(c >= 0, requant_expr(c, pos), requant_expr(c, neg))

        return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype),
                       stream_layout(graph, node.inputs[0]).lanes, leaky)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def macs(self, node, graph) -> int:
        return graph.tensors[node.outputs[0]].size

    def hls(self, node, graph):
        """hetero_activation.h ``leaky_relu`` with the two requantizations of the reference."""
        from hetero.hw.hls_binding import HlsCall, requant_config

        t = graph.tensors[node.inputs[0]]
        pos, pos_arrays = requant_config(node.attrs["pos"], "pos_")
        neg, neg_arrays = requant_config(node.attrs["neg"], "neg_")
        return HlsCall("leaky_relu", "hetero_activation.h", {"n": t.size, "zero_point": t.zero_point},
                       nested={"pos": pos, "neg": neg}, arrays=pos_arrays + neg_arrays)


register(LeakyRelu())
