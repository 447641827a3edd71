"""Sliding windows over a pixel stream: the front end of streaming convolution and pooling.

:class:`WindowGenerator` takes an image as :mod:`hetero.hw.stream` sends it (``H*W`` beats of
``C`` lanes, raster order; a 1D ``(C, L)`` tensor is an image of one row) and gives one beat
per output position, in raster order, carrying the whole window: ``K_h*K_w*C`` lanes in the
order ``(ky, kx, c)``, i.e. lane ``(ky*K_w + kx)*C + c`` holds channel ``c`` of the input pixel
``(oy*s_h - pad_top + ky*d_h, ox*s_w - pad_left + kx*d_w)``. Pixels outside the image read the
constant raw value ``pad`` (a convolution's input zero point; the type's minimum for max
pooling).

How it works: it scans the padded image cell by cell in raster order, one cell per cycle (the
scan covers the rows and columns that some window or some input pixel needs). An image cell
takes the next input beat (the scan waits for it); a padding cell takes no input. A cell that
is the bottom-right corner of a window emits that window. The rows above come from a line
buffer: one :class:`~amaranth.lib.memory.Memory` of ``d_h*Ws`` words of ``(K_h-1)*C`` lanes
(``Ws`` the scanned width), i.e. the last ``(K_h-1)*d_h`` rows, read one cycle ahead through a
synchronous port so that block or distributed RAM can hold it; the columns to the left come
from a shift register of ``(K_w-1)*d_w`` columns. Every stage advances on
``en = ~o.valid | o.ready`` (one output register; a stalled output stalls the scan). The scan
runs on into the bottom/right padding and the next image's top padding without waiting for
input, so images stream back to back.

Cycle model (:meth:`WindowGeometry.schedule`): cell ``k`` of the scan is processed at cycle
``k`` when nothing stalls; the scan pauses only while a window waits for its consumer. With a
consumer that takes a window every cycle, ``interval = Hs*Ws`` (scanned cells per image) and
``latency = k_last + 1 - k_first`` (``k_first`` the first image cell, ``k_last`` the corner of
the last window). Consumers taking one window every ``F`` cycles (a folded MAC unit) are
modelled exactly by the same recurrence.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from hetero.hw.beats import walk
from hetero.hw.cost import Family, Resources, coeffs, memory

__all__ = ["WindowGeometry", "WindowGenerator", "Chain", "lanes_signature", "require_typed",
           "window_generator_resources"]


def require_typed(node, graph) -> None:
    """Raise UserError naming ``node`` unless its input has a fixed-point type (hardware works on
    raw integers)."""
    from hetero.errors import UserError

    if graph.tensors[node.inputs[0]].dtype is None:
        raise UserError(f"{node.source}: no hardware for an untyped (float) graph; assign "
                        "precision first")


def lanes_signature(shape: Shape, lanes: int) -> stream.Signature:
    """A stream of beats of ``lanes`` values of the Amaranth ``shape``."""
    return stream.Signature(data.ArrayLayout(shape, lanes))


@dataclass(frozen=True)
class WindowGeometry:
    """A sliding window over a ``channels x in_size`` image, always in 2D form (a 1D geometry
    is an image of one row). ``pads`` are ``(top, left, bottom, right)`` and may include cells
    past the padding that a ceil-mode pooling window reads (they read ``pad`` too); ``out`` is
    the number of windows per axis."""

    channels: int
    in_size: tuple[int, int]
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]
    out: tuple[int, int]

    @classmethod
    def from_attrs(cls, channels: int, in_size: Sequence[int], kernel: Sequence[int],
                   strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int],
                   out: Sequence[int], extra: Sequence[int] = ()) -> "WindowGeometry":
        """From ONNX-style attributes of 1 or 2 spatial axes (``pads`` begin... + end...,
        ``extra``: ceil-mode cells past the end padding)."""
        n = len(in_size)
        if n not in (1, 2):
            raise ValueError(f"{n} spatial axes; the window generator handles 1D and 2D")
        extra = tuple(extra) or (0,) * n
        begin = list(pads[:n])
        end = [int(p) + int(e) for p, e in zip(pads[n:], extra)]

        def two(v, one):
            v = [int(a) for a in v]
            return (one, v[0]) if n == 1 else (v[0], v[1])

        return cls(int(channels), two(in_size, 1), two(kernel, 1), two(strides, 1), two(dilations, 1),
                   two(begin, 0) + two(end, 0), two(out, 1))

    # -- derived sizes -----------------------------------------------------------------------
    @property
    def spans(self) -> tuple[int, int]:
        """Extent of a window per axis, dilation included."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def window_lanes(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.channels

    @property
    def scan(self) -> tuple[int, int]:
        """(rows, columns) of the padded grid the generator scans."""
        return tuple(max((o - 1) * s + sp, b + i) for o, s, sp, b, i in
                     zip(self.out, self.strides, self.spans, self.pads[:2], self.in_size))

    @property
    def line_depth(self) -> int:
        """Words of the line buffer (0: none, the kernel has one row)."""
        return self.dilations[0] * self.scan[1] if self.kernel[0] > 1 else 0

    def is_input(self, axis: int, pos: int) -> bool:
        b = self.pads[axis]
        return b <= pos < b + self.in_size[axis]

    def completes(self, axis: int, pos: int) -> bool:
        """Whether a window's last row (axis 0) or column (axis 1) is at scan position ``pos``."""
        first = pos - self.spans[axis] + 1
        return first >= 0 and first % self.strides[axis] == 0 and first // self.strides[axis] < self.out[axis]

    def masks(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`is_input` and :meth:`completes` at every scan position of ``axis``."""
        pos = np.arange(self.scan[axis])
        b = self.pads[axis]
        first = pos - self.spans[axis] + 1
        return ((pos >= b) & (pos < b + self.in_size[axis]),
                (first >= 0) & (first % self.strides[axis] == 0)
                & (first // self.strides[axis] < self.out[axis]))

    # -- cycle model -------------------------------------------------------------------------
    def schedule(self, frames: int = 3, consumer_interval: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact cycles when inputs are offered in every cycle and a consumer takes windows no
        more often than every ``consumer_interval`` cycles (at once when it is free): returns, as int64 arrays,
        (cycle each image's first input beat is accepted, cycle each window is accepted by the
        consumer), over ``frames`` consecutive images."""
        # the generator moves one cell per cycle and waits at a window cell until the consumer
        # takes it, so window j is taken at a_j = a_{j-1} + max(g_j + 1, consumer_interval),
        # g_j the plain cells since window j-1 (a cumulative sum: the closed form of a
        # cell-by-cell walk, fast on 512x512 images)
        wins, gaps, cells, before = _scan_windows(self, frames)
        steps = gaps.copy()
        steps[1:] = np.maximum(steps[1:], consumer_interval)
        taken = np.cumsum(steps)
        prev = np.maximum(before, 0)
        firsts = np.where(before >= 0, taken[prev] + cells - wins[prev] - 1, cells)
        return firsts, taken

    def beat_times(self, arrivals: np.ndarray, consumer_latency: int = 0,
                   consumer_interval: int = 1) -> tuple[int, np.ndarray]:
        """(Cycle the first pixel is taken, cycle each window's result is offered) when the
        image's pixels arrive at ``arrivals`` and the generator starts at cycle 0
        (:func:`hetero.hw.beats.walk` over the scan cells of one image; the consumer as in
        :meth:`cycles`)."""
        (in_r, done_r), (in_c, done_c) = self.masks(0), self.masks(1)
        take, emit = np.outer(in_r, in_c).reshape(-1), np.outer(done_r, done_c).reshape(-1)
        return walk(take, emit, arrivals, consumer_interval, consumer_latency)

    def cycles(self, consumer_latency: int = 0, consumer_interval: int = 1) -> tuple[int, int]:
        """(latency, interval) of the generator followed by a consumer that takes a window at
        most every ``consumer_interval`` cycles and offers its last result
        ``consumer_latency`` cycles after taking the last window (0: the generator alone)."""
        hs, ws = self.scan
        if consumer_interval == 1:
            first = self.pads[0] * ws + self.pads[1]
            last = ((self.out[0] - 1) * self.strides[0] + self.spans[0] - 1) * ws \
                + (self.out[1] - 1) * self.strides[1] + self.spans[1] - 1
            return last + 1 + consumer_latency - first, hs * ws
        n_win = self.out[0] * self.out[1]
        firsts, taken = self.schedule(3, consumer_interval)
        return int(taken[n_win - 1] + consumer_latency - firsts[0]), int(firsts[2] - firsts[1])


@functools.lru_cache(maxsize=256)
def _scan_windows(geo: WindowGeometry, frames: int) -> tuple[np.ndarray, ...]:
    """What :meth:`WindowGeometry.schedule` needs that does not depend on the consumer (the
    folding search asks for one geometry at many intervals): the window cells in scan order
    over ``frames`` images, the cells from one window to the next (``g_j + 1``), each image's
    first input cell, and the last window before it (-1: none)."""
    hs, ws = geo.scan
    rows, cols = geo.masks(0)[1], geo.masks(1)[1]
    wins = np.flatnonzero(np.tile(np.outer(rows, cols).reshape(-1), frames))
    gaps = np.diff(wins, prepend=-1)
    cells = np.arange(frames) * hs * ws + geo.pads[0] * ws + geo.pads[1]
    before = np.searchsorted(wins, cells) - 1
    for a in (wins, gaps, cells, before):
        a.setflags(write=False)
    return wins, gaps, cells, before


class WindowGenerator(wiring.Component):
    """Input ``i``: pixels of ``channels`` lanes of ``shape``; output ``o``: one window per
    output position, ``geometry.window_lanes`` lanes in ``(ky, kx, c)`` order; padding reads
    the raw value ``pad``. See the module docstring for timing."""

    def __init__(self, geometry: WindowGeometry, shape: Shape, pad: int = 0):
        self.geo, self.lane_shape, self.pad = geometry, Shape.cast(shape), int(pad)
        super().__init__({"i": In(lanes_signature(self.lane_shape, geometry.channels)),
                          "o": Out(lanes_signature(self.lane_shape, geometry.window_lanes))})

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geo
        hs, ws = g.scan
        (kh, kw), (dh, dw) = g.kernel, g.dilations
        bw, ch = self.lane_shape.width, g.channels
        pix_w = bw * ch  # bits of one pixel

        en, adv, in_cell, done = Signal(), Signal(), Signal(), Signal()
        r, c = Signal(range(max(hs, 2))), Signal(range(max(ws, 2)))

        def mask(axis: int, pred) -> Const:
            n = g.scan[axis]
            return Const(sum(1 << p for p in range(n) if pred(axis, p)), unsigned(n))

        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            in_cell.eq(mask(0, g.is_input).bit_select(r, 1) & mask(1, g.is_input).bit_select(c, 1)),
            done.eq(mask(0, g.completes).bit_select(r, 1) & mask(1, g.completes).bit_select(c, 1)),
            adv.eq(en & (~in_cell | self.i.valid)),
            self.i.ready.eq(en & in_cell),
        ]
        pad_bits = 0
        for k in range(ch):
            pad_bits |= (self.pad & ((1 << bw) - 1)) << (k * bw)
        pix = Signal(pix_w)
        m.d.comb += pix.eq(Mux(in_cell, self.i.payload.as_value(), Const(pad_bits, pix_w)))

        with m.If(adv):  # raster scan counters
            with m.If(c == ws - 1):
                m.d.sync += [c.eq(0), r.eq(Mux(r == hs - 1, 0, r + 1))]
            with m.Else():
                m.d.sync += c.eq(c + 1)

        # the column ending at this cell: rows r, r-d_h, ..., r-(K_h-1)*d_h (newest first)
        column = Signal(pix_w * kh)
        if kh == 1:
            m.d.comb += column.eq(pix)
        else:
            word_w = pix_w * (kh - 1)
            word = Signal(word_w)
            new_word = Cat(pix, word[:pix_w * (kh - 2)]) if kh > 2 else pix
            depth = g.line_depth
            if depth == 1:  # one scanned column: a register is the line buffer
                with m.If(adv):
                    m.d.sync += word.eq(new_word)
            else:
                m.submodules.lines = lines = Memory(shape=unsigned(word_w), depth=depth, init=[])
                wr, rd = lines.write_port(), lines.read_port(domain="sync")
                addr = Signal(range(depth))
                nxt = Signal(range(depth))
                m.d.comb += [nxt.eq(Mux(addr == depth - 1, 0, addr + 1)),
                             wr.addr.eq(addr), wr.data.eq(new_word), wr.en.eq(adv),
                             rd.addr.eq(nxt), rd.en.eq(adv),  # read one cell ahead
                             word.eq(rd.data)]
                with m.If(adv):
                    m.d.sync += addr.eq(nxt)
            m.d.comb += column.eq(Cat(pix, word))

        # columns to the left: a shift register of (K_w-1)*d_w columns
        span_w = (kw - 1) * dw + 1
        shift = [Signal(pix_w * kh, name=f"col_{j}") for j in range(span_w - 1)]
        with m.If(adv):
            for j, s in enumerate(shift):
                m.d.sync += s.eq(column if j == 0 else shift[j - 1])

        def col_at(kx: int):
            j = (kw - 1 - kx) * dw
            return column if j == 0 else shift[j - 1]

        lanes = []
        for ky in range(kh):
            jv = kh - 1 - ky
            for kx in range(kw):
                lanes.append(col_at(kx)[jv * pix_w:(jv + 1) * pix_w])
        with m.If(en):
            m.d.sync += self.o.valid.eq(adv & done)
        with m.If(adv & done):
            m.d.sync += self.o.payload.as_value().eq(Cat(*lanes))
        return m


