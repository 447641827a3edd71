"""PRelu: ``y = x`` for ``x >= 0``, ``y = slope * x`` below, ``slope`` a constant that broadcasts
to the input (ONNX's unidirectional broadcasting: one value, one per channel, or one per element).

Import: ``slope`` must be a constant (an initializer) and may not vary along the batch axis; it
is kept per inference, broadcastable to the input's per-inference shape (``params["slope"]``).

Typed: the output type is the config's ``result``. Both branches are exact integer
requantizations of the centred input ``x - zero_point`` (:func:`~hetero.ir.quant.requant_to_fixed`,
the output type's rounding and overflow): the positive one by the ratio of the scales, the
negative one by ``slope`` times that ratio, per element (``attrs["neg"]``'s multiplier has the
slope's shape; ``slope`` taken with :data:`~hetero.ir.quant.MULT_BITS` significant bits, exact
when it is a power of two). The branch is chosen on the sign of the input.
:class:`~hetero.ops.leaky_relu.LeakyRelu` is this op with one slope.

Hardware: both requantizations (:func:`~hetero.hw.requant_hw.requant_expr`) and a multiplexer per
lane, the negative one with its lane's slope, in one register stage
(:class:`~hetero.hw.lanes.LaneMap`); a slope that varies along the spatial axes of an image
(not per channel) has no hardware (UserError naming the node). HLS: hetero_activation.h
``leaky_relu`` with one negative multiplier per element.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Mux

from hetero.errors import UserError
from hetero.hw.fixed_hw import shape_of
from hetero.hw.lanes import LaneMap, lane_requants, stream_cycles, stream_layout
from hetero.hw.requant_hw import requant_expr
from hetero.ir.quant import requant_to_fixed
from hetero.ops.base import Op, register
from hetero.ops.onnx_context import describe


class PRelu(Op):
    name = "PRelu"
    onnx_ops = ("PRelu",)
    layer_types = ("Activation", "PReLU")

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        shape = ctx.shape(x)
        slope = np.asarray(ctx.const(node, 1, "slope"), dtype=np.float64)
        while slope.ndim > len(shape):  # the batch axis (and any above): must be 1
            if slope.shape[0] != 1:
                raise UserError(f"{describe(node)}: slope of shape {list(slope.shape)} varies along the "
                                f"batch axis of the input (per-inference shape {list(shape)})")
            slope = slope[0]
        try:
            np.broadcast_to(slope, shape)
        except ValueError:
            raise UserError(f"{describe(node)}: slope of shape {list(slope.shape)} does not broadcast "
                            f"to the per-inference shape {list(shape)}") from None
        ctx.add(node, self.name, [x], [node.output[0]], [shape], params={"slope": slope})

    def assign_types(self, node, inputs, outputs, cfg):
        t_in, t_out = inputs[0], cfg.type_of("result")
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        ratio = t_in.real_scale / t_out.lsb
        bits = t_in.dtype.width + 1
        slope = node.params["slope"]
        neg_ratio = ratio * float(slope.reshape(-1)[0]) if slope.size == 1 else ratio * slope
        node = node.evolve(attrs={"pos": requant_to_fixed(ratio, 0.0, t_out, in_bits=bits),
                                  "neg": requant_to_fixed(neg_ratio, 0.0, t_out, in_bits=bits)})
        return node, [replace(outputs[0], dtype=t_out, scale=None, zero_point=0, integer=False)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return [np.where(x >= 0, x, node.params["slope"] * x)]
        c = np.asarray(x, dtype=np.int64) - t_in.zero_point
        return [np.where(c >= 0, node.attrs["pos"](c), node.attrs["neg"](c))]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        layout = stream_layout(graph, node.inputs[0])
        pos, z = node.attrs["pos"], t_in.zero_point
        negs = lane_requants(node.attrs["neg"], t_in.shape, layout, node)

        def prelu(x, k):
            c = x - z if z else x
            return Mux(c >= 0, requant_expr(c, pos), requant_expr(c, negs[k]))

        return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype), layout.lanes, prelu)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def macs(self, node, graph) -> int:
        return graph.tensors[node.outputs[0]].size

    def hls(self, node, graph):
        """hetero_activation.h ``leaky_relu`` with the two requantizations of the reference, the
        negative one per element where the slope varies."""
        from hetero.hw.hls_binding import HlsCall, requant_config

        t = graph.tensors[node.inputs[0]]
        if t.dtype is None:
            return None
        pos, pos_arrays = requant_config(node.attrs["pos"], "pos_")
        neg, neg_arrays = requant_config(node.attrs["neg"], "neg_", shape=t.shape)
        return HlsCall("leaky_relu", "hetero_activation.h", {"n": t.size, "zero_point": t.zero_point},
                       nested={"pos": pos, "neg": neg}, arrays=pos_arrays + neg_arrays)


register(PRelu())
