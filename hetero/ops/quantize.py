"""The model's own quantizers: QONNX ``Quant``, ``BipolarQuant`` and ``Trunc`` (domains
``qonnx.custom_op.general``, ``finn.custom_op.general`` and the older ``onnx.brevitas``) and ONNX
``QuantizeLinear`` / ``DequantizeLinear``.

On a constant (weights) a quantizer folds at import and leaves the integers and scale behind for
the layer that uses them. On a computed tensor it becomes a ``Quantize`` node whose output type
is the quantizer's (integers, a real scale, a zero point); ``DequantizeLinear`` of such a tensor
is a ``Dequantize`` node that changes only the meaning (raw integers to real values), never the
bits. A ``Quantize`` that follows a dense or convolution layer is fused into that layer's output
requantization by the ``fuse_epilogues`` pass.

Reference, float mode: each format's own definition (``QuantSpec.fake`` / ``integers``, in
float32 like onnxruntime and qonnx). Typed mode: an exact integer :class:`~hetero.ir.quant.Requant`
from the input's real scale to the quantizer's (bit-exact to the definition whenever the ratio of
scales is a power of two, the usual case; otherwise a 24-bit multiplier).

Hardware (a ``Quantize`` of a computed, typed tensor that no layer absorbed): that requantization
per lane (:func:`~hetero.hw.requant_hw.requant_unit`: comparators for at most 16 output levels,
else a constant multiplier; a sign test for bipolar), one register stage. A quantizer of real
graph inputs runs on the host. ``Dequantize`` is a wire.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from amaranth.hdl import Mux

from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.hw.lanes import LaneMap, Passthrough, centred_range, stream_cycles, stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_unit
from hetero.ops.onnx_context import attr, describe
from hetero.ir.quant import QuantSpec, _pow2_exponent, make_requant, rounding_name
from hetero.ops.base import Op, register

_QL_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127),
              np.dtype(np.uint16): (0, 65535), np.dtype(np.int16): (-32768, 32767),
              np.dtype(np.int32): (-(1 << 31), (1 << 31) - 1)}


def _scalar(ctx, node, index: int, what: str) -> float:
    v = np.asarray(ctx.const(node, index, what), dtype=np.float64)
    if v.size != 1:
        raise UserError(f"{describe(node)}: {what} must be a scalar, got shape {list(v.shape)}")
    return float(v.reshape(-1)[0])


def _channel_shape(v: np.ndarray, axis: int | None, rank: int) -> np.ndarray:
    """A per-channel vector reshaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0 or v.size == 1 or axis is None:
        return v.reshape(()) if v.size == 1 else v
    if v.ndim == 1:
        shape = [1] * rank
        shape[axis % rank] = v.size
        return v.reshape(shape)
    return v


