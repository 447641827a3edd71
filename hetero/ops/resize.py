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
the shape of a batch of 1). Typed: raw values, type, scale and zero point pass through.

Hardware (up to two spatial axes): :class:`NearestRows` repeats and drops pixels and rows of
the pixel stream (the source indices of nearest resizing never decrease), keeping the current
input row in a line buffer (:class:`~amaranth.lib.memory.Memory`, synchronous read) for the
repeated rows; resizing the channel axis picks lanes
(:class:`~hetero.ops.pad.LaneSelect`, wires). Cycles: :func:`nearest_events`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hetero.errors import UserError
from hetero.hw.beats import walk
from hetero.hw.fixed_hw import shape_of
from hetero.hw.window import Chain, lanes_signature, require_typed
from hetero.ops.onnx_context import attr, describe
from hetero.hw.cycles import Cycles
from hetero.ops.base import Op, register
from hetero.ops.pad import LaneSelect, split_axes
from hetero.ops.reshape import mark_integer, onnx_opset, pass_type

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


def _repeats(index: Sequence[int], n_in: int) -> list[int]:
    """How many output positions copy each of the ``n_in`` sources."""
    return [int(v) for v in np.bincount(np.asarray(index, dtype=np.int64), minlength=n_in)]


def nearest_events(rows: Sequence[int], cols: Sequence[int], h: int, w: int) -> tuple[int, int]:
    """(cycle the last output beat of an image is offered, cycles per image) of
    :class:`NearestRows` with source rows ``rows`` and columns ``cols``, inputs offered in every
    cycle and the output always ready: one cycle per step of :func:`nearest_steps`, an emitting
    step's beat offered the cycle after it."""
    emit = nearest_steps(rows, cols, h, w)[1]
    return int(np.flatnonzero(emit)[-1]) + 1, len(emit)


def nearest_steps(rows: Sequence[int], cols: Sequence[int], h: int,
                  w: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps of :class:`NearestRows` over one image, as :func:`hetero.hw.beats.walk`
    takes them: (takes an input pixel, emits an output pixel) per step. Per input row ``y``
    copied ``ry`` times: if ``ry == 0``, one step per pixel (taken, dropped); else one step per
    pixel copied ``rx`` times (``max(rx, 1)`` steps: the first takes it, each emits if
    ``rx > 0``), then ``ry - 1`` replays of the output row from the line buffer (``len(cols)``
    emitting steps each)."""
    ry, rx = _repeats(rows, h), np.array(_repeats(cols, w))
    per_pixel = np.maximum(rx, 1)
    first = np.concatenate(([0], np.cumsum(per_pixel)[:-1]))
    row_take = np.zeros(int(per_pixel.sum()), dtype=bool)
    row_take[first] = True
    row_emit = np.repeat(rx > 0, per_pixel)
    takes, emits = [], []
    for y in range(h):
        if ry[y] == 0:
            takes.append(np.ones(w, dtype=bool))
            emits.append(np.zeros(w, dtype=bool))
            continue
        replay = (ry[y] - 1) * len(cols)
        takes += [row_take, np.zeros(replay, dtype=bool)]
        emits += [row_emit, np.ones(replay, dtype=bool)]
    return np.concatenate(takes), np.concatenate(emits)


class NearestRows(wiring.Component):
    """Nearest resizing of a ``h x w`` image of ``channels`` lanes: output pixel ``(oy, ox)``
    is input pixel ``(rows[oy], cols[ox])`` (both sequences non-decreasing). See
    :func:`nearest_events` for the schedule. Every step advances on ``en = ~o.valid | o.ready``;
    the output register is the line buffer's read register when a row is replayed."""

    def __init__(self, shape: Shape, channels: int, h: int, w: int, rows: Sequence[int],
                 cols: Sequence[int]):
        self.h, self.w, self.rows, self.cols = h, w, tuple(rows), tuple(cols)
        self.pix = Shape.cast(shape).width * channels
        super().__init__({"i": wiring.In(lanes_signature(shape, channels)),
                          "o": wiring.Out(lanes_signature(shape, channels))})

    def elaborate(self, platform) -> Module:
        m = Module()
        h, w, cols = self.h, self.w, self.cols
        ry, rx = _repeats(self.rows, h), _repeats(cols, w)
        n_out = len(cols)

        def table(values, index):
            values = list(values)
            if len(values) == 1:
                return Const(values[0], range(values[0] + 1))
            return Array(Const(v, range(max(values) + 1)) for v in values)[index]

        y, x = Signal(range(max(h, 2))), Signal(range(max(w, 2)))
        j = Signal(range(max(max(rx), 2)))  # copy of the current pixel
        p = Signal(range(max(max(ry), 2)))  # 0: streaming pass; k > 0: k-th replay
        ox = Signal(range(max(n_out, 2)))
        rep_y, rep_x = table(ry, y), table(rx, x)
        replay = p != 0
        consume = ~replay & (j == 0)
        emit = replay | ((rep_y != 0) & (rep_x != 0))
        en, adv = Signal(), Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready),
                     adv.eq(en & (~consume | self.i.valid)),
                     self.i.ready.eq(en & consume)]

        m.submodules.line = line = Memory(shape=self.pix, depth=max(w, 2), init=[])
        wr, rd = line.write_port(), line.read_port(domain="sync")
        hold = Signal(self.pix)
        out_reg, from_mem = Signal(self.pix), Signal()
        pixel = Mux(consume, self.i.payload.as_value(), hold)
        m.d.comb += [wr.addr.eq(x), wr.data.eq(self.i.payload.as_value()), wr.en.eq(adv & consume),
                     rd.addr.eq(table(cols, ox)), rd.en.eq(adv),
                     self.o.payload.as_value().eq(Mux(from_mem, rd.data, out_reg))]
        with m.If(en):
            m.d.sync += self.o.valid.eq(adv & emit)
        with m.If(adv):
            m.d.sync += [from_mem.eq(replay), out_reg.eq(pixel)]
            with m.If(consume):
                m.d.sync += hold.eq(self.i.payload.as_value())

            def next_row():
                m.d.sync += [p.eq(0), y.eq(Mux(y == h - 1, 0, y + 1))]

            with m.If(replay):
                with m.If(ox == n_out - 1):
                    m.d.sync += [ox.eq(0), p.eq(p + 1)]
                    with m.If(p + 1 == rep_y):
                        next_row()
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
            with m.Elif((rep_y != 0) & (j + 1 < rep_x)):
                m.d.sync += j.eq(j + 1)
            with m.Else():
                m.d.sync += j.eq(0)
                with m.If(x == w - 1):
                    m.d.sync += x.eq(0)
                    with m.If(rep_y > 1):
                        m.d.sync += p.eq(1)
                    with m.Else():
                        next_row()
                with m.Else():
                    m.d.sync += x.eq(x + 1)
        return m


