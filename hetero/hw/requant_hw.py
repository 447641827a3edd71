"""Requantization in hardware: exactly :class:`hetero.ir.quant.Requant`, one channel at a time.

Two implementations of the same function ``y = clip(round((x*M + C) >> s) + z)``:

* :func:`requant_expr`: the multiplier, the rounding shift and the clip as logic (a constant
  multiplication, which synthesis maps to LUTs or a DSP);
* :func:`threshold_expr`: for outputs with few levels (FINN's multi-threshold unit), ``y`` is
  ``lo`` plus the number of thresholds ``x`` has reached. The thresholds are found by bisection
  on the reference :class:`~hetero.ir.quant.Requant` itself over the input's whole range, so the
  unit equals the reference by construction wherever the requantization is monotonic (it is:
  clip, round and a multiplication by a constant of one sign are monotonic; ap_fixed WRAP and
  SAT_ZERO overflow are not, and keep :func:`requant_expr`).

:func:`requant_unit` picks one: thresholds when the output has at most ``max_levels`` values.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Mux, Shape, Value, signed, unsigned

from hetero.ir.quant import Requant

__all__ = ["requant_expr", "thresholds", "threshold_expr", "requant_unit", "MAX_LEVELS"]

#: Outputs with at most this many values use comparators instead of a multiplier.
MAX_LEVELS = 16


def _channel(a: np.ndarray, c: int) -> int:
    a = np.asarray(a).reshape(-1)
    return int(a[0] if a.size == 1 else a[c])


def _shape_for(lo: int, hi: int) -> Shape:
    if lo >= 0:
        return unsigned(max(1, int(hi).bit_length()))
    return signed(max(int(hi).bit_length(), (-int(lo) - 1).bit_length()) + 1)


def out_shape(rq: Requant) -> Shape:
    """The Amaranth shape of ``rq``'s results (its clip range, or its overflow type)."""
    if rq.overflow is not None:
        t = rq.overflow
        return signed(t.width) if t.signed else unsigned(t.width)
    return _shape_for(rq.lo, rq.hi)


def requant_expr(v: Value, rq: Requant, c: int = 0) -> Value:
    """Combinational ``rq`` of channel ``c`` applied to the integer value ``v``."""
    v = Value.cast(v)
    mult, add, s = _channel(rq.mult, c), _channel(rq.add, c), rq.shift
    x = v * mult + add if mult != 1 else v + add
    if s > 0:
        floor = x >> s
        rem = x[:s]
        half = 1 << (s - 1)
        negative = x[-1] if x.shape().signed else Const(0, 1)
        gt, tie, nz = rem > half, rem == half, rem != 0
        up = {
            "FLOOR": None,
            "CEIL": nz,
            "TO_ZERO": nz & negative,
            "HALF_UP": gt | tie,
            "HALF_DOWN": gt,
            "HALF_EVEN": gt | (tie & floor[0]),
            "HALF_AWAY": gt | (tie & ~negative),
            "HALF_ZERO": gt | (tie & negative),
        }[rq.rounding]
        y = floor if up is None else floor + up
    elif s < 0:
        y = x << -s
    else:
        y = x
    if rq.zero:
        y = y + rq.zero
    shape = out_shape(rq)
    t = rq.overflow
    if t is None:
        r = Mux(y > rq.hi, rq.hi, Mux(y < rq.lo, rq.lo, y))
    elif t.overflow == "WRAP":
        return y[: t.width].as_signed() if t.signed else y[: t.width]
    else:
        hi, lo = t.max_raw, t.min_raw
        if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
            lo = -hi
        if t.overflow == "SAT_ZERO":
            r = Mux((y > hi) | (y < lo), 0, y)
        else:
            r = Mux(y > hi, hi, Mux(y < lo, lo, y))
    return r[: shape.width].as_signed() if shape.signed else r[: shape.width]


def _monotonic(rq: Requant) -> bool:
    return rq.overflow is None or rq.overflow.overflow in ("SAT", "SAT_SYM")


def thresholds(rq: Requant, c: int, lo_in: int, hi_in: int) -> tuple[list[int], int, bool]:
    """``(T, base, increasing)`` such that for every integer ``lo_in <= x <= hi_in``:
    ``rq(x) == base + sum(x >= t for t in T)`` if increasing, else
    ``rq(x) == base + sum(x <= t for t in T)``. Exact (bisection on ``rq`` itself)."""
    if not _monotonic(rq):
        raise ValueError("thresholds need a monotonic requantization")
    mult = _channel(rq.mult, c)
    one = Requant(np.int64(mult), np.int64(_channel(rq.add, c)), rq.shift, rq.lo, rq.hi, rq.zero,
                  rq.rounding, rq.overflow)

    def f(x: int) -> int:
        return int(one(np.array([x], dtype=np.int64))[0])

    y_lo, y_hi = f(lo_in), f(hi_in)
    increasing = mult >= 0
    base = min(y_lo, y_hi)
    top = max(y_lo, y_hi)
    ts = []
    for level in range(base + 1, top + 1):
        a, b = lo_in, hi_in
        if increasing:  # smallest x with f(x) >= level
            while a < b:
                mid = (a + b) // 2
                if f(mid) >= level:
                    b = mid
                else:
                    a = mid + 1
        else:  # largest x with f(x) >= level
            while a < b:
                mid = (a + b + 1) // 2
                if f(mid) >= level:
                    a = mid
                else:
                    b = mid - 1
        ts.append(a)
    return ts, base, increasing


def threshold_expr(v: Value, ts: list[int], base: int, increasing: bool, shape: Shape) -> Value:
    """``base`` plus the number of thresholds reached, as a value of ``shape``."""
    v = Value.cast(v)
    count = Const(0, unsigned(max(1, len(ts).bit_length())))
    hits = [(v >= t) if increasing else (v <= t) for t in ts]
    total = sum(hits, count) if hits else count
    y = total + base if base else total
    return y[: shape.width].as_signed() if shape.signed else y[: shape.width]


def requant_unit(v: Value, rq: Requant, c: int, lo_in: int, hi_in: int,
                 max_levels: int = MAX_LEVELS) -> Value:
    """``rq`` of channel ``c`` on ``v`` (whose values lie in ``[lo_in, hi_in]``): comparators
    when the output takes at most ``max_levels`` values, else :func:`requant_expr`."""
    shape = out_shape(rq)
    levels = (rq.hi - rq.lo + 1) if rq.overflow is None else (1 << shape.width)
    if _monotonic(rq) and levels <= max_levels:
        ts, base, inc = thresholds(rq, c, lo_in, hi_in)
        return threshold_expr(v, ts, base, inc, shape)
    return requant_expr(v, rq, c)