def spec_of(node, ctx, rank: int) -> QuantSpec:
    """The :class:`QuantSpec` of a quantizer node whose parameters are constants."""
    op = node.op_type
    if op == "BipolarQuant":
        scale = np.asarray(ctx.const(node, 1, "scale"), dtype=np.float64)
        return QuantSpec("bipolar", scale, np.zeros(()), -1, 1)
    if op in ("Quant", "Trunc"):
        scale = np.asarray(ctx.const(node, 1, "scale"), dtype=np.float64)
        zero = np.asarray(ctx.const(node, 2, "zero point"), dtype=np.float64)
        if op == "Quant":
            bits = _scalar(ctx, node, 3, "bit width")
        else:
            bits = _scalar(ctx, node, 5 if len(node.input) > 5 else 4, "output bit width")
        if bits != int(bits) or not 1 <= bits <= 32:
            raise UserError(f"{describe(node)}: bit width {bits} is not an integer in 1..32")
        bits = int(bits)
        signed, narrow = bool(attr(node, "signed", 1)), bool(attr(node, "narrow", 0))
        default_rounding = "FLOOR" if op == "Trunc" else "ROUND"
        mode = attr(node, "rounding_mode", default_rounding)
        mode = mode.decode() if isinstance(mode, bytes) else mode
        try:
            rounding = rounding_name(mode)
        except ValueError as e:
            raise UserError(f"{describe(node)}: {e}") from None
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            raise UserError(f"{describe(node)}: scale must be positive and finite")
        if np.any(zero != np.round(zero)):
            raise UserError(f"{describe(node)}: zero point must be an integer")
        if np.any(np.abs(zero) > 2.0 ** bits):
            raise UserError(f"{describe(node)}: zero point {float(np.max(np.abs(zero))):g} is beyond "
                            f"the {bits}-bit integers' range")
        if op == "Trunc":
            in_bits = _scalar(ctx, node, 3, "input bit width")
            if len(node.input) > 5:
                out_scale = np.asarray(ctx.const(node, 4, "output scale"), dtype=np.float64)
            else:
                out_scale = scale * 2.0 ** (in_bits - bits)
            lo, hi = _int_range(bits, signed, narrow)
            return QuantSpec("trunc", out_scale, zero / (out_scale / scale), lo, hi, rounding,
                             in_scale=scale)
        if bits == 1 and signed:
            return QuantSpec("bipolar", scale, np.zeros(()), -1, 1)
        lo, hi = _int_range(bits, signed, narrow)
        return QuantSpec("int", _channel_shape(scale, None, rank), zero, lo, hi, rounding)
    # QuantizeLinear / DequantizeLinear
    scale = np.asarray(ctx.const(node, 1, "scale"), dtype=np.float64)
    if len(node.input) > 2 and node.input[2]:
        zp_raw = np.asarray(ctx.const(node, 2, "zero point"))
    else:
        zp_raw = np.zeros((), dtype=np.uint8)
    if zp_raw.dtype not in _QL_RANGES:
        raise UserError(f"{describe(node)}: zero point type {zp_raw.dtype} not supported "
                        f"(int8, uint8, int16, uint16, int32)")
    lo, hi = _QL_RANGES[zp_raw.dtype]
    axis = attr(node, "axis", 1)
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise UserError(f"{describe(node)}: scale must be positive and finite")
    return QuantSpec("linear", _channel_shape(scale, axis, rank), _channel_shape(zp_raw, axis, rank),
                     lo, hi, "HALF_EVEN", axis=axis)


def _computed_input(node, ctx) -> tuple[str, tuple[int, ...], QuantSpec]:
    """The input, its shape and the (per-tensor) spec of a quantizer of a computed tensor."""
    x = node.input[0]
    shape = ctx.shape(x)
    spec = spec_of(node, ctx, len(shape) + 1)
    if not spec.per_tensor:
        raise UserError(f"{describe(node)}: per-channel (de)quantization of a computed tensor is not "
                        "supported (only of constant weights): IR tensors carry one scale")
    return x, shape, spec


def _int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - (1 if narrow else 0)


