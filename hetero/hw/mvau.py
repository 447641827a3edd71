"""The matrix-vector-activation unit (MVAU): ``o = epilogue(i @ W)`` on one vector per beat,
the hardware of every MAC layer (Dense directly, Conv on the windows of its input).

Ports: ``i``, one beat of ``n_in`` raw input values; ``o``, one beat of ``n_out`` raw output
values. Each beat is an independent vector.

Folding (FINN's PE/SIMD): ``pe`` output channels x ``simd`` inputs per step, so one vector takes
``F = ceil(n_out/pe) * ceil(n_in/simd)`` steps. With ``F == 1`` the weights are constants
folded into the logic and the unit is a two-stage pipeline taking a vector every cycle
(latency 2). With ``F > 1`` the weights sit in a ROM (:class:`~amaranth.lib.memory.Memory`,
one word of ``pe*simd`` weights per step, read synchronously; synthesis maps it to block or
distributed RAM), the vector waits in a buffer while the steps run, and the next vector is
accepted during the last step: interval ``F``, latency ``F + 3``. All stages advance together on
``en = ~o.valid | o.ready``.

Grouped units (depthwise and grouped convolutions, FINN's VVAU): ``lanes[i, j]`` names the input
lane that weight ``w[i, j]`` multiplies, so ``w`` holds only the ``K*C_in/group`` weights each
output really uses and each PE reads its own inputs; the input beat keeps all ``n_lanes`` lanes.
A folded depthwise layer then takes ``C_out/pe * K/simd`` steps instead of stepping over the
zeros of a block-diagonal matrix.

Each step computes, per PE, the integer dot product ``D`` of the simd inputs with their weights
(:mod:`hetero.hw.arith`: shift-adds for constant weights, partial products for narrow ROM
weights, XNOR-popcount when inputs and weights are both +-1, a DSP multiplier otherwise) and
accumulates it over the input groups; the epilogue then maps ``D`` to the output:

* :class:`PlainEpilogue`: hls4ml's fixed point, ``requant(requant(D << shift + bias, accum),
  result)``;
* :class:`RequantEpilogue`: the model-quantized layer, one :class:`~hetero.ir.quant.Requant` per
  output channel rewritten onto ``D`` (the input zero point, the XNOR encoding and a fused ReLU
  folded into its constants), built as comparators (FINN's multi-threshold) when the output has
  few levels, else as a multiplier and a rounding shift.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hetero.ir.fixed import FixedType
from hetero.ir.quant import Requant
from hetero.hw.arith import MAX_ADD_TERMS, const_mul, const_mul_terms, csd, popcount, sum_tree, var_mul
from hetero.hw.cost import (Family, Resources, adder_luts, coeffs, dsp_per_product, memory,
                            rom_distinct_bits, tree_bits, tree_luts)
from hetero.hw.fixed_hw import requantize as fixed_requantize
from hetero.hw.fixed_hw import shape_of, vector_stream
from hetero.hw.requant_hw import requant_expr, thresholds

__all__ = ["MVAU", "PlainEpilogue", "RequantEpilogue", "dot_ranges", "folds", "mvau_cycles",
           "mvau_resources", "range_shape"]


def folds(n_in: int, n_out: int, pe: int, simd: int) -> tuple[int, int]:
    """(output groups, input groups) of a unit of that size and parallelism."""
    return math.ceil(n_out / pe), math.ceil(n_in / simd)


def mvau_cycles(n_in: int, n_out: int, pe: int, simd: int, ram: bool = False) -> tuple[int, int]:
    """``(latency, interval)`` of :class:`MVAU` (see the module docstring); ``ram``: its
    epilogue reads a memory (one cycle more latency)."""
    f = math.prod(folds(n_in, n_out, min(pe, n_out), min(simd, n_in)))
    return (2 + ram, 1) if f == 1 else (f + 3 + ram, f)


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in ``[lo, hi]``."""
    lo, hi = int(min(lo, 0)), int(max(hi, 0))
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(max(hi.bit_length(), (-lo - 1).bit_length()) + 1)


# -- epilogues ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlainEpilogue:
    """hls4ml's fixed point: ``requant(requant(D << prod_shift + bias[c], t_acc), t_out)`` where
    the sum ``D << prod_shift + bias`` has ``t_sum``'s fraction bits and fits its width."""

    bias: tuple[int, ...]  # per channel, in units of the sum's LSB
    prod_shift: int
    t_sum: FixedType
    t_acc: FixedType
    t_out: FixedType

    def form(self, pe: int) -> str:
        """Always ``plain``: logic only."""
        return "plain"

    def resources(self, pe: int, n_out: int, dw: int, family: Family) -> Resources:
        """Estimated resources of the epilogue logic of ``pe`` PEs (``epi_plain_lut_per_bit``
        per bit of the sum and the output; no registers of its own)."""
        c = coeffs(family)
        return Resources(lut=pe * c["epi_plain_lut_per_bit"] * (self.t_sum.width + self.t_out.width))

    def apply(self, m: Module, d: Value, chans: list[int], sel: Value | None, form: str = "plain") -> Value:
        """The output for the dot ``d`` of channel ``chans[sel]``."""
        bias = _sel_signal(m, [self.bias[c] for c in chans], sel, "bias")
        full = ((Value.cast(d) << self.prod_shift) + bias)[: self.t_sum.width].as_signed()
        acc = fixed_requantize(full, self.t_sum.frac_bits, self.t_acc)
        return fixed_requantize(acc, self.t_acc.frac_bits, self.t_out)


def _monotonic(rq: Requant) -> bool:
    return rq.overflow is None or rq.overflow.overflow in ("SAT", "SAT_SYM")


def _fold_relu(rq: Requant) -> Requant:
    """``max(rq(x), 0)`` as a clip-only :class:`Requant` (``rq`` monotonic)."""
    lo, hi = rq.lo, rq.hi
    if rq.overflow is not None:
        t = rq.overflow
        lo, hi = t.min_raw, t.max_raw
        if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
            lo = -hi
    return Requant(rq.mult, rq.add, rq.shift, max(lo, 0), max(hi, 0), rq.zero, rq.rounding)


