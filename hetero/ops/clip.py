"""Clip: ``y = min(max(x, lo), hi)`` with constant bounds: attributes ``min``/``max`` (opset < 11)
or optional constant inputs 1 and 2 (opset >= 11); a missing bound is no bound. As in ONNX (and
numpy), ``lo > hi`` gives ``hi`` everywhere.

Typed: a saturation in the raw domain, the type (and scale, zero point) passing through. Each
bound becomes the raw value of the tensor's type nearest to it by the type's own rounding mode
(:func:`raw_value`); for values of that type the result is then exactly the real clip quantized
with that rounding. Hardware: a saturation per lane, one register stage (:class:`~hetero.hw.lanes.LaneMap`)."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Mux

from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize
from hetero.hw.lanes import LaneMap, stream_cycles, stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.ir.graph import Tensor
from hetero.ops.onnx_context import attr, describe
from hetero.ops.base import Op, register
from hetero.ops.reshape import mark_integer, pass_type


def raw_value(value: float, t: Tensor) -> int:
    """The raw integer of the typed tensor ``t`` for the real number ``value`` (for an
    ``integer`` tensor, ``value`` is already in its integers), rounded with ``t``'s rounding
    mode and saturated to its range."""
    if t.integer:
        q = np.floor(np.clip(float(value), -2.0**61, 2.0**61) + 0.5)
        return int(np.clip(q, t.dtype.min_raw, t.dtype.max_raw))
    wide = FixedType(62, 62 - t.dtype.frac_bits, True, t.dtype.rounding, "SAT")
    q = int(quantize(np.float64(value) / (1.0 if t.scale is None else t.scale), wide))
    return int(np.clip(q + t.zero_point, t.dtype.min_raw, t.dtype.max_raw))


def _bound(node, ctx, index: int, name: str) -> float | None:
    value = attr(node, name)
    if value is not None:
        return float(value)
    if len(node.input) > index and node.input[index]:
        v = np.asarray(ctx.const(node, index, name), dtype=np.float64)
        if v.size != 1:
            raise UserError(f"{describe(node)}: {name} must be a scalar, got shape {list(v.shape)}")
        return float(v.reshape(-1)[0])
    return None


class Clip(Op):
    name = "Clip"
    onnx_ops = ("Clip",)
    moves_values = True

    def clip_bounds(self, node):
        return node.attrs["min"], node.attrs["max"]

    def host_float(self, node) -> bool:
        return True

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        lo, hi = _bound(node, ctx, 1, "min"), _bound(node, ctx, 2, "max")
        ctx.add(node, self.name, [x], [node.output[0]], [ctx.shape(x)], attrs={"min": lo, "max": hi})
        mark_integer(ctx, node.output[0], x)

    def assign_types(self, node, inputs, outputs, cfg):
        t = inputs[0]
        lo, hi = node.attrs["min"], node.attrs["max"]
        node = node.evolve(attrs={"raw_min": t.dtype.min_raw if lo is None else raw_value(lo, t),
                                  "raw_max": t.dtype.max_raw if hi is None else raw_value(hi, t)})
        return node, [pass_type(outputs[0], t)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        if graph.tensors[node.inputs[0]].dtype is None:
            lo, hi = node.attrs["min"], node.attrs["max"]
            y = x if lo is None else np.maximum(x, lo)
            return [y if hi is None else np.minimum(y, hi)]
        return [np.minimum(np.maximum(x, node.attrs["raw_min"]), node.attrs["raw_max"])]

    def hardware(self, node, graph):
        t = graph.tensors[node.inputs[0]]
        lo, hi = node.attrs["raw_min"], node.attrs["raw_max"]
        lanes = stream_layout(graph, node.inputs[0]).lanes

        def clip(x, k):
            y = Mux(x < lo, lo, x)
            return Mux(y > hi, hi, y)

        return LaneMap(shape_of(t.dtype), shape_of(t.dtype), lanes, clip)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_activation.h ``clip`` on raw values."""
        from hetero.hw.hls_binding import HlsCall

        t = graph.tensors[node.inputs[0]]
        return HlsCall("clip", "hetero_activation.h",
                       {"n": t.size, "lo": node.attrs["raw_min"], "hi": node.attrs["raw_max"]})


register(Clip())