def window_generator_resources(geo: WindowGeometry, width: int, family: Family) -> Resources:
    """Estimated resources of :class:`WindowGenerator` for ``geo`` on ``width``-bit lanes: its
    line buffer (a written memory of ``line_depth`` words of ``(K_h-1)*C`` lanes, mapped by
    :func:`hetero.hw.cost.memory`), the window and column shift registers, and the scan
    (``window_lut_per_bit`` per window bit, plus 40)."""
    c = coeffs(family)
    win_bits = geo.window_lanes * width
    line = Resources()
    if geo.line_depth:
        line = memory(geo.line_depth, (geo.kernel[0] - 1) * geo.channels * width, family, rom=False)
    cols = (geo.kernel[1] - 1) * geo.dilations[1] * geo.kernel[0] * geo.channels * width
    return line + Resources(lut=c["window_lut_per_bit"] * win_bits + 40, ff=win_bits + cols + 40)


class Chain(wiring.Component):
    """Stream components in series: ``i`` of the first, ``o`` of the last, each ``o`` connected
    to the next ``i`` (payload layouts must match). Its cycles are the stages' in series."""

    def __init__(self, *stages: wiring.Component):
        self.stages = stages
        super().__init__({"i": stages[0].signature.members["i"],
                          "o": stages[-1].signature.members["o"]})

    def elaborate(self, platform) -> Module:
        m = Module()
        for k, s in enumerate(self.stages):
            m.submodules[f"stage{k}"] = s
        wiring.connect(m, wiring.flipped(self.i), self.stages[0].i)
        for a, b in zip(self.stages, self.stages[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.stages[-1].o, wiring.flipped(self.o))
        return m