#: Largest number of (channel, input value) pairs :func:`narrow_shift` checks one by one.
NARROW_CHECK_LIMIT = 1 << 22
def narrow_shift(rq: Requant, lo: tuple[int, ...], hi: tuple[int, ...]) -> Requant:
    """An equivalent :class:`Requant` with the smallest shift (so the narrowest multiplier) that
    gives exactly ``rq``'s results for every integer input in ``[lo[c], hi[c]]`` of every channel
    ``c``; ``rq`` itself when the ranges hold more than :data:`NARROW_CHECK_LIMIT` values.

    Every candidate shift is checked against every input of the ranges: one by one for a
    requantization that wraps on overflow, else (a monotonic staircase of the input, and so is
    each candidate) at each end of every range and on either side of each of ``rq``'s steps
    (:func:`_check_points`), which decides equality on the whole range exactly. Results are
    cached by content (the same epilogue is costed at every folding); do not modify them."""
    mult, add = np.asarray(rq.mult), np.asarray(rq.add)
    return _narrow_shift_of((mult.tobytes(), mult.shape, mult.dtype.str),
                            (add.tobytes(), add.shape, add.dtype.str),
                            rq.shift, rq.lo, rq.hi, rq.zero, rq.rounding, rq.overflow,
                            tuple(int(v) for v in lo), tuple(int(v) for v in hi))


def _array(key: tuple[bytes, tuple[int, ...], str]) -> np.ndarray:
    data, shape, dtype = key
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


@functools.lru_cache(maxsize=4096)
def _narrow_shift_of(mult, add, shift, lo_clip, hi_clip, zero, rounding, overflow, lo, hi) -> Requant:
    """:func:`narrow_shift` of the requantization these fields describe (its arrays as
    ``(bytes, shape, dtype)``: hashable, so results are cached by content)."""
    rq = Requant(_array(mult), _array(add), shift, lo_clip, hi_clip, zero, rounding, overflow)
    return _narrow_shift(rq, lo, hi)


def _narrow_shift(rq: Requant, lo: tuple[int, ...], hi: tuple[int, ...]) -> Requant:
    n = len(lo)
    if sum(h - l + 1 for l, h in zip(lo, hi)) > NARROW_CHECK_LIMIT or rq.shift <= 0:
        return rq
    mult = np.broadcast_to(np.asarray(rq.mult, dtype=np.int64).reshape(-1), (n,))
    add = np.broadcast_to(np.asarray(rq.add, dtype=np.int64).reshape(-1), (n,))
    full = Requant(mult.copy(), add.copy(), rq.shift, rq.lo, rq.hi, rq.zero, rq.rounding, rq.overflow)
    points = _check_points(full, lo, hi) if _monotonic(full) else None
    if points is None:  # every input of every channel
        points = [np.arange(l, h + 1, dtype=np.int64) for l, h in zip(lo, hi)]
    chan = np.repeat(np.arange(n), [len(p) for p in points])
    xs = np.concatenate(points) if n else np.zeros(0, dtype=np.int64)

    def at(r: Requant) -> np.ndarray:  # r's output of channel chan[i] at xs[i]
        return Requant(r.mult[chan], r.add[chan], r.shift, r.lo, r.hi, r.zero, r.rounding, r.overflow)(xs)

    want = at(full)
    sample = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), 256)).astype(np.int64))
    for s in range(0, rq.shift):
        k = rq.shift - s
        cand = Requant(np.round(mult / 2.0 ** k).astype(np.int64), np.round(add / 2.0 ** k).astype(np.int64),
                       s, rq.lo, rq.hi, rq.zero, rq.rounding, rq.overflow)
        quick = Requant(cand.mult[chan[sample]], cand.add[chan[sample]], s, rq.lo, rq.hi, rq.zero,
                        rq.rounding, rq.overflow)(xs[sample])
        if np.array_equal(quick, want[sample]) and np.array_equal(at(cand), want):
            return cand
    return full


#: Most steps :func:`_check_points` locates; beyond, the exhaustive check is as cheap.
_MAX_STEPS = 1 << 18


def _check_points(rq: Requant, lo: tuple[int, ...], hi: tuple[int, ...]) -> list[np.ndarray] | None:
    """Per channel ``c``, inputs in ``[lo[c], hi[c]]`` on which agreeing with the monotonic
    (per channel, non-decreasing or non-increasing in the input) ``rq`` proves a candidate of
    the same monotony equal to it on the whole range: both ends and, for every step of ``rq``
    (an input whose output differs from its neighbour's), the inputs on either side. Between
    two consecutive such points ``rq`` is constant, so a candidate equal to it at both is equal
    in between. The steps are found by a bisection per output level. None where that does not
    pay (more than :data:`_MAX_STEPS` levels) or ``x * mult + add`` could leave int64."""
    n = len(lo)
    m = np.asarray(rq.mult, dtype=np.int64)
    a = np.asarray(rq.add, dtype=np.int64)
    reach = max(max(abs(int(l)), abs(int(h))) for l, h in zip(lo, hi)) if n else 0
    if reach * int(np.abs(m).max(initial=0)) + int(np.abs(a).max(initial=0)) >= 1 << 62:
        return None
    sign = np.where(m < 0, -1, 1)  # walk each channel in the direction its output rises
    t_lo = np.where(sign > 0, np.asarray(lo, dtype=np.int64), -np.asarray(hi, dtype=np.int64))
    t_hi = np.where(sign > 0, np.asarray(hi, dtype=np.int64), -np.asarray(lo, dtype=np.int64))

    def f(c: np.ndarray, t: np.ndarray) -> np.ndarray:
        return Requant(m[c], a[c], rq.shift, rq.lo, rq.hi, rq.zero, rq.rounding, rq.overflow)(sign[c] * t)

    every = np.arange(n)
    y_lo, y_hi = f(every, t_lo), f(every, t_hi)
    levels = np.maximum(y_hi - y_lo, 0)
    if int(levels.sum()) > _MAX_STEPS:
        return None
    # one lane per (channel, level v in (y_lo, y_hi]): the first t with f(t) >= v
    c = np.repeat(every, levels)
    first = np.cumsum(levels) - levels  # each channel's first lane
    v = y_lo[c] + 1 + (np.arange(c.size) - first[c])
    below, at_or_above = t_lo[c].copy(), t_hi[c].copy()  # f(below) < v <= f(at_or_above)
    while c.size and np.any(at_or_above - below > 1):
        mid = (below + at_or_above) // 2
        up = f(c, mid) >= v
        at_or_above = np.where(up, mid, at_or_above)
        below = np.where(up, below, mid)
    out = []
    for i, steps in enumerate(np.split(at_or_above, np.cumsum(levels)[:-1])):
        if t_hi[i] < t_lo[i]:  # an empty range: nothing to check
            out.append(np.zeros(0, dtype=np.int64))
            continue
        t = np.unique(np.concatenate([[t_lo[i], t_hi[i]], steps, steps - 1]))
        out.append(sign[i] * t)
    return out