class Resize(Op):
    name = "Resize"
    onnx_ops = ("Resize", "Upsample")
    moves_values = True
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

    # -- hardware -----------------------------------------------------------------------------
    def _plan(self, node, graph):
        """(channel axis, in/out (h, w), rows, cols) of the spatial part, or None."""
        index = node.attrs["index"]
        ch, spatial = split_axes(graph, node.inputs[0])
        if len(spatial) > 2:
            raise UserError(f"{node.source}: resizing {len(spatial)} spatial axes; the hardware "
                            "handles 1D and 2D")
        if not any(index[k] is not None for k in spatial):
            return ch, None
        shape = graph.tensors[node.inputs[0]].shape
        sizes = [shape[k] for k in spatial]
        idx = [list(index[k]) if index[k] is not None else list(range(shape[k])) for k in spatial]
        if len(spatial) == 1:
            sizes, idx = [1] + sizes, [[0]] + idx
        for v in idx:
            if any(b < a for a, b in zip(v, v[1:])):
                raise UserError(f"{node.source}: source indices decrease; no hardware")
        return ch, (sizes[0], sizes[1], idx[0], idx[1])

    def hardware(self, node, graph):
        require_typed(node, graph)
        ch, plan = self._plan(node, graph)
        t = graph.tensors[node.inputs[0]]
        lane = shape_of(t.dtype)
        c_in = t.shape[ch] if ch >= 0 else 1
        stages = []
        if plan is not None:
            stages.append(NearestRows(lane, c_in, *plan))
        src = node.attrs["index"][ch] if ch >= 0 else None
        if src is not None or not stages:
            stages.append(LaneSelect(lane, c_in, src if src is not None else range(c_in)))
        return stages[0] if len(stages) == 1 else Chain(*stages)

    def cycles(self, node, graph):
        ch, plan = self._plan(node, graph)
        if plan is None:
            beats = int(np.prod(graph.tensors[node.inputs[0]].shape)) // (graph.tensors[node.inputs[0]].shape[ch] if ch >= 0 else 1)
            return Cycles(beats - 1, beats)
        h, w, rows, cols = plan
        last, total = nearest_events(rows, cols, h, w)
        return Cycles(last, total)

    def beat_times(self, node, graph, arrivals):
        ch, plan = self._plan(node, graph)
        if plan is None:
            return super().beat_times(node, graph, arrivals)
        return walk(*nearest_steps(plan[2], plan[3], plan[0], plan[1]), arrivals[0])


register(Resize())
