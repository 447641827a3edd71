"""Fixed-point types and arithmetic with ``ap_fixed<W,I,Q,O>`` semantics, on integer raw values.

A value of type ``FixedType(width=W, int_bits=I)`` is stored as its raw integer ``r`` (numpy
int64) and means ``r * 2**-(W-I)``. Everything the reference executor and the hardware compute
goes through :func:`quantize` (float to fixed) and :func:`requantize` (fixed to fixed); both follow
Vitis HLS ``ap_fixed`` assignment exactly (tested exhaustively against g++ and the ap_types
headers of the installed hls4ml package, over every raw value for small widths: tests/test_fixed.py):

* quantization (dropping fraction bits): ``TRN`` floor, ``TRN_ZERO`` toward zero, ``RND`` half
  toward +inf, ``RND_ZERO`` half toward zero, ``RND_MIN_INF`` half toward -inf, ``RND_INF`` half
  away from zero, ``RND_CONV`` half to even;
* overflow (after quantization): ``WRAP`` two's complement wrap to W bits, ``SAT`` clamp,
  ``SAT_ZERO`` zero when out of range, ``SAT_SYM`` clamp to the symmetric range [-max, max] for
  signed types (so the most negative value itself becomes -max too); as in ap_fixed, a 1-bit
  signed type keeps -1 (SAT_SYM acts as SAT there), and unsigned types saturate as with SAT.

Only ap_fixed's default number of saturation bits (the fifth template parameter, N = 0) is
modelled; ``AP_WRAP_SM`` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
MAX_WIDTH = 62  # raw values live in int64 with headroom for one add


class WidthError(ValueError):
    """A fixed-point type wider than :data:`MAX_WIDTH` bits (or narrower than one)."""

_TYPE_RE = re.compile(
    r"^\s*(?P<kind>ap_fixed|ap_ufixed|fixed|ufixed|ap_int|ap_uint|int|uint)\s*<\s*(?P<args>[^>]*)>\s*$"
)


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, int_bits, rounding, overflow>`` (or ``ap_ufixed`` when not signed).

    ``int_bits`` counts the sign bit for signed types and may be negative or exceed ``width``
    (as in ap_fixed): the value is ``raw * 2**-(width - int_bits)``.
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise WidthError(f"fixed-point width {self.width} outside 1..{MAX_WIDTH}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding mode {self.rounding!r} not one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"overflow mode {self.overflow!r} not one of {', '.join(OVERFLOW_MODES)}")

    @property
    def frac_bits(self) -> int:
        return self.width - self.int_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac_bits

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> "FixedType":
        return replace(self, rounding=rounding or self.rounding, overflow=overflow or self.overflow)

    def __str__(self) -> str:
        name = "fixed" if self.signed else "ufixed"
        modes = ""
        if (self.rounding, self.overflow) != ("TRN", "WRAP"):
            modes = f",{self.rounding},{self.overflow}"
        return f"{name}<{self.width},{self.int_bits}{modes}>"

    def cpp(self) -> str:
        """The Vitis HLS C++ spelling, e.g. ``ap_fixed<16,6,AP_TRN,AP_WRAP>``."""
        name = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{name}<{self.width},{self.int_bits},AP_{self.rounding},AP_{self.overflow}>"

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """Parse hls4ml / Vitis spellings: ``fixed<16,6>``, ``ufixed<8,0,RND,SAT>``,
        ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>``, ``int<8>``, ``ap_uint<4>``."""
        m = _TYPE_RE.match(str(text))
        if not m:
            raise ValueError(f"cannot parse fixed-point type {text!r} (expected e.g. fixed<16,6>)")
        kind = m["kind"].removeprefix("ap_")
        args = [a.strip() for a in m["args"].split(",") if a.strip()]
        signed = not kind.startswith("u")
        try:
            if kind.endswith("int"):
                if len(args) != 1:
                    raise ValueError
                width = int(args[0])
                return cls(width, width, signed)
            width, int_bits = int(args[0]), int(args[1])
        except (ValueError, IndexError):
            raise ValueError(f"cannot parse fixed-point type {text!r} (expected e.g. fixed<16,6>)") from None
        if len(args) > 5 or (len(args) == 5 and args[4] != "0"):
            # ap_fixed's fifth parameter, the number of saturation bits of AP_WRAP / AP_WRAP_SM,
            # changes the wrap; only its default 0 is modelled here
            raise ValueError(
                f"cannot parse fixed-point type {text!r}: only <W,I,Q,O> or <W,I,Q,O,0> are supported"
            )
        modes = [a.upper().removeprefix("AP_") for a in args[2:4]]
        rounding = modes[0] if len(modes) > 0 else "TRN"
        overflow = modes[1] if len(modes) > 1 else "WRAP"
        return cls(width, int_bits, signed, rounding, overflow)


def _round_up(mode: str, rem_gt_half, rem_eq_half, rem_nonzero, negative, floor_odd):
    """Whether to add one to the floor, per rounding mode (all arguments are bool arrays)."""
    if mode == "TRN":
        return np.zeros_like(rem_nonzero)
    if mode == "TRN_ZERO":
        return rem_nonzero & negative
    if mode == "RND":
        return rem_gt_half | rem_eq_half
    if mode == "RND_ZERO":
        return rem_gt_half | (rem_eq_half & negative)
    if mode == "RND_MIN_INF":
        return rem_gt_half
    if mode == "RND_INF":
        return rem_gt_half | (rem_eq_half & ~negative)
    if mode == "RND_CONV":
        return rem_gt_half | (rem_eq_half & floor_odd)
    raise ValueError(mode)


def _overflow(v: np.ndarray, t: FixedType) -> np.ndarray:
    """Bring an integer array (units of t's LSB, |v| <= 2**62) into t's range with t's overflow
    mode."""
    lo, hi = t.min_raw, t.max_raw
    if t.overflow == "WRAP":
        mod = 1 << t.width
        w = np.bitwise_and(v, mod - 1)
        if t.signed:
            w = np.where(w > hi, w - mod, w)
        return w
    if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
        # ap_fixed: the most negative value becomes -max as well. A 1-bit signed type keeps
        # -1 (ap_fixed's underflow value is min | 1, which is min itself when W == 1).
        lo = -hi
    if t.overflow in ("SAT", "SAT_SYM"):
        return np.clip(v, lo, hi)
    if t.overflow == "SAT_ZERO":
        return np.where((v < lo) | (v > hi), 0, v)
    raise ValueError(t.overflow)


_BEYOND = 1 << MAX_WIDTH  # |raw| of every type is below this


def requantize(raw: np.ndarray, src_frac_bits: int, dst: FixedType) -> np.ndarray:
    """Assign fixed-point values (raw integers with ``src_frac_bits`` fraction bits) to ``dst``.

    Equals ``dst_t y = x;`` in C++ where x is any ap_fixed with that many fraction bits (and at
    most MAX_WIDTH bits). Shifts of any length are exact: nothing overflows int64 on the way.
    """
    v = np.asarray(raw, dtype=np.int64)
    d = src_frac_bits - dst.frac_bits
    if d > 0:
        if d <= MAX_WIDTH:
            fl = v >> d
            rem = v & ((1 << d) - 1)
            half = 1 << (d - 1)
            gt_half, eq_half = rem > half, rem == half
        else:  # |v| < 2**62 <= half: floor is 0 or -1; a negative v leaves more than a half
            fl = np.where(v < 0, -1, 0).astype(np.int64)
            rem = v  # only compared with zero below
            gt_half, eq_half = v < 0, np.zeros(v.shape, dtype=bool)
        up = _round_up(dst.rounding, gt_half, eq_half, rem != 0, v < 0, (fl & 1) == 1)
        v = fl + up.astype(np.int64)
    elif d < 0:
        s = -d
        if dst.overflow == "WRAP":
            # only the low bits survive: shift in two's complement (mod 2**64), which keeps them
            v = (v.astype(np.uint64) << np.uint64(s)).astype(np.int64) if s < 64 else np.zeros_like(v)
        elif s >= MAX_WIDTH:
            v = np.sign(v) * _BEYOND  # any nonzero value lands beyond every range
        else:
            lim = 1 << (MAX_WIDTH - s)
            v = np.clip(v, -lim, lim) << s  # clipped values stay beyond the range, on their side
    return _overflow(v, dst)


def quantize(x: np.ndarray, t: FixedType) -> np.ndarray:
    """Convert real numbers to raw values of ``t`` exactly as ``t y = (double)x;`` does.

    Infinities behave as ap_fixed treats them, as a huge power of two: they saturate, or wrap to
    0. NaN is not a number any fixed type can hold: it raises ValueError.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("cannot quantize NaN")
    with np.errstate(over="ignore"):
        scaled = np.ldexp(x, t.frac_bits)  # exact: scaling by a power of two (or inf)
    # x * 2**F >= 2**1024 is a multiple of 2**971: as 2**100, it wraps to 0 and saturates alike
    scaled = np.where(np.isinf(scaled), np.copysign(2.0**100, scaled), scaled)
    fl = np.floor(scaled)
    # scaled - fl is not always exact (e.g. -0.5 + 2**-54); fl + 0.5 is, while |fl| < 2**52, and
    # beyond that scaled is an integer (fl == scaled), which the `nonzero` guard covers
    half = fl + 0.5
    nonzero = scaled != fl
    up = _round_up(t.rounding, nonzero & (scaled > half), nonzero & (scaled == half), nonzero, x < 0,
                   np.fmod(fl, 2) != 0)
    v = fl + up
    limit = float(_BEYOND)
    if t.overflow == "WRAP":
        mod = float(1 << t.width)
        v = v - mod * np.floor(v / mod)  # exact for integral floats
    v = np.clip(v, -limit, limit)
    return _overflow(v.astype(np.int64), t)


def to_float(raw: np.ndarray, t: FixedType | int) -> np.ndarray:
    """The real value of raw integers of type ``t`` (or with ``t`` fraction bits)."""
    frac = t.frac_bits if isinstance(t, FixedType) else t
    return np.ldexp(np.asarray(raw, dtype=np.float64), -frac)


def bits_for_range(lo: int, hi: int, signed: bool | None = None) -> tuple[int, bool]:
    """Smallest (width, signed) whose raw range holds every integer in [lo, hi]."""
    if signed is None:
        signed = lo < 0
    width = 1
    while True:
        if signed and -(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1:
            return width, True
        if not signed and 0 <= lo and hi <= (1 << width) - 1:
            return width, False
        width += 1


def type_for_range(lo: int, hi: int, frac_bits: int) -> FixedType:
    """The narrowest FixedType with ``frac_bits`` fraction bits that holds raw values [lo, hi]
    without overflow (signed only if lo < 0)."""
    width, signed = bits_for_range(lo, hi)
    return FixedType(width, width - frac_bits, signed)