class Quantize(Op):
    name = "Quantize"
    onnx_ops = ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear")
    layer_types = ("Quant", "QuantizeLinear")
    hardware_note = "fused into the producing layer's requantization where it follows one"

    def quantizer(self, node):
        return node.attrs["spec"]

    def fuse_clip(self, node, clip, lo, hi):
        """A linear quantizer narrowed to the integers in ``[lo, hi]`` (how qonnx's QCDQ form
        writes bit widths below 8: QuantizeLinear -> Clip(-4, 3) -> DequantizeLinear)."""
        spec = node.attrs["spec"]
        if spec.kind != "linear":
            return None
        lo = spec.qmin if lo is None else max(spec.qmin, math.ceil(lo))
        hi = spec.qmax if hi is None else min(spec.qmax, math.floor(hi))
        if lo > hi:
            raise UserError(f"{clip.source}: clips the integers of {node.source} to an empty range")
        return node.evolve(outputs=clip.outputs, attrs={"spec": replace(spec, qmin=lo, qmax=hi)},
                           source=f"{node.source} + {clip.source}")

    def fold(self, node, ctx, values):
        rank = np.asarray(values[0]).ndim
        spec = spec_of(node, ctx, rank)
        x = np.asarray(values[0], dtype=np.float64)
        q = spec.integers(x)
        value = q if spec.kind == "linear" else spec.fake(x)
        scale = np.broadcast_to(spec.scale, x.shape).astype(np.float64)
        if spec.kind == "linear":
            dtype = np.int8 if spec.qmin < 0 else np.uint8
            value = q.astype(dtype) if spec.qmax <= 255 and spec.qmin >= -128 else q.astype(np.int32)
        else:
            ctx.quant_consts[node.output[0]] = (q - np.broadcast_to(spec.zero_point, x.shape), scale, spec)
        return [value]

    def import_onnx(self, node, ctx) -> None:
        x, shape, spec = _computed_input(node, ctx)
        out = node.output[0]
        ctx.add(node, self.name, [x], [out], [shape], attrs={"spec": spec})
        if spec.kind == "linear":
            ctx.integer.add(out)

    def assign_types(self, node, inputs, outputs, cfg):
        spec: QuantSpec = node.attrs["spec"]
        dtype, scale, zero = spec.ir_type()
        out = replace(outputs[0], dtype=dtype, scale=scale, zero_point=zero)
        t_in = inputs[0]
        if t_in.dtype is not None and spec.kind != "bipolar":
            ratio = t_in.real_scale / out.real_scale
            offset = float(spec.zero_point) if spec.kind in ("int", "trunc") else 0.0
            zero_after = int(spec.zero_point) if spec.kind == "linear" else 0
            rq = make_requant(ratio, offset, spec.qmin, spec.qmax, spec.rounding, zero_after,
                              in_bits=t_in.dtype.width + 1)
            node = node.evolve(attrs={"requant": rq})
        return node, [out]

    def reference(self, node, graph, inputs):
        spec: QuantSpec = node.attrs["spec"]
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        t_out = graph.tensors[node.outputs[0]]
        if t_out.dtype is None:  # float mode: the format's own definition
            return [spec.integers(x) if spec.kind == "linear" else spec.fake(x)]
        if t_in.dtype is None:  # a graph input arriving as real numbers
            return [spec.integers(x).astype(np.int64)]
        centred = x.astype(np.int64) - t_in.zero_point
        if spec.kind == "bipolar":
            return [np.where(centred >= 0, 1, -1).astype(np.int64)]
        return [node.attrs["requant"](centred)]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: quantizes the real graph input; that runs on the host")
        lanes = stream_layout(graph, node.inputs[0]).lanes
        lo, hi, z = *centred_range(t_in), t_in.zero_point
        if node.attrs["spec"].kind == "bipolar":
            fn = lambda x, k: Mux(x >= z, 1, -1)  # noqa: E731
        else:
            rq = node.attrs["requant"]
            fn = lambda x, k: requant_unit(x - z if z else x, rq, 0, lo, hi)  # noqa: E731
        return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype), lanes, fn)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_elementwise.h ``requant_map``: the quantizer's requantization (or sign)."""
        from hetero.hw.hls_binding import HlsCall, no_requant, requant_config

        t = graph.tensors[node.inputs[0]]
        if t.dtype is None:
            return None
        bipolar = node.attrs["spec"].kind == "bipolar"
        rq, arrays = no_requant() if bipolar else requant_config(node.attrs["requant"])
        return HlsCall("requant_map", "hetero_elementwise.h",
                       {"n": t.size, "zero_point": t.zero_point, "bipolar": bipolar}, nested={"rq": rq},
                       arrays=arrays)


