"""Pooling: ONNX ``MaxPool`` / ``GlobalMaxPool`` (op ``MaxPool``) and ``AveragePool`` /
``GlobalAveragePool`` (op ``AveragePool``), 1D and 2D (any number of spatial axes in the
reference), channels-first or channels-last (the QONNX ``channels_last`` domains: the standard
op on a transposed input, same attributes). A global pool is a pool whose kernel is the whole
spatial extent (``attrs["global"]``); its output keeps the spatial axes with size 1.

Geometry as ONNX and onnxruntime define it: ``kernel_shape``, ``strides``, ``pads`` or
``auto_pad``, ``dilations``, ``ceil_mode`` (a window may then run past the end padding, but may
not start in it; the cells past the padding never count). ``storage_order`` only concerns the
optional indices output, which is refused.

Float reference: the ONNX definition in float64; AveragePool divides each window's sum by the
number of cells it covers: input cells only (``count_include_pad=0``) or input and pad cells
(``count_include_pad=1``).

Typed reference:

* MaxPool passes raw values through: the output has the input's type, scale and zero point;
  padding is the type's minimum.
* AveragePool sums ``raw - zero_point`` over each window exactly (padding adds 0), then one
  :class:`~hetero.ir.quant.Requant` onto the config's ``result`` type with ratio
  ``in.real_scale / (count * out_lsb)``; where the count varies by position
  (``count_include_pad=0`` next to the padding, ceil mode) the multiplier is an array over the
  output positions (``(1, *out)`` channels-first, ``(*out, 1)`` channels-last).

Hardware (1D and 2D): a :class:`~hetero.hw.window.WindowGenerator` (padding with the type's
minimum for MaxPool, with the zero point, i.e. 0 once centred, for AveragePool) and a
:class:`WindowReduce` stage: a max tree, or the exact sum of ``raw - zero_point`` followed by
the reference's requantization (:func:`~hetero.hw.requant_hw.requant_unit`; where the count
varies by position, the output position selects one of the few distinct requantizations, found
per row class and column class). Global pools need no window: :class:`FrameReduce` folds the
image's beats into one accumulator per channel and emits one beat per image; a pool whose one
window covers the whole unpadded image (kws-DSCNN's 25x5 AveragePool) is imported as global,
rather than as a window of every pixel's lanes at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring

from hetero.errors import UserError
from hetero.ir.fixed import type_for_range
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_unit
from hetero.hw.window import Chain, WindowGenerator, WindowGeometry, lanes_signature, require_typed
from hetero.ir.graph import Graph, Node
from hetero.ops.onnx_context import CHANNELS_LAST_DOMAINS, attr, describe
from hetero.ir.quant import requant_to_fixed
from hetero.hw.cycles import Cycles
from hetero.ops.base import Op, register
from hetero.ops.conv import from_channels_first, geometry, join_shape, spatial_split, to_channels_first, windows
from hetero.ops.reshape import mark_integer, pass_type


# -- hardware building blocks -------------------------------------------------------------------
def _widen(v: Value) -> Value:
    """``v`` as a signed value (an unsigned one gains a zero sign bit)."""
    v = Value.cast(v)
    return v if v.shape().signed else Cat(v, Const(0, 1)).as_signed()


def _tree(values: list, op: Callable) -> Value:
    while len(values) > 1:
        values = [op(values[k], values[k + 1]) for k in range(0, len(values) - 1, 2)] \
            + ([values[-1]] if len(values) % 2 else [])
    return values[0]


def _max(a: Value, b: Value) -> Value:
    return Mux(a > b, a, b)


ChannelFn = Callable[[list, int, Value], Value]


class WindowReduce(wiring.Component):
    """Input: windows of ``taps*channels`` lanes in ``(tap, c)`` order; output: ``channels``
    lanes, ``o[c] = fn(taps of channel c, c, cls)`` through one register stage, where ``cls``
    is ``classes[p]`` for the ``p``-th window of the image (``classes``: a class per output row
    and per output column, ``(row_ids, col_ids, table)`` with ``table[row_id][col_id]`` the
    class; None: always 0). Latency 1, interval 1 per window."""

    def __init__(self, in_shape: Shape, out_shape: Shape, channels: int, taps: int, fn: ChannelFn,
                 classes: tuple | None = None):
        self.channels, self.taps, self.fn, self.classes = channels, taps, fn, classes
        super().__init__({"i": wiring.In(lanes_signature(in_shape, taps * channels)),
                          "o": wiring.Out(lanes_signature(out_shape, channels))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        cls = Const(0, 1)
        if self.classes is not None:
            row_ids, col_ids, table = self.classes
            oy, ox = Signal(range(max(len(row_ids), 2))), Signal(range(max(len(col_ids), 2)))
            with m.If(self.i.valid & en):
                with m.If(ox == len(col_ids) - 1):
                    m.d.sync += [ox.eq(0), oy.eq(Mux(oy == len(row_ids) - 1, 0, oy + 1))]
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
            n_cls = max(max(r) for r in table) + 1
            cls = Signal(range(max(n_cls, 2)))
            rid = Array(Const(v, range(max(len(table), 2))) for v in row_ids)[oy]
            cid = Array(Const(v, range(max(len(table[0]), 2))) for v in col_ids)[ox]
            m.d.comb += cls.eq(Array(Array(Const(v, range(max(n_cls, 2))) for v in row) for row in table)[rid][cid])
        with m.If(en):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for c in range(self.channels):
                taps = [self.i.payload[t * self.channels + c] for t in range(self.taps)]
                m.d.sync += self.o.payload[c].eq(self.fn(taps, c, cls))
        return m


class FrameReduce(wiring.Component):
    """Input: images of ``beats`` beats of ``channels`` lanes; output: one beat per image,
    ``o[c] = final(acc, c)`` where ``acc = start(x_0[c])`` then ``acc = step(acc, x_k[c])`` over
    the image's beats (an ``acc_shape`` register per channel). Latency ``beats``, interval
    ``beats``."""

    def __init__(self, in_shape: Shape, acc_shape: Shape, out_shape: Shape, channels: int, beats: int,
                 start: Callable, step: Callable, final: Callable):
        self.acc_shape, self.channels, self.beats = acc_shape, channels, beats
        self.start, self.step, self.final = start, step, final
        super().__init__({"i": wiring.In(lanes_signature(in_shape, channels)),
                          "o": wiring.Out(lanes_signature(out_shape, channels))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en, take = Signal(), Signal()
        k = Signal(range(max(self.beats, 2)))
        last = k == self.beats - 1
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en),
                     take.eq(self.i.valid & en)]
        with m.If(en):
            m.d.sync += self.o.valid.eq(take & last)
        with m.If(take):
            m.d.sync += k.eq(Mux(last, 0, k + 1))
        for c in range(self.channels):
            x = self.i.payload[c]
            acc = Signal(self.acc_shape, name=f"acc_{c}")
            nxt = Signal(self.acc_shape, name=f"next_{c}")
            m.d.comb += nxt.eq(Mux(k == 0, self.start(x), self.step(acc, x)))
            with m.If(take):
                m.d.sync += acc.eq(nxt)
                with m.If(last):
                    m.d.sync += self.o.payload[c].eq(self.final(nxt, c))
        return m


def _position_classes(rq, out: tuple[int, ...]):
    """(row_ids, col_ids, table, representatives) of a requantization whose multiplier and
    offset vary over the output positions ``out`` (1D or 2D): rows (columns) with the same
    values share an id; ``table[r][c]`` is a class, ``representatives[cls]`` a flat output
    position of that class. None when one requantization serves every position."""
    mult, add = np.asarray(rq.mult), np.asarray(rq.add)
    if mult.size <= 1 and add.size <= 1:
        return None
    oh, ow = (1, out[0]) if len(out) == 1 else out
    key = np.stack([np.broadcast_to(mult.reshape(-1) if mult.size > 1 else mult.reshape(()), (oh * ow,)),
                    np.broadcast_to(add.reshape(-1) if add.size > 1 else add.reshape(()), (oh * ow,))],
                   axis=-1).reshape(oh, ow, 2)

    def ids(rows):
        seen: dict = {}
        return [seen.setdefault(r.tobytes(), len(seen)) for r in rows], seen

    row_ids, rows = ids(key)
    col_ids, cols = ids(key.transpose(1, 0, 2))
    first_row = {v: k for k, v in reversed(list(enumerate(row_ids)))}
    first_col = {v: k for k, v in reversed(list(enumerate(col_ids)))}
    table, reps, seen = [], [], {}
    for r in range(len(rows)):
        line = []
        for c in range(len(cols)):
            y, x = first_row[r], first_col[c]
            v = key[y, x].tobytes()
            if v not in seen:
                seen[v] = len(reps)
                reps.append(y * ow + x)
            line.append(seen[v])
        table.append(line)
    return row_ids, col_ids, table, reps


class _Pool(Op):

    # -- import -------------------------------------------------------------------------------
    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        channels_last = node.domain in CHANNELS_LAST_DOMAINS
        c, sizes = spatial_split(node, ctx.shape(x), channels_last)
        n = len(sizes)
        if len(node.output) > 1 and node.output[1]:
            raise UserError(f"{describe(node)}: the Indices output is not supported")
        is_global = node.op_type.startswith("Global")
        if is_global:
            kernel = tuple(sizes)
            geo = {"strides": (1,) * n, "dilations": (1,) * n, "pads": (0,) * (2 * n),
                   "out": (1,) * n, "extra": (0,) * n}
            ceil_mode = False
        else:
            given = attr(node, "kernel_shape", None)
            if given is None or len(given) != n:
                raise UserError(f"{describe(node)}: kernel_shape must give {n} sizes (one per "
                                f"spatial axis), got {given}")
            kernel = tuple(int(k) for k in given)
            ceil_mode = bool(attr(node, "ceil_mode", 0))
            geo = geometry(node, sizes, kernel, ceil_mode)
            if (kernel == tuple(sizes) and not any(geo["pads"]) and not any(geo["extra"])
                    and set(geo["dilations"]) == {1}):  # one window over the whole image
                is_global, ceil_mode = True, False
                geo = dict(geo, strides=(1,) * n)
        if min(geo["out"]) < 1:
            raise UserError(f"{describe(node)}: empty output (spatial sizes {list(geo['out'])})")
        attrs = {"channels_last": channels_last, "global": is_global, "kernel_shape": kernel,
                 "strides": geo["strides"], "dilations": geo["dilations"], "pads": geo["pads"],
                 "extra": geo["extra"], "ceil_mode": ceil_mode, "channels": c,
                 "in_size": tuple(sizes), "out_size": geo["out"]}
        attrs.update(self.extra_attrs(node))
        ctx.add(node, self.name, [x], [node.output[0]], [join_shape(c, geo["out"], channels_last)],
                attrs=attrs)
        if self.name == "MaxPool":
            mark_integer(ctx, node.output[0], x)  # the max of ONNX integers is one of them

    def extra_attrs(self, node) -> dict:
        return {}

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _windows(node: Node, x: np.ndarray, fill) -> np.ndarray:
        """[N, C, *out, *kernel] windows of a batch in the node's layout."""
        a = node.attrs
        return windows(to_channels_first(x, a["channels_last"]), a["kernel_shape"], a["strides"],
                       a["dilations"], a["pads"], a["extra"], fill)

    @staticmethod
    def _kernel_axes(node: Node) -> tuple[int, ...]:
        n = len(node.attrs["kernel_shape"])
        return tuple(range(2 + n, 2 + 2 * n))

    # -- hardware -----------------------------------------------------------------------------
    def window_geometry(self, node: Node) -> WindowGeometry | None:
        """The pooling window (None for a global pool: :class:`FrameReduce` reads no window);
        raises UserError beyond 2D."""
        a = node.attrs
        if a["global"]:
            return None
        if len(a["kernel_shape"]) > 2:
            raise UserError(f"{node.source}: {len(a['kernel_shape'])}D pooling; the hardware "
                            "handles 1D and 2D")
        return WindowGeometry.from_attrs(a["channels"], a["in_size"], a["kernel_shape"], a["strides"],
                                         a["dilations"], a["pads"], a["out_size"], a["extra"])

    def pad_raw(self, node: Node, graph: Graph) -> int:
        raise NotImplementedError

    def window_fn(self, node: Node, graph: Graph) -> tuple[ChannelFn, tuple | None]:
        """The reducer of one channel's taps, and the position classes it needs."""
        raise NotImplementedError

    def frame_fns(self, node: Node, graph: Graph) -> tuple[Shape, Callable, Callable, Callable]:
        """Accumulator shape, start, step and final functions of the global form."""
        raise NotImplementedError

    def hardware(self, node, graph):
        a = node.attrs
        require_typed(node, graph)
        t_in = graph.tensors[node.inputs[0]].dtype
        t_out = graph.tensors[node.outputs[0]].dtype
        if a["global"]:
            acc, start, step, final = self.frame_fns(node, graph)
            return FrameReduce(shape_of(t_in), acc, shape_of(t_out), a["channels"],
                               int(np.prod(a["in_size"])), start, step, final)
        geo = self.window_geometry(node)
        fn, classes = self.window_fn(node, graph)
        taps = geo.kernel[0] * geo.kernel[1]
        return Chain(WindowGenerator(geo, shape_of(t_in), pad=self.pad_raw(node, graph)),
                     WindowReduce(shape_of(t_in), shape_of(t_out), a["channels"], taps, fn, classes))

    def cycles(self, node, graph):
        a = node.attrs
        if a["global"]:
            beats = int(np.prod(a["in_size"]))
            return Cycles(beats, beats)
        return Cycles(*self.window_geometry(node).cycles(consumer_latency=1))

    def beat_times(self, node, graph, arrivals):
        if node.attrs["global"]:
            return super().beat_times(node, graph, arrivals)
        return self.window_geometry(node).beat_times(arrivals[0], consumer_latency=1)

    def parallelism(self, node):
        return {"lanes": int(node.attrs["channels"]), "taps": int(np.prod(node.attrs["kernel_shape"]))}

    def hls(self, node, graph):
        """hetero_pool.h ``pool`` (1D as one row, or 2D): max, or the exact centred sum and the
        reference's requantization per output position."""
        from hetero.hw.hls_binding import HlsCall, no_requant, requant_config

        a = node.attrs
        t_in = graph.tensors[node.inputs[0]]
        n = len(a["kernel_shape"])
        if n > 2 or t_in.dtype is None:
            return None

        def two(v, one):
            return (one, int(v[0])) if n == 1 else (int(v[0]), int(v[1]))

        (ih, iw), (kh, kw), (sh, sw) = two(a["in_size"], 1), two(a["kernel_shape"], 1), two(a["strides"], 1)
        (dh, dw), (oh, ow), (pt, pl) = two(a["dilations"], 1), two(a["out_size"], 1), two(a["pads"][:n], 0)
        is_max = self.name == "MaxPool"
        rq, arrays = no_requant() if is_max else requant_config(a["requant"], shape=(oh * ow,))
        cfg = {"channels": a["channels"], "channels_last": bool(a["channels_last"]), "in_h": ih, "in_w": iw,
               "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw, "pad_top": pt,
               "pad_left": pl, "out_h": oh, "out_w": ow, "is_max": is_max, "fill": t_in.dtype.min_raw,
               "zero_point": t_in.zero_point}
        return HlsCall("pool", "hetero_pool.h", cfg, nested={"rq": rq}, arrays=arrays)

    def resources(self, node, graph, family="xc7"):
        """A windowed pool: the window generator (:func:`hetero.hw.window.window_generator_resources`)
        and per channel a reduction tree over the taps (``reduce_lut_per_bit.<op>`` LUTs per
        tap and bit: a comparison and a mux for MaxPool), one output register stage. The
        global form: the default one-register lane stage."""
        from hetero.hw.cost import Resources, coeffs
        from hetero.hw.window import window_generator_resources

        if node.attrs["global"]:
            return super().resources(node, graph, family)
        geo = self.window_geometry(node)
        t_in = graph.tensors[node.inputs[0]].dtype
        t_out = graph.tensors[node.outputs[0]].dtype
        c = coeffs(family)
        taps, ch = geo.kernel[0] * geo.kernel[1], int(node.attrs["channels"])
        k = c.get(f"reduce_lut_per_bit.{self.name}", c.get("reduce_lut_per_bit", 1.5))
        reduce = Resources(lut=k * (taps - 1) * ch * t_in.width, ff=ch * t_out.width + 1)
        return window_generator_resources(geo, t_in.width, family) + reduce