#: Weights of the epilogue's cost model, in LUTs. A BRAM18 weighs its share of the xc7z020
#: (53,200 LUTs / 280 BRAM18 ~ 190); a DSP four times its share there (53,200 / 220 ~ 240):
#: the folding (:mod:`hetero.passes.folding`) gives the board's DSPs to the products, so a DSP taken
#: by an epilogue is one fewer product in parallel.
LUTS_PER_BRAM18 = 190
LUTS_PER_DSP = 1000
#: Largest output table (entries per PE) the ``table`` form may use.
TABLE_MAX_ENTRIES = 1 << 15
#: Epilogue forms (:meth:`RequantEpilogue.form`); the last two read a memory: one cycle more.
FORMS = ("compare", "multiply", "table", "thresholds")
RAM_FORMS = ("table", "thresholds")
#: Widest single weight memory (bits); wider ROM words are split over several memories.
ROM_CHUNK_BITS = 1 << 15


def ram_cost(depth: int, width: int) -> float:
    """Estimated cost in LUTs of a ROM of ``depth`` words of ``width`` bits read synchronously:
    distributed RAM (one LUT per 64 x 1 bits) or 18-kbit block RAMs, whichever is cheaper."""
    lutram = math.ceil(depth / 64) * width * (1.25 if depth > 64 else 1.0)  # + read muxes
    aspect = next(w for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1),
                                 (1 << 62, 1)) if depth <= d)
    bram = math.ceil(width / aspect) * math.ceil(depth / 16384) * LUTS_PER_BRAM18
    return min(lutram, bram)


def _per_channel(v, n: int) -> np.ndarray:
    a = np.asarray(v, dtype=np.int64).reshape(-1)
    return np.broadcast_to(a, (n,)) if a.size == 1 else a


def _sel_signal(m: Module, values: list[int], sel: Value | None, name: str) -> Value:
    """``values[sel]`` as a signal driven by a constant table (a constant when all are equal):
    one table lookup shared by every use, never a copy of the logic per entry."""
    shape = range_shape(min(values), max(values))
    if sel is None or all(v == values[0] for v in values):
        return Const(values[0], shape)
    s = Signal(shape, name=name)
    with m.Switch(sel):
        for k, v in enumerate(values):
            with m.Case(k):
                m.d.comb += s.eq(v)
    return s