class Dequantize(Op):
    name = "Dequantize"
    onnx_ops = ("DequantizeLinear",)
    hardware_note = "a wire: only the meaning of the integers changes"

    def fold(self, node, ctx, values):
        q = np.asarray(values[0])
        spec = spec_of(node, ctx, q.ndim)
        value = spec.dequantize(q).astype(np.float32)
        ints = q.astype(np.float64) - np.broadcast_to(spec.zero_point, q.shape)
        ctx.quant_consts[node.output[0]] = (ints, np.broadcast_to(spec.scale, q.shape).astype(np.float64), spec)
        return [value]

    def import_onnx(self, node, ctx) -> None:
        x, shape, spec = _computed_input(node, ctx)
        ctx.add(node, self.name, [x], [node.output[0]], [shape], attrs={"spec": spec})

    def assign_types(self, node, inputs, outputs, cfg):
        spec: QuantSpec = node.attrs["spec"]
        t_in = inputs[0]
        s, z = float(spec.scale), int(spec.zero_point)
        out = replace(outputs[0], dtype=t_in.dtype, scale=t_in.scale, zero_point=t_in.zero_point,
                      integer=False)
        if abs(t_in.real_scale - s) <= 1e-9 * s and t_in.zero_point == z:
            return node, [out]  # the integers of a Quantize with the same scale
        if t_in.scale is None and t_in.dtype.frac_bits == 0 and t_in.zero_point == 0:
            # plain integers (an integer graph input): the same bits, now meaning (q - z) * s
            e = _pow2_exponent(s)
            if e is not None and z == 0:
                dtype = FixedType(t_in.dtype.width, t_in.dtype.width + e, t_in.dtype.signed)
                return node, [replace(out, dtype=dtype)]
            return node, [replace(out, scale=s, zero_point=z)]
        raise UserError(f"{node.source}: dequantizes with scale {s:g} and zero point {z}, but its "
                        f"input has scale {t_in.real_scale:g} and zero point {t_in.zero_point}")

    def reference(self, node, graph, inputs):
        if graph.tensors[node.outputs[0]].dtype is None:
            return [node.attrs["spec"].dequantize(inputs[0])]
        return [inputs[0]]

    def hardware(self, node, graph):
        t = graph.tensors[node.inputs[0]]
        return Passthrough(t.dtype, stream_layout(graph, node.inputs[0]).lanes)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats, 0)

    def hls(self, node, graph):
        """hetero_movement.h ``copy``: the bits pass unchanged."""
        from hetero.hw.hls_binding import HlsCall

        return HlsCall("copy", "hetero_movement.h", {"n": graph.tensors[node.inputs[0]].size})

    def resources(self, node, graph, family="xc7"):
        """Wires (:class:`~hetero.hw.lanes.Passthrough`): nothing."""
        from hetero.hw.cost import Resources

        return Resources()

class Threshold(Op):
    """``GreaterOrEqual(x, t)`` feeding ``Where(c, a, b)`` with constants: how qonnx's QCDQ
    conversion writes a bipolar quantizer (``a = s``, ``b = -s``, ``t = 0``). The comparison
    alone makes no node; the Where becomes a bipolar ``Quantize``."""

    name = "Threshold"
    onnx_ops = ("GreaterOrEqual", "Where")

    def import_onnx(self, node, ctx) -> None:
        if node.op_type == "GreaterOrEqual":
            if not ctx.is_const(node.input[1]) or ctx.is_const(node.input[0]):
                raise UserError(f"{describe(node)}: only a comparison of a tensor with a constant "
                                "(as in a bipolar quantizer) is supported")
            ctx.predicates[node.output[0]] = (node.input[0], np.asarray(ctx.constants[node.input[1]], dtype=np.float64))
            return
        cond = node.input[0]
        if cond not in ctx.predicates or not (ctx.is_const(node.input[1]) and ctx.is_const(node.input[2])):
            raise UserError(f"{describe(node)}: only Where(GreaterOrEqual(x, 0), s, -s) with constants "
                            "(a bipolar quantizer) is supported")
        x, threshold = ctx.predicates[cond]
        a = np.asarray(ctx.constants[node.input[1]], dtype=np.float64)
        b = np.asarray(ctx.constants[node.input[2]], dtype=np.float64)
        if threshold.size != 1 or a.size != 1 or b.size != 1 or threshold.item() != 0 \
                or a.item() <= 0 or b.item() != -a.item():
            raise UserError(f"{describe(node)}: only Where(GreaterOrEqual(x, 0), s, -s) with a positive "
                            "scalar s (a bipolar quantizer) is supported")
        spec = QuantSpec("bipolar", a.reshape(()), np.zeros(()), -1, 1)
        ctx.add(node, Quantize.name, [x], [node.output[0]], [ctx.shape(x)], attrs={"spec": spec})


register(Quantize())
register(Dequantize())
register(Threshold())
