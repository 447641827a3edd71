"""Pad on per-inference axes: modes ``constant`` (with its constant value), ``reflect``, ``edge``
and ``wrap``. Pads come from the attribute ``pads`` (``paddings`` in opset 1; opset < 11) or the
constant input 1 (opset >= 11, with the optional constant value as input 2 and ``axes`` as input
3 from opset 18). Padding the batch axis is refused. Negative pads crop (applied before the
positive pads). ``attrs``: ``begin``/``end`` per per-inference axis, ``mode``, ``value``.

Typed: raw values, type, scale and zero point pass through; the constant value becomes the raw
value of the tensor's type nearest to it (:func:`hetero.ops.clip.raw_value`; zero is exact:
the zero point).

Hardware (mode ``constant``, pads >= 0, up to two spatial axes): padding along the spatial axes
is a :class:`~hetero.hw.window.WindowGenerator` with a 1x1 kernel (it scans the padded image and
emits every cell, input or padding); padding along the channel axis inserts constant lanes
(:class:`LaneSelect`, wires only). Cycles: the generator's (one cycle per padded cell).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Module, Shape
from amaranth.lib import wiring

from hetero.errors import UserError
from hetero.hw.lanes import stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.hw.window import Chain, WindowGenerator, WindowGeometry, lanes_signature, require_typed
from hetero.ops.onnx_context import attr, describe
from hetero.hw.cycles import Cycles
from hetero.ops.base import Op, register
from hetero.ops.clip import raw_value
from hetero.ops.reshape import inference_axis, mark_integer, pass_type

MODES = ("constant", "reflect", "edge", "wrap")


class LaneSelect(wiring.Component):
    """Wires: ``o[k] = i[src[k]]``, or the constant ``fill`` where ``src[k] < 0``, on every
    beat (no register: latency ``beats - 1``, interval ``beats``)."""

    def __init__(self, shape: Shape, in_lanes: int, src: Sequence[int], fill: int = 0):
        self.src, self.fill = tuple(int(k) for k in src), int(fill)
        super().__init__({"i": wiring.In(lanes_signature(shape, in_lanes)),
                          "o": wiring.Out(lanes_signature(shape, len(self.src)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for k, j in enumerate(self.src):
            m.d.comb += self.o.payload[k].eq(self.i.payload[j] if j >= 0 else self.fill)
        return m


def split_axes(graph, name: str) -> tuple[int, list[int]]:
    """(channel axis, spatial axes) of tensor ``name`` as it streams (channel axis -1: a
    vector, one beat)."""
    rank = len(graph.tensors[name].shape)
    if rank <= 1:
        return (0 if rank else -1), []
    if stream_layout(graph, name).channels_last:
        return rank - 1, list(range(rank - 1))
    return 0, list(range(1, rank))


class Pad(Op):
    name = "Pad"
    onnx_ops = ("Pad",)
    moves_values = True

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        shape = ctx.shape(x)
        rank = len(shape)
        mode = attr(node, "mode", "constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode not in MODES:
            raise UserError(f"{describe(node)}: mode '{mode}' not supported; use one of {', '.join(MODES)}")
        pads = attr(node, "pads", attr(node, "paddings"))
        if pads is None:
            pads = ctx.const(node, 1, "pads")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        value = attr(node, "value", 0.0)
        if len(node.input) > 2 and node.input[2]:
            v = np.asarray(ctx.const(node, 2, "constant value"), dtype=np.float64)
            if v.size != 1:
                raise UserError(f"{describe(node)}: constant value must be a scalar")
            value = float(v.reshape(-1)[0])
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) for a in np.asarray(ctx.const(node, 3, "axes")).reshape(-1)]
        else:
            axes = list(range(rank + 1))
        if len(pads) != 2 * len(axes):
            raise UserError(f"{describe(node)}: {len(pads)} pads for {len(axes)} axes; expected "
                            f"{2 * len(axes)}")
        begin, end = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            b, e = pads[k], pads[k + len(axes)]
            full = a + rank + 1 if a < 0 else a
            if full == 0:
                if b or e:
                    raise UserError(f"{describe(node)}: pads {pads} pad the batch axis; only "
                                    "per-inference axes can be padded")
                continue
            i = inference_axis(node, a, rank, "axes entry")
            begin[i], end[i] = b, e
        out = tuple(d + b + e for d, b, e in zip(shape, begin, end))
        if any(d <= 0 for d in out):
            raise UserError(f"{describe(node)}: pads {pads} leave nothing of the shape {list(shape)}")
        for d, b, e in zip(shape, begin, end):
            cropped = d + min(b, 0) + min(e, 0)
            if mode == "reflect" and max(b, e) > cropped - 1:
                raise UserError(f"{describe(node)}: reflect pads {pads} exceed the axis size minus one")
            if mode == "wrap" and max(b, e) > cropped:
                raise UserError(f"{describe(node)}: wrap pads {pads} exceed the axis size")
        if out == shape and not any(begin):
            ctx.alias(node.output[0], x)
            return
        ctx.add(node, self.name, [x], [node.output[0]], [out],
                attrs={"begin": tuple(begin), "end": tuple(end), "mode": mode, "value": float(value)})
        mark_integer(ctx, node.output[0], x)

    def assign_types(self, node, inputs, outputs, cfg):
        t = inputs[0]
        if node.attrs["mode"] == "constant":
            node = node.evolve(attrs={"raw_value": raw_value(node.attrs["value"], t)})
        return node, [pass_type(outputs[0], t)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        begin, end = node.attrs["begin"], node.attrs["end"]
        crop = (slice(None),) + tuple(slice(-b if b < 0 else 0, d + e if e < 0 else d)
                                      for b, e, d in zip(begin, end, x.shape[1:]))
        x = x[crop]
        widths = ((0, 0),) + tuple((max(b, 0), max(e, 0)) for b, e in zip(begin, end))
        mode = node.attrs["mode"]
        if mode != "constant":
            return [np.pad(x, widths, mode=mode)]
        typed = graph.tensors[node.inputs[0]].dtype is not None
        value = node.attrs["raw_value"] if typed else node.attrs["value"]
        return [np.pad(x, widths, mode="constant", constant_values=value)]

    # -- hardware -----------------------------------------------------------------------------
    def _check_hw(self, node, graph) -> tuple[int, list[int]]:
        a = node.attrs
        if a["mode"] != "constant" or min(a["begin"] + a["end"]) < 0:
            raise UserError(f"{node.source}: no hardware for mode '{a['mode']}' or negative pads "
                            "(cropping); only constant padding")
        ch, spatial = split_axes(graph, node.inputs[0])
        if len(spatial) > 2:
            raise UserError(f"{node.source}: padding {len(spatial)} spatial axes; the hardware "
                            "handles 1D and 2D")
        return ch, spatial

    def _geometry(self, node, graph, ch: int, spatial: list[int]) -> WindowGeometry | None:
        a = node.attrs
        if not spatial or not any(a["begin"][k] or a["end"][k] for k in spatial):
            return None
        shape = graph.tensors[node.inputs[0]].shape
        n = len(spatial)
        return WindowGeometry.from_attrs(shape[ch], [shape[k] for k in spatial], (1,) * n, (1,) * n,
                                         (1,) * n, [a["begin"][k] for k in spatial] + [a["end"][k] for k in spatial],
                                         [graph.tensors[node.outputs[0]].shape[k] for k in spatial])

    def hardware(self, node, graph):
        require_typed(node, graph)
        ch, spatial = self._check_hw(node, graph)
        t = graph.tensors[node.inputs[0]]
        lane = shape_of(t.dtype)
        value = node.attrs["raw_value"]
        stages = []
        c_in = t.shape[ch] if ch >= 0 else 1
        geo = self._geometry(node, graph, ch, spatial)
        if geo is not None:
            stages.append(WindowGenerator(geo, lane, pad=value))
        b, e = (node.attrs["begin"][ch], node.attrs["end"][ch]) if ch >= 0 else (0, 0)
        src = [-1] * b + list(range(c_in)) + [-1] * e
        if b or e or not stages:
            stages.append(LaneSelect(lane, c_in, src, value))
        return stages[0] if len(stages) == 1 else Chain(*stages)

    def cycles(self, node, graph):
        ch, spatial = self._check_hw(node, graph)
        geo = self._geometry(node, graph, ch, spatial)
        if geo is None:
            beats = stream_layout(graph, node.inputs[0]).beats
            return Cycles(beats - 1, beats)
        return Cycles(*geo.cycles())

    def beat_times(self, node, graph, arrivals):
        ch, spatial = self._check_hw(node, graph)
        geo = self._geometry(node, graph, ch, spatial)
        if geo is None:
            return super().beat_times(node, graph, arrivals)
        return geo.beat_times(arrivals[0])  # the LaneSelect behind it is a wire

    def resources(self, node, graph, family="xc7"):
        """Spatial padding: the window generator that scans the padded image
        (:func:`hetero.hw.window.window_generator_resources`; the LaneSelect behind it is a
        wire); channel padding alone: the default lane stage."""
        from hetero.hw.window import window_generator_resources

        ch, spatial = self._check_hw(node, graph)
        geo = self._geometry(node, graph, ch, spatial)
        if geo is None:
            return super().resources(node, graph, family)
        return window_generator_resources(geo, graph.tensors[node.inputs[0]].dtype.width, family)

    def hls(self, node, graph):
        """hetero_movement.h ``pad`` (constant mode, pads >= 0, up to 4 axes)."""
        from hetero.hw.hls_binding import HlsCall

        begin, end = node.attrs["begin"], node.attrs["end"]
        shape = graph.tensors[node.inputs[0]].shape
        if node.attrs["mode"] != "constant" or min(list(begin) + list(end), default=0) < 0 or len(shape) > 4:
            return None
        pad = 4 - len(shape)
        e = [1] * pad + [int(d) for d in shape]
        b = [0] * pad + [int(v) for v in begin]
        d = [1] * pad + [int(s) + int(x) + int(y) for s, x, y in zip(shape, begin, end)]
        cfg = {"n": int(np.prod(shape)), "value": node.attrs["raw_value"], **{f"d{k}": d[k] for k in range(4)},
               **{f"b{k}": b[k] for k in range(4)}, **{f"e{k}": e[k] for k in range(4)}}
        return HlsCall("pad", "hetero_movement.h", cfg)


register(Pad())