@dataclass(frozen=True)
class RequantEpilogue:
    """A model-quantized layer's epilogue on the dot ``D``: per channel ``c``,
    ``acc = alpha * D + beta[c]`` is the reference's accumulator and the output is ``rq(acc)``
    (then ``max(., 0)`` if ``relu``), or ``+-1`` by the sign of ``acc * mult + add`` if
    ``bipolar``. ``d_lo``/``d_hi``: the range of ``D`` per channel.

    Four forms compute it (:meth:`form` picks the cheapest for a folding, :data:`FORMS`):

    * ``compare``: comparators in logic against each channel's thresholds (FINN's
      multi-threshold), from constant tables when a PE serves several channels;
    * ``multiply``: a multiplier, a rounding shift and a clip (a DSP unless the constant is a
      few shift-adds);
    * ``table``: the output itself read from a ROM at ``offset[c] + D`` (every value of ``D``
      a channel can take, evaluated with the reference);
    * ``thresholds``: each channel's thresholds read from a ROM word, compared in parallel.

    Every form equals the reference for every ``D`` in range (``compare`` and ``thresholds``
    only exist for monotonic requantizations).
    """

    rq: Requant
    alpha: int
    beta: tuple[int, ...]
    d_lo: tuple[int, ...]
    d_hi: tuple[int, ...]
    relu: bool
    bipolar: bool
    t_out: FixedType
    forms: tuple[str, ...] = FORMS  #: the forms :meth:`form` may pick from

    @functools.cached_property
    def dot_rq(self) -> Requant:
        """The requantization rewritten onto ``D`` (``acc*m + a == D*(alpha*m) + beta*m + a``),
        with a ReLU folded in when the requantization is monotonic."""
        n = len(self.beta)
        m, a = _per_channel(self.rq.mult, n), _per_channel(self.rq.add, n)
        beta = np.asarray(self.beta, dtype=np.int64)
        rq = Requant(m * self.alpha, a + beta * m, self.rq.shift, self.rq.lo, self.rq.hi, self.rq.zero,
                     self.rq.rounding, self.rq.overflow)
        if self.relu and not self.bipolar and _monotonic(rq):
            rq = _fold_relu(rq)
        return rq if self.bipolar else narrow_shift(rq, self.d_lo, self.d_hi)

    def on_dot(self) -> Requant:
        """:attr:`dot_rq` (kept for callers of the method)."""
        return self.dot_rq

    def values(self, d: np.ndarray, chans: list[int]) -> np.ndarray:
        """The reference's outputs [len(d), len(chans)] for the dot values ``d`` of channels
        ``chans``: exactly the layer's reference on ``acc = alpha * d + beta[c]``."""
        n = len(self.beta)
        d = np.asarray(d, dtype=np.int64).reshape(-1, 1)
        acc = self.alpha * d + np.asarray(self.beta, dtype=np.int64)[chans]
        m, a = _per_channel(self.rq.mult, n)[chans], _per_channel(self.rq.add, n)[chans]
        if self.bipolar:
            return np.where(acc * m + a >= 0, 1, -1).astype(np.int64)
        rq = self.rq
        y = Requant(m, a, rq.shift, rq.lo, rq.hi, rq.zero, rq.rounding, rq.overflow)(acc)
        return np.maximum(y, 0) if self.relu else y

    # -- the form: the cheapest by a first-order cost model ---------------------------------
    def monotonic(self) -> bool:
        """Whether the output is a staircase of ``D`` (thresholds describe it)."""
        return self.bipolar or _monotonic(self.rq)

    def _levels(self) -> int:
        if self.bipolar:
            return 2
        rq = self.rq
        return (rq.hi - max(rq.lo, 0 if self.relu else rq.lo) + 1) if rq.overflow is None \
            else (1 << rq.overflow.width)

    def costs(self, pe: int) -> dict[str, float]:
        """Estimated cost in LUTs (:data:`LUTS_PER_BRAM18`, :data:`LUTS_PER_DSP`) of each
        form possible for a unit of ``pe`` PEs; ``pe`` PEs share the channels round robin."""
        n = len(self.beta)
        pe = max(1, min(pe, n))
        nf = math.ceil(n / pe)
        ranges = [h - l + 1 for l, h in zip(self.d_lo, self.d_hi)]
        tw = range_shape(min(min(self.d_lo), -1), max(self.d_hi) + 1).width
        ow = self.t_out.width
        n_t = max(1, min(self._levels() - 1, max(ranges) - 1))
        tables = math.ceil(nf / 64) if nf > 1 else 0  # LUTs per bit of a constant table
        out: dict[str, float] = {}
        if self.monotonic():
            cmp = tw if nf > 1 else math.ceil(tw / 2)
            out["compare"] = pe * (n_t * (cmp + tw * tables) + n_t + ow)
            out["thresholds"] = pe * (ram_cost(nf, n_t * tw) + n_t * (tw + 1) + ow)
        if not self.bipolar:
            digits = len(csd(int(_per_channel(self.rq.mult, n)[0]))) if nf == 1 else MAX_ADD_TERMS + 1
            mult = tw * digits if digits <= MAX_ADD_TERMS else LUTS_PER_DSP + 32 * tables
            out["multiply"] = pe * (mult + 3 * ow + 16)
        entries = max(sum(ranges[c] for c in range(p, n, pe)) for p in range(pe))
        if entries <= TABLE_MAX_ENTRIES:
            out["table"] = pe * (ram_cost(entries, ow) + tw + tw * tables)
        return out

    def form(self, pe: int) -> str:
        """The cheapest form (:meth:`costs`) for a unit of ``pe`` PEs; logic before memory on
        a tie (memory adds a cycle)."""
        costs = {f: c for f, c in self.costs(pe).items() if f in self.forms}
        if not costs:
            raise ValueError(f"no form among {self.forms} computes this epilogue")
        return min(costs, key=lambda f: (costs[f], f in RAM_FORMS, FORMS.index(f)))

    def resources(self, pe: int, n_out: int, dw: int, family: Family) -> Resources:
        """Estimated resources of the epilogue of a unit of ``pe`` PEs over ``n_out`` channels
        and ``dw``-bit dots, in the form :meth:`form` picks: a memory form's ROMs
        (:meth:`rom_shape`, mapped by :func:`hetero.hw.cost.memory`), the registered dot and
        their comparators or address adder; a logic form's LUTs from :meth:`costs` (the same
        first-order model that picks the form) scaled by the fitted ``epi_logic_scale``, with
        the ``multiply`` form's multipliers as DSP blocks where synthesis puts them there."""
        c = coeffs(family)
        form = self.form(pe)
        if form in RAM_FORMS:
            mem = Resources()
            for p in range(pe):
                mem = mem + memory(*self.rom_shape(list(range(p, n_out, pe)), form), family)
            tw = range_shape(min(min(self.d_lo), -1), max(self.d_hi) + 1).width
            if form == "table":
                logic = pe * 2 * tw
            else:
                n_t = self.rom_shape(list(range(0, n_out, pe)), form)[1] // max(tw, 1)
                logic = pe * (n_t * (tw + 1) + self.t_out.width)
            return mem + Resources(lut=c["epi_logic_scale"] * logic, ff=pe * dw)
        logic = self.costs(pe)[form]
        dsp = 0
        if form == "multiply":  # apply(): const_mul, or d * table value
            mults = np.asarray(self.dot_rq.mult).reshape(-1)
            for p in range(pe):
                ms = [int(mults[ch % len(mults)]) for ch in range(p, n_out, pe)]
                m0 = ms[0]
                if len(ms) == 1:
                    big = len(csd(m0)) > MAX_ADD_TERMS and dw > MAX_ADD_TERMS
                elif all(m == m0 for m in ms):  # a constant: Yosys shifts powers of two
                    big = m0 != 0 and (abs(m0) & (abs(m0) - 1)) != 0
                else:
                    big = True
                if big:
                    dsp += dsp_per_product(dw, max(abs(m).bit_length() for m in ms) + 1, family)
            if n_out > pe:
                logic -= pe * LUTS_PER_DSP  # costs() counts a DSP per PE as LUTS_PER_DSP LUTs
        return Resources(lut=c["epi_logic_scale"] * max(logic, 0.0), dsp=dsp)

    def rom_shape(self, chans: list[int], form: str) -> tuple[int, int]:
        """``(depth, width)`` of :meth:`rom` for the channels ``chans``, without its words."""
        if form == "table":
            return sum(self.d_hi[c] - self.d_lo[c] + 1 for c in chans), self.t_out.width
        rows = [self._threshold_rows(self.dot_rq, c) for c in chans]
        cols = self._threshold_columns(rows, chans)
        tw = range_shape(min(min(min(col) for col in cols), -1), max(max(col) for col in cols)).width
        return len(chans), len(cols) * tw

    def _threshold_rows(self, rq: Requant, c: int) -> tuple[list[int], int, int]:
        """``(T, base, step)`` with ``y = base + step * #(D >= t for t in T)`` on channel ``c``."""
        lo, hi = self.d_lo[c], self.d_hi[c]
        if self.bipolar:  # y = +1 iff D*m + a >= 0
            m, a = int(rq.mult[c]), int(rq.add[c])
            if m > 0:
                return [-(a // m)], -1, 2  # ceil(-a / m)
            if m < 0:
                return [(a // -m) + 1], 1, -2  # D <= floor(a / -m) gives +1
            return [], (1 if a >= 0 else -1), 2
        if hi - lo < NARROW_CHECK_LIMIT:  # read off the reference's values
            d = np.arange(lo, hi + 1)
            y = self.values(d, [c])[:, 0]
            base, top = int(y.min()), int(y.max())
            if y[0] <= y[-1]:  # non-decreasing: smallest D reaching each level
                return [int(d[np.searchsorted(y, v)]) for v in range(base + 1, top + 1)], base, 1
            rev = y[::-1]  # non-increasing: count the D above each level's last
            return [int(d[len(d) - np.searchsorted(rev, v)]) for v in range(base + 1, top + 1)][::-1], top, -1
        ts, base, inc = thresholds(rq, c, lo, hi)
        if inc:
            return ts, base, 1
        return sorted(t + 1 for t in ts), base + len(ts), -1

    def _out(self, y: Value) -> Value:
        out = shape_of(self.t_out)
        y = Value.cast(y)
        return y[: out.width].as_signed() if out.signed else y[: out.width]

    # -- logic forms ------------------------------------------------------------------------
    def apply(self, m: Module, d: Value, chans: list[int], sel: Value | None, form: str) -> Value:
        """The output for the dot ``d`` of channel ``chans[sel]`` in a logic form."""
        d = Value.cast(d)
        if form == "compare":
            rows = [self._threshold_rows(self.dot_rq, c) for c in chans]
            cols = self._threshold_columns(rows, chans)
            hits = [d >= _sel_signal(m, col, sel, f"thr{k}") for k, col in enumerate(cols)]
            return self._count_to_out(m, hits, rows, sel)
        rq = self.dot_rq
        mults = [int(rq.mult[c]) for c in chans]
        adds = [int(rq.add[c]) for c in chans]
        if len(chans) == 1:
            x = const_mul(d, mults[0]) + adds[0]
        else:  # one multiplier for every channel of this PE: constants from tables
            mul = _sel_signal(m, mults, sel, "mult")
            x = (d * mul) + _sel_signal(m, adds, sel, "add")
        y = requant_expr(x, Requant(np.int64(1), np.int64(0), rq.shift, rq.lo, rq.hi, rq.zero,
                                    rq.rounding, rq.overflow))
        if self.relu and not self.bipolar and not _monotonic(rq):
            y = Mux(y.as_signed() < 0, 0, y) if y.shape().signed else y
        return y

    def _threshold_columns(self, rows, chans: list[int]) -> list[list[int]]:
        """Column ``k``: threshold ``k`` of every channel, clamped to what ``D`` can reach
        (channels with fewer thresholds get one ``D`` never reaches)."""
        n_t = max(1, max(len(t) for t, _, _ in rows))  # a memory word needs one at least
        never = max(self.d_hi[c] for c in chans) + 1
        always = min(self.d_lo[c] for c in chans)
        return [[min(max(t[k], always), never) if k < len(t) else never for t, _, _ in rows]
                for k in range(n_t)]

    def _count_to_out(self, m: Module, hits: list[Value], rows, sel: Value | None) -> Value:
        """``base[c] + step[c] * (number of hits)``: steps are all +-1, or all +-2 (bipolar)."""
        count = popcount(hits)
        mag = count << 1 if self.bipolar else count
        base = _sel_signal(m, [b for _, b, _ in rows], sel, "base")
        steps = [s for _, _, s in rows]
        if all(s > 0 for s in steps):
            y = base + mag
        elif all(s < 0 for s in steps):
            y = base - mag
        else:
            neg = _sel_signal(m, [int(s < 0) for s in steps], sel, "down")
            y = Mux(neg, base - mag, base + mag)
        return self._out(y)

    # -- memory forms -----------------------------------------------------------------------
    def rom(self, chans: list[int], form: str) -> tuple[list[int], int]:
        """``(words, width)`` of the ROM of a memory form for the channels ``chans`` (word
        ``offset(k) + D`` of channel ``chans[k]`` for ``table``, word ``k`` for ``thresholds``)."""
        if form == "table":
            ow = self.t_out.width
            words = []
            for c in chans:
                y = self.values(np.arange(self.d_lo[c], self.d_hi[c] + 1), [c])[:, 0]
                words += [int(v) & ((1 << ow) - 1) for v in y]
            return words, ow
        rows = [self._threshold_rows(self.dot_rq, c) for c in chans]
        cols = self._threshold_columns(rows, chans)
        tw = range_shape(min(min(min(col) for col in cols), -1), max(max(col) for col in cols)).width
        words = []
        for k in range(len(chans)):
            word = 0
            for j, col in enumerate(cols):
                word |= (col[k] & ((1 << tw) - 1)) << (j * tw)
            words.append(word)
        return words, len(cols) * tw

    def rom_address(self, m: Module, d: Value, chans: list[int], sel: Value | None, form: str,
                    depth: int) -> Value:
        """The ROM address for the dot ``d`` of channel ``chans[sel]``."""
        if form == "thresholds":
            return sel if sel is not None else Const(0, 1)
        starts = np.cumsum([0] + [self.d_hi[c] - self.d_lo[c] + 1 for c in chans])
        offset = _sel_signal(m, [int(starts[k]) - self.d_lo[c] for k, c in enumerate(chans)], sel, "offset")
        width = max(1, (depth - 1).bit_length())
        return (Value.cast(d) + offset)[:width]

    def from_rom(self, m: Module, word: Value, d: Value, chans: list[int], sel: Value | None,
                 form: str) -> Value:
        """The output from the ROM word read for the dot ``d`` (registered alongside it)."""
        if form == "table":
            return self._out(word)
        rows = [self._threshold_rows(self.dot_rq, c) for c in chans]
        cols = self._threshold_columns(rows, chans)
        tw = len(word) // len(cols)
        hits = [Value.cast(d) >= word[j * tw:(j + 1) * tw].as_signed() for j in range(len(cols))]
        return self._count_to_out(m, hits, rows, sel)


# -- the unit -------------------------------------------------------------------------------
class MVAU(wiring.Component):
    """``o = epilogue(i @ w)`` with ``pe * simd`` products per step; see the module docstring.

    ``w``: integer weights [n_in, n_out]; ``t_x``: the input lanes' type (raw values);
    ``x_range``: the raw input values that occur (default: the type's range); ``xnor``: inputs
    and weights are all +-1, so ``D`` counts the agreeing pairs (``i @ w == 2*D - n_in``; the
    epilogue must say ``alpha=2, beta=-n_in``); ``bipolar``: inputs are +-1 (other weights), so
    ``D`` sums the weights of the +1 inputs (``i @ w == 2*D - sum(w)``: ``alpha=2,
    beta=-sum(w)``), one bit per input; ``epilogue``: a :class:`PlainEpilogue` or
    :class:`RequantEpilogue` over ``D``; ``t_out``: the output lanes' type.
    """

    def __init__(self, w: np.ndarray, t_x: FixedType, t_out: FixedType, epilogue, pe: int, simd: int,
                 x_range: tuple[int, int] | None = None, xnor: bool = False, bipolar: bool = False,
                 lanes: np.ndarray | None = None, n_lanes: int | None = None):
        w = np.asarray(w, dtype=np.int64)
        self.n_in, self.n_out = w.shape
        # grouped (depthwise) units: output j multiplies w[:, j] by input lanes lanes[:, j]
        self.lanes = None if lanes is None else np.asarray(lanes, dtype=np.int64)
        if self.lanes is not None and self.lanes.shape != w.shape:
            raise ValueError(f"lanes {self.lanes.shape} must match the weights {w.shape}")
        self.n_lanes = n_lanes if n_lanes is not None else (
            self.n_in if self.lanes is None else int(self.lanes.max()) + 1)
        self.w, self.t_x, self.t_out, self.epilogue, self.xnor = w, t_x, t_out, epilogue, xnor
        self.pe, self.simd = max(1, min(pe, self.n_out)), max(1, min(simd, self.n_in))
        self.nf, self.sf = folds(self.n_in, self.n_out, self.pe, self.simd)
        self.bipolar = bipolar or xnor
        self.x_lo, self.x_hi = x_range if x_range is not None else (t_x.min_raw, t_x.max_raw)
        if bipolar and not xnor:
            self.x_lo, self.x_hi = 0, 1  # the input's bit: 1 for +1
        if xnor and not np.all(np.abs(w) == 1):
            raise ValueError("an XNOR unit needs weights of -1 and +1 only")
        d_lo, d_hi = dot_ranges(w, (self.x_lo, self.x_hi), xnor)
        self.d_lo, self.d_hi = d_lo, d_hi
        self.d_range = (min(d_lo), max(d_hi))
        self.d_shape = range_shape(self.d_range[0] - 1, self.d_range[1])  # signed: wraps are exact
        self.w_shape = range_shape(int(w.min()), int(w.max()))
        super().__init__({"i": In(vector_stream(t_x, self.n_lanes)), "o": Out(vector_stream(t_out, self.n_out))})

    @property
    def form(self) -> str:
        """The epilogue's form for this folding (:meth:`RequantEpilogue.form`)."""
        return self.epilogue.form(self.pe)

    @property
    def cycles(self) -> tuple[int, int]:
        """``(latency, interval)``: :func:`mvau_cycles` of this unit."""
        return mvau_cycles(self.n_in, self.n_out, self.pe, self.simd, self.form in RAM_FORMS)

    @property
    def steps(self) -> int:
        return self.nf * self.sf

    def _weight(self, nf: int, sf: int, p: int, s: int) -> int | None:
        i, j = sf * self.simd + s, nf * self.pe + p
        return int(self.w[i, j]) if i < self.n_in and j < self.n_out else None

    def _lane(self, nf: int, sf: int, p: int, s: int) -> int | None:
        """The input lane multiplied by weight (nf, sf, p, s) (None: padding)."""
        i, j = sf * self.simd + s, nf * self.pe + p
        if i >= self.n_in or j >= self.n_out:
            return None
        return i if self.lanes is None else int(self.lanes[i, j])

    def _dot(self, xs: list[Value], ws: list) -> Value:
        """The dot product of one PE's simd inputs with its weights (ints: constants; values:
        ROM fields), wrapped to the accumulator's width."""
        width = self.d_shape.width
        if self.xnor:
            bits = []
            for x, w in zip(xs, ws):
                xb = ~Value.cast(x)[-1]  # +1 has sign bit 0
                if isinstance(w, int):
                    bits.append(xb if w > 0 else ~xb)
                else:
                    bits.append(~(xb ^ w))
            return popcount(bits)
        if self.bipolar:
            xs = [~Value.cast(x)[-1] for x in xs]  # +1 -> 1, -1 -> 0
        terms = []
        for x, w in zip(xs, ws):
            if isinstance(w, int):
                if w:
                    terms.append(const_mul(x, w))
            else:
                terms.append(var_mul(x, w))
        return sum_tree(terms, width)

    def _rom_words(self) -> tuple[list[int], int]:
        """ROM contents (one word per step, field (p, s) at bits ``(p*simd + s) * ww``) and ww."""
        ww = 1 if self.xnor else self.w_shape.width
        words = []
        for k in range(self.steps):
            word = 0
            for p in range(self.pe):
                for s in range(self.simd):
                    v = self._weight(k // self.sf, k % self.sf, p, s)
                    if self.xnor:
                        bit = 1 if v is None else int(v > 0)  # padding: +1 against a -1 input
                    else:
                        bit = (v or 0) & ((1 << ww) - 1)
                    word |= bit << ((p * self.simd + s) * ww)
            words.append(word)
        return words, ww

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd, nf_n, sf_n = self.pe, self.simd, self.nf, self.sf
        steps = self.steps
        x_shape = shape_of(self.t_x)
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        # dot stage registers: per PE, the dot product of this step's simd inputs
        p_valid, p_first, p_last = Signal(), Signal(), Signal()
        p_nf = Signal(range(max(nf_n, 2)))
        p_dot = [Signal(self.d_shape, name=f"dot_{p}") for p in range(pe)]

        if steps == 1:
            m.d.comb += self.i.ready.eq(en)
            with m.If(en):
                m.d.sync += [p_valid.eq(self.i.valid), p_first.eq(1), p_last.eq(1), p_nf.eq(0)]
                for p in range(pe):
                    xs = [self.i.payload[self._lane(0, 0, p, s)] for s in range(simd)]
                    m.d.sync += p_dot[p].eq(self._dot(xs, [self._weight(0, 0, p, s) for s in range(simd)]))
        else:
            busy = Signal()
            sf, nf, step = Signal(range(max(sf_n, 2))), Signal(range(max(nf_n, 2))), Signal(range(steps))
            xbuf = Signal(data.ArrayLayout(x_shape, self.n_lanes))
            last_step = (sf == sf_n - 1) & (nf == nf_n - 1)
            take = ~busy | last_step
            m.d.comb += self.i.ready.eq(en & take)
            words, ww = self._rom_words()
            # one ROM word of pe*simd weights per step, split into memories of at most
            # ROM_CHUNK_BITS bits (Amaranth's netlist caps a value at 65,536 bits)
            chunk = max(ww, ROM_CHUNK_BITS // ww * ww)
            rom_parts = []
            for k, lo in enumerate(range(0, simd * pe * ww, chunk)):
                width = min(chunk, simd * pe * ww - lo)
                rom = Memory(shape=unsigned(width), depth=steps,
                             init=[(w >> lo) & ((1 << width) - 1) for w in words])
                m.submodules[f"weights{k}" if k else "weights"] = rom
                rd = rom.read_port(domain="sync")
                m.d.comb += [rd.addr.eq(step), rd.en.eq(en)]
                rom_parts.append(rd.data)
            # stage 1: the input slice for this step, aligned with the ROM word
            s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
            s1_nf = Signal(range(max(nf_n, 2)))
            # per step, each PE's simd inputs (shared by all PEs unless the unit is grouped)
            grouped = self.lanes is not None
            s1_x = Signal(data.ArrayLayout(x_shape, simd * (pe if grouped else 1)))
            pad = -1 if self.bipolar else 0  # padding lanes contribute nothing
            with m.If(en):
                with m.If(busy):
                    with m.If(sf == sf_n - 1):
                        m.d.sync += sf.eq(0)
                        with m.If(nf != nf_n - 1):
                            m.d.sync += nf.eq(nf + 1)
                        with m.Else():
                            m.d.sync += nf.eq(0)
                    with m.Else():
                        m.d.sync += sf.eq(sf + 1)
                    m.d.sync += step.eq(step + 1)
                    with m.If(last_step):
                        m.d.sync += [busy.eq(self.i.valid), step.eq(0)]
                with m.Else():
                    m.d.sync += busy.eq(self.i.valid)
                with m.If(take & self.i.valid):
                    m.d.sync += xbuf.eq(self.i.payload)
                m.d.sync += [s1_valid.eq(busy), s1_first.eq(sf == 0), s1_last.eq(sf == sf_n - 1), s1_nf.eq(nf)]
                if grouped:
                    with m.Switch(step):
                        for k in range(steps):
                            with m.Case(k):
                                for p in range(pe):
                                    for s in range(simd):
                                        lane = self._lane(k // sf_n, k % sf_n, p, s)
                                        m.d.sync += s1_x[p * simd + s].eq(pad if lane is None else xbuf[lane])
                elif sf_n == 1:
                    m.d.sync += s1_x.eq(xbuf)
                else:
                    with m.Switch(sf):
                        for k in range(sf_n):
                            with m.Case(k):
                                for s in range(simd):
                                    i = k * simd + s
                                    m.d.sync += s1_x[s].eq(xbuf[i] if i < self.n_in else pad)
                m.d.sync += [p_valid.eq(s1_valid), p_first.eq(s1_first), p_last.eq(s1_last), p_nf.eq(s1_nf)]
                for p in range(pe):
                    xs = [s1_x[(p * simd if grouped else 0) + s] for s in range(simd)]
                    ws = []
                    for s in range(simd):
                        off = (p * simd + s) * ww
                        field = rom_parts[off // chunk][off % chunk:off % chunk + ww]
                        ws.append(field if self.xnor or not self.w_shape.signed else field.as_signed())
                    m.d.sync += p_dot[p].eq(self._dot(xs, ws))

        # accumulate stage: accumulate over input groups, apply the epilogue when done; a memory
        # form reads its ROM there and writes the output one stage later
        width = self.d_shape.width
        form, ram = self.form, self.form in RAM_FORMS
        outbuf = [Signal(shape_of(self.t_out), name=f"out_{j}") for j in range(self.n_out)]
        m.d.comb += [self.o.payload[j].eq(outbuf[j]) for j in range(self.n_out)]
        done = p_valid & p_last  # a group of channels has its whole dot product
        if ram:
            q_valid, q_nf = Signal(), Signal(range(max(nf_n, 2)))
            with m.If(en):
                m.d.sync += [q_valid.eq(done), q_nf.eq(p_nf), self.o.valid.eq(q_valid & (q_nf == nf_n - 1))]
            w_valid, w_nf = q_valid, q_nf
        else:
            with m.If(en):
                m.d.sync += self.o.valid.eq(done & (p_nf == nf_n - 1))
            w_valid, w_nf = done, p_nf
        for p in range(pe):
            chans = [k * pe + p for k in range(nf_n) if k * pe + p < self.n_out]
            if not chans:
                continue
            acc = Signal(self.d_shape, name=f"acc_{p}")
            total = Signal(self.d_shape, name=f"total_{p}")
            res = Signal(shape_of(self.t_out), name=f"res_{p}")
            if sf_n == 1:
                m.d.comb += total.eq(p_dot[p])
            else:
                m.d.comb += total.eq((Mux(p_first, 0, acc) + p_dot[p])[:width])
                with m.If(en & p_valid):
                    m.d.sync += acc.eq(total)
            sel = p_nf if len(chans) > 1 else None
            if ram:
                words, ww = self.epilogue.rom(chans, form)
                m.submodules[f"epilogue_{p}"] = rom = Memory(shape=unsigned(ww), depth=len(words), init=words)
                rd = rom.read_port(domain="sync")
                m.d.comb += [rd.en.eq(en), rd.addr.eq(self.epilogue.rom_address(m, total, chans, sel, form, len(words)))]
                q_total = Signal(self.d_shape, name=f"q_total_{p}")
                with m.If(en):
                    m.d.sync += q_total.eq(total)
                q_sel = q_nf if len(chans) > 1 else None
                m.d.comb += res.eq(self.epilogue.from_rom(m, rd.data, q_total, chans, q_sel, form))
            else:
                m.d.comb += res.eq(self.epilogue.apply(m, total, chans, sel, form))
            with m.If(en & w_valid):
                if nf_n == 1:
                    m.d.sync += outbuf[chans[0]].eq(res)
                else:
                    with m.Switch(w_nf):
                        for k, j in enumerate(chans):
                            with m.Case(k):
                                m.d.sync += outbuf[j].eq(res)
        return m


def dot_ranges(w: np.ndarray, x_range: tuple[int, int], xnor: bool = False) -> tuple[list[int], list[int]]:
    """Per output channel, the least and greatest dot product ``D`` of ``w``'s column with
    inputs in ``x_range`` (with ``xnor``: the count of agreeing +-1 pairs, 0..n_in)."""
    w = np.asarray(w, dtype=np.int64)
    if xnor:
        return [0] * w.shape[1], [w.shape[0]] * w.shape[1]
    lo, hi = x_range
    return ([int(v) for v in np.minimum(w * lo, w * hi).sum(0)],
            [int(v) for v in np.maximum(w * lo, w * hi).sum(0)])


# -- cost model ------------------------------------------------------------------------------
#: ROMs up to this many bits (steps x word width) get their distinct bits counted.
ROM_DISTINCT_MAX = 1 << 23


def mvau_resources(w: np.ndarray, t_x: FixedType, t_out: FixedType, epilogue, pe: int, simd: int,
                   x_range: tuple[int, int] | None = None, xnor: bool = False, bipolar: bool = False,
                   n_lanes: int | None = None, family: Family = "xc7") -> Resources:
    """Estimated resources of :class:`MVAU` built with these arguments, from the same
    structure (no elaboration): constant shift-add products (:func:`~hetero.hw.arith.const_mul_terms`)
    when fully parallel, else a weight ROM of one word per step (:func:`rom_fields`, mapped by
    :func:`hetero.hw.cost.memory`) and per-step products, the accumulators, the input buffer
    and the epilogue's own ``resources`` for the form it picks."""
    c = coeffs(family)
    w = np.asarray(w, dtype=np.int64)
    n_in, n_out = w.shape
    pe, simd = max(1, min(pe, n_out)), max(1, min(simd, n_in))
    nf, sf = folds(n_in, n_out, pe, simd)
    steps = nf * sf
    bip = bipolar or xnor
    lo, hi = x_range if x_range is not None else (t_x.min_raw, t_x.max_raw)
    if bipolar and not xnor:
        lo, hi = 0, 1
    d_lo, d_hi = dot_ranges(w, (lo, hi), xnor)
    dw = range_shape(min(d_lo) - 1, max(d_hi)).width
    xw = 1 if bip else t_x.width
    lanes_in = n_lanes or n_in
    lut = ff = lutram = bram = 0.0
    dsp = 0
    if steps == 1:
        if xnor:
            lut += pe * c["pop_lut_per_bit"] * n_in
        else:
            cache: dict[int, tuple[int, int, bool]] = {}
            dsp_pairs = set()
            for j in range(n_out):
                col = w[:, j]
                nz = np.nonzero(col)[0]
                terms, width, on_dsp = 0, 0.0, 0
                for i in nz:
                    v = int(col[i])
                    t = cache.get(v)
                    if t is None:
                        t = cache[v] = const_mul_terms(v, xw, bip)
                    terms += t[0]
                    width += t[0] * t[1]
                    if t[2]:
                        dsp_pairs.add((int(i), v))
                        on_dsp += 1
                if terms:  # sums of DSP products: Yosys folds some into the DSPs' adders
                    bits = tree_bits(terms, width / terms, dw)
                    lut += bits * ((terms - on_dsp) / terms * c["lut_per_adder_bit"]
                                   + on_dsp / terms * c["dsp_adder_lut_per_bit"])
            dsp += sum(dsp_per_product(xw, abs(v).bit_length() + 1, family) for _, v in dsp_pairs)
        ff += pe * dw
    else:
        w_shape = range_shape(int(w.min()), int(w.max()))
        ww = 1 if xnor else w_shape.width
        total = pe * simd * ww
        chunk = max(ww, ROM_CHUNK_BITS // ww * ww)
        rom = rom_fields(w, pe, simd, nf, sf, xnor) if steps * total <= ROM_DISTINCT_MAX else None
        for start in range(0, total, chunk):
            width = min(chunk, total - start)
            distinct = None
            if rom is not None:  # counted only for a ROM in logic (the costly part of a search)
                distinct = functools.partial(rom_distinct_bits,
                                             rom[:, start // ww:(start + width) // ww], ww)
            r = memory(steps, width, family, distinct=distinct)
            lut, ff, bram, lutram = lut + r.lut, ff + r.ff, bram + r.bram36, lutram + r.lutram
        # pruned weights (UNSW-NB15 is 80-97 % zeros): a lane whose weight is 0 at every step
        # has a constant-zero product that Yosys removes with its adder input, and one that
        # takes few of the layer's values over the steps a product ABC shrinks
        live = simd if rom is None or xnor else max(1.0, live_lanes(rom) / pe)
        if xnor:
            lut += pe * c["pop_lut_per_bit"] * simd
        elif bip or (ww == 1 and not w_shape.signed):
            lut += pe * (tree_luts(round(live), ww + 1, dw, family) + c["mux_lut_per_bit"] * live * ww)
        elif min(xw, ww) <= MAX_ADD_TERMS:
            k, other = min(xw, ww), max(xw, ww)
            lut += pe * (tree_luts(round(live * k), other + k / 2, dw, family)
                         + c.get("pp_lut_per_bit", c["mux_lut_per_bit"]) * live * k * other)
        elif dsp_per_product(xw, ww, family):
            dsp += pe * simd * dsp_per_product(xw, ww, family)
            lut += pe * tree_bits(simd, xw + ww, dw) * c["dsp_adder_lut_per_bit"]
        else:  # a product too narrow for the family's DSP: a soft multiplier
            lut += pe * (tree_luts(simd, xw + ww, dw, family)
                         + c.get("pp_lut_per_bit", c["mux_lut_per_bit"]) * simd * xw * ww)
        ff += lanes_in * xw + simd * xw + pe * dw  # input buffer, step slice, dots
        if sf > 1:
            lut += c["mux_lut_per_bit"] * simd * xw * (sf - 1) / 2
            lut += pe * adder_luts(dw, family)  # accumulators
            ff += pe * dw
        lut += c["fold_control_lut"]
        # the input slice's Switch over sf and the output writes' Switch over nf: one decoded
        # case each, shared by all bits (LUT4 parts pay more: no wide muxes to absorb them)
        lut += c.get("select_lut_per_case", 0.0) * ((sf - 1) + (nf - 1))
    epi = epilogue.resources(pe, n_out, dw, family)
    lut, ff, bram, lutram, dsp = lut + epi.lut, ff + epi.ff, bram + epi.bram36, lutram + epi.lutram, dsp + epi.dsp
    ff += n_out * t_out.width + c["unit_ff"]
    lut += c["unit_lut"]
    return Resources(lut=lut, ff=ff * c["ff_scale"], dsp=int(dsp), bram36=bram, lutram=lutram)


def live_lanes(rom: np.ndarray) -> float:
    """Product lanes a folded unit effectively builds from its weight ROM fields ``rom``
    (``[steps, lanes]``): each lane counts ``(v / V) ** 2``, ``v`` the distinct nonzero weights
    it takes over the steps and ``V`` those of the whole layer (0 for a lane that is always 0,
    1 for one taking every value). The square is fitted: on UNSW-NB15's ternary layers, 80-97 %
    zeros, Yosys' LUTs follow it within 15 % where counting live lanes alone overstated them by
    40-70 % (benchmarks/calibrate_resources.py); dense layers (TFC, KWS-MLP) keep ``v = V``."""
    rom = np.asarray(rom)
    layer = len(np.unique(rom[rom != 0]))
    if not layer:
        return 0.0
    srt = np.sort(rom, axis=0)
    distinct = (srt[1:] != srt[:-1]).sum(axis=0) + 1 - (rom == 0).any(axis=0)
    return float(((distinct / layer) ** 2).sum())


def rom_fields(w: np.ndarray, pe: int, simd: int, nf: int, sf: int, xnor: bool) -> np.ndarray:
    """The weight ROM's fields as :class:`MVAU` lays them out: one row per step ``k``
    (output group ``k // sf``, input group ``k % sf``), field ``p * simd + s`` holding
    ``w[(k % sf) * simd + s, (k // sf) * pe + p]`` (0, or +1 for XNOR, where that is padding)."""
    n_in, n_out = w.shape
    pad = np.full((sf * simd, nf * pe), 1 if xnor else 0, dtype=np.int64)
    pad[:n_in, :n_out] = (w > 0) if xnor else w
    # [sf, s, nf, p] -> rows (nf, sf), fields (p, s)
    grid = pad.reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)
    return grid.reshape(nf * sf, pe * simd)