class MaxPool(_Pool):
    name = "MaxPool"
    onnx_ops = ("MaxPool", "GlobalMaxPool")
    moves_values = True
    layer_types = ("MaxPool", "GlobalMaxPool", "MaxPooling1D", "MaxPooling2D",
                   "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Pooling1D", "Pooling2D")

    def assign_types(self, node, inputs, outputs, cfg):
        t_in = inputs[0]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        return node, [pass_type(outputs[0], t_in)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            fill = -np.inf
            x = np.asarray(x, dtype=np.float64)
        else:
            fill = t_in.dtype.min_raw
            x = np.asarray(x).astype(np.int64, copy=False)
        y = self._windows(node, x, fill).max(axis=self._kernel_axes(node))
        return [from_channels_first(y, node.attrs["channels_last"])]

    def pad_raw(self, node, graph):
        return graph.tensors[node.inputs[0]].dtype.min_raw

    def window_fn(self, node, graph):
        return (lambda taps, c, cls: _tree(list(taps), _max)), None

    def frame_fns(self, node, graph):
        return (shape_of(graph.tensors[node.inputs[0]].dtype), lambda x: x, _max, lambda acc, c: acc)


class AveragePool(_Pool):
    name = "AveragePool"
    onnx_ops = ("AveragePool", "GlobalAveragePool")
    layer_types = ("AveragePool", "GlobalAveragePool", "AveragePooling1D", "AveragePooling2D",
                   "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Pooling1D", "Pooling2D")

    def extra_attrs(self, node) -> dict:
        return {"count_include_pad": bool(attr(node, "count_include_pad", 0))}

    def counts(self, node: Node) -> np.ndarray:
        """How many cells each output position divides by, shaped like the output's spatial
        axes (int64)."""
        a = node.attrs
        sizes, pads, extra = a["in_size"], a["pads"], a["extra"]
        n = len(sizes)
        mask = np.ones((1, 1) + tuple(sizes), dtype=np.int64)
        if a["count_include_pad"]:  # pad cells count; ceil-mode cells past the padding do not
            mask = np.pad(mask, [(0, 0), (0, 0)] + [(pads[k], pads[n + k]) for k in range(n)],
                          constant_values=1)
            pads = (0,) * (2 * n)
        w = windows(mask, a["kernel_shape"], a["strides"], a["dilations"], pads, extra, 0)
        return w.sum(axis=self._kernel_axes(node))[0, 0]

    def _per_position(self, node: Node, v: np.ndarray) -> np.ndarray:
        """Per-output-position values shaped to broadcast against the per-inference output."""
        v = np.asarray(v)
        if v.size and np.all(v == v.reshape(-1)[0]):
            return v.reshape(-1)[0]
        return v[..., None] if node.attrs["channels_last"] else v[None]

    def assign_types(self, node, inputs, outputs, cfg):
        t_in = inputs[0]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        t_out = cfg.type_of("result")
        counts = self.counts(node)
        if counts.min() < 1:
            raise UserError(f"{node.source}: a window covers no input cell")
        amax = max(abs(t_in.dtype.min_raw - t_in.zero_point), abs(t_in.dtype.max_raw - t_in.zero_point))
        bound = amax * int(np.prod(node.attrs["kernel_shape"]))
        t_sum = type_for_range(-bound, bound, t_in.dtype.frac_bits)
        if t_sum.width > 62:
            raise UserError(f"{node.source}: the exact window sum needs {t_sum.width} bits")
        ratio = t_in.real_scale / (counts.astype(np.float64) * t_out.lsb)
        rq = requant_to_fixed(self._per_position(node, ratio), 0.0, t_out, in_bits=t_sum.width)
        node = node.evolve(attrs={"requant": rq}, types={"sum": t_sum})
        return node, [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        cl = node.attrs["channels_last"]
        axes = self._kernel_axes(node)
        if t_in.dtype is None:
            s = self._windows(node, np.asarray(x, dtype=np.float64), 0.0).sum(axis=axes)
            return [from_channels_first(s / self.counts(node), cl)]
        centred = np.asarray(x).astype(np.int64) - t_in.zero_point
        s = from_channels_first(self._windows(node, centred, 0).sum(axis=axes), cl)
        return [node.attrs["requant"](s)]

    def pad_raw(self, node, graph):
        return graph.tensors[node.inputs[0]].zero_point  # 0 once centred

    def _sum_range(self, node, graph, cells: int) -> tuple[int, int]:
        t = graph.tensors[node.inputs[0]]
        return cells * (t.dtype.min_raw - t.zero_point), cells * (t.dtype.max_raw - t.zero_point)

    def _centred(self, node, graph) -> Callable[[Value], Value]:
        z = graph.tensors[node.inputs[0]].zero_point
        return (lambda x: _widen(x) - z) if z else _widen

    def window_fn(self, node, graph):
        rq = node.attrs["requant"]
        lo, hi = self._sum_range(node, graph, int(np.prod(node.attrs["kernel_shape"])))
        centred = self._centred(node, graph)
        found = _position_classes(rq, node.attrs["out_size"])

        def fn(taps, c, cls):
            total = _tree([centred(t) for t in taps], lambda a, b: a + b)
            if found is None:
                return requant_unit(total, rq, 0, lo, hi)
            return Array(requant_unit(total, rq, p, lo, hi) for p in found[3])[cls]

        return fn, None if found is None else found[:3]

    def frame_fns(self, node, graph):
        rq = node.attrs["requant"]
        lo, hi = self._sum_range(node, graph, int(np.prod(node.attrs["in_size"])))
        centred = self._centred(node, graph)
        acc = Shape.cast(range(lo, hi + 1))
        return (acc, centred, lambda a, x: a + centred(x), lambda a, c: requant_unit(a, rq, 0, lo, hi))


register(MaxPool())
register(AveragePool())
