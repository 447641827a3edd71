"""Resize and Upsample, mode ``nearest`` only: each output element copies one input element, so
the op is a gather along each resized per-inference axis. The source index of every output
position is computed at import (``attrs["index"]``: per per-inference axis, a tuple of source
indices, or None where the axis keeps its size) exactly as ``onnx.reference`` computes it:

* ``coordinate_transformation_mode``: ``half_pixel`` (default), ``asymmetric``,
  ``pytorch_half_pixel``, ``align_corners``, ``half_pixel_symmetric`` (``tf_crop_and_resize`` is
  refused);
* ``nearest_mode``: ``round_prefer_floor`` (default), ``round_prefer_ceil``, ``floor``, ``ceil``;
  an exact integer source coordinate is taken as it is; indices are clamped to the axis;
* scales (output size ``floor(scale * size)``) or sizes (scale ``out / in``, with
  ``keep_aspect_ratio_policy``), both constant; ``axes`` (opset 18);
* ``Upsample`` (opsets 7 and 9) and ``Resize`` opset 10, which have no such attributes:
  asymmetric coordinates, floor when enlarging and ceil when shrinking (onnxruntime's
  behaviour; onnx.reference only knows integer upsampling factors there, where both agree).

The batch axis must keep its scale 1; in ``sizes`` its entry is ignored (exporters fold it from
the shape of a batch of 1). Typed: raw values, type, scale and zero point pass through. No
hardware yet.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..onnx_import import attr, describe
from .base import Op, register
from .reshape import mark_integer, onnx_opset, pass_type

COORDINATE_MODES = ("half_pixel", "asymmetric", "pytorch_half_pixel", "align_corners",
                    "half_pixel_symmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def source_coordinates(n_in: int, n_out: int, scale: float, mode: str) -> np.ndarray:
    """The real source coordinate of every output position (float64, as onnx.reference)."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    if mode == "asymmetric":
        return y / scale
    if mode == "align_corners":
        return np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    if mode == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5
    raise ValueError(mode)


def nearest_indices(n_in: int, n_out: int, scale: float, coordinate_mode: str,
                    nearest_mode: str) -> np.ndarray:
    """Source index of every output position along one axis."""
    x = source_coordinates(n_in, n_out, scale, coordinate_mode)
    fl = np.floor(x)
    frac = x - fl
    exact = frac == 0
    if nearest_mode == "simple":  # opset < 11: floor when enlarging, ceil when shrinking
        up = np.zeros(n_out, dtype=bool) if scale >= 1 else ~exact
    elif nearest_mode == "round_prefer_floor":
        up = frac > 0.5
    elif nearest_mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif nearest_mode == "floor":
        up = np.zeros(n_out, dtype=bool)
    elif nearest_mode == "ceil":
        up = ~exact
    else:
        raise ValueError(nearest_mode)
    idx = fl.astype(np.int64) + (up & ~exact)
    return np.clip(idx, 0, n_in - 1)


class Resize(Op):
    name = "Resize"
    onnx_ops = ("Resize", "Upsample")
    layer_types = ("Upsample", "UpSampling2D")

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        shape = ctx.shape(x)
        full = (1,) + tuple(shape)
        rank = len(full)
        mode = _text(attr(node, "mode"), "nearest")
        if mode != "nearest":
            raise UserError(f"{describe(node)}: mode '{mode}' not supported; only nearest")
        legacy = node.op_type == "Upsample" or onnx_opset(ctx) < 11
        if legacy:
            coord, nearest = "asymmetric", "simple"
        else:
            coord = _text(attr(node, "coordinate_transformation_mode"), "half_pixel")
            nearest = _text(attr(node, "nearest_mode"), "round_prefer_floor")
            if coord not in COORDINATE_MODES:
                raise UserError(f"{describe(node)}: coordinate_transformation_mode '{coord}' not "
                                f"supported; use one of {', '.join(COORDINATE_MODES)}")
            if nearest not in NEAREST_MODES:
                raise UserError(f"{describe(node)}: nearest_mode '{nearest}' not supported; use one "
                                f"of {', '.join(NEAREST_MODES)}")
        axes = attr(node, "axes")
        axes = list(range(rank)) if axes is None else [a + rank if a < 0 else int(a) for a in axes]
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            raise UserError(f"{describe(node)}: axes {list(attr(node, 'axes'))} invalid for rank {rank}")

        def given(index: int) -> np.ndarray | None:
            if len(node.input) > index and node.input[index]:
                v = np.asarray(ctx.const(node, index, ("scales", "sizes")[index == 3]))
                return v.reshape(-1) if v.size else None
            return None

        if node.op_type == "Upsample" and attr(node, "scales") is not None:
            scales, sizes = np.asarray(attr(node, "scales"), dtype=np.float32), None
        elif legacy:
            scales, sizes = given(1), None
        else:
            scales, sizes = given(2), given(3)
        if (scales is None) == (sizes is None):
            raise UserError(f"{describe(node)}: needs exactly one of scales and sizes as constants")
        given_len = len(scales if sizes is None else sizes)
        if given_len != len(axes):
            raise UserError(f"{describe(node)}: {given_len} scales/sizes for {len(axes)} axes")
        scale = [1.0] * rank
        out = list(full)
        if sizes is None:
            for a, s in zip(axes, scales):
                scale[a] = float(s)  # the model's float32 value, exactly
            if scale[0] != 1.0:
                raise UserError(f"{describe(node)}: scale {scale[0]} on the batch axis; only "
                                "per-inference axes can be resized")
            if any(s <= 0 for s in scale):
                raise UserError(f"{describe(node)}: scales must be positive, got {scales.tolist()}")
            out = [int(s * d) for s, d in zip(scale, full)]
        else:
            sizes = [int(v) for v in sizes]
            resized = [a for a in axes if a != 0]
            for a, n in zip(axes, sizes):
                if a != 0:
                    out[a] = n
                    scale[a] = n / full[a]
            policy = _text(attr(node, "keep_aspect_ratio_policy"), "stretch")
            if policy != "stretch" and resized:
                pick = min if policy == "not_larger" else max
                if policy not in ("not_larger", "not_smaller"):
                    raise UserError(f"{describe(node)}: keep_aspect_ratio_policy '{policy}' unknown")
                s = pick(scale[a] for a in resized)
                for a in resized:
                    scale[a] = s
                    out[a] = int(s * full[a] + 0.5)
        if any(n <= 0 for n in out[1:]):
            raise UserError(f"{describe(node)}: output shape {out[1:]} is empty")
        index = []
        for a in range(1, rank):
            if out[a] == full[a] and scale[a] == 1.0:
                index.append(None)
            else:
                index.append(tuple(int(i) for i in nearest_indices(full[a], out[a], scale[a], coord, nearest)))
        if all(i is None for i in index):
            ctx.alias(node.output[0], x)
            return
        ctx.add(node, self.name, [x], [node.output[0]], [tuple(out[1:])],
                attrs={"index": tuple(index), "coordinate_mode": coord, "nearest_mode": nearest})
        mark_integer(ctx, node.output[0], x)

    def assign_types(self, node, inputs, outputs, cfg):
        return node, [pass_type(outputs[0], inputs[0])]

    def reference(self, node, graph, inputs):
        y = inputs[0]
        for axis, idx in enumerate(node.attrs["index"]):
            if idx is not None:
                y = np.take(y, np.asarray(idx, dtype=np.intp), axis=axis + 1)
        return [y]


register(Resize())
