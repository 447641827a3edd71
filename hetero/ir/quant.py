"""Quantizers of imported models, and exact integer requantization.

Two things live here:

* :class:`QuantSpec` describes one quantizer of a model as its own format defines it: QONNX
  ``Quant`` / ``BipolarQuant`` / ``Trunc`` and ONNX ``QuantizeLinear``. :meth:`QuantSpec.fake`
  is that definition in floating point (what the float reference and constant folding use);
  :meth:`QuantSpec.ir_type` maps it onto the IR: raw integers, a :class:`FixedType` container and
  a real ``scale`` (a power-of-two scale becomes fraction bits, so ``scale`` is then ``None``).
* :class:`Requant` is how typed integers move from one real scale to another in the reference
  and in hardware: ``y = clip(round((x * mult[c] + add[c]) / 2**shift) + zero, lo, hi)``, all
  integer. :func:`make_requant` derives it from the real scales; a scale that is not a power of
  two becomes an integer multiplier of up to :data:`MULT_BITS` significant bits, never a float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hetero.errors import UserError
from hetero.ir.fixed import FixedType, _overflow, type_for_range

ROUNDINGS = ("HALF_EVEN", "HALF_UP", "HALF_DOWN", "HALF_AWAY", "HALF_ZERO", "FLOOR", "CEIL", "TO_ZERO")
# ap_fixed's quantization modes as roundings
AP_ROUNDING = {"TRN": "FLOOR", "TRN_ZERO": "TO_ZERO", "RND": "HALF_UP", "RND_ZERO": "HALF_ZERO",
               "RND_MIN_INF": "HALF_DOWN", "RND_INF": "HALF_AWAY", "RND_CONV": "HALF_EVEN"}
# model formats' names for those
_ROUNDING_ALIASES = {"ROUND": "HALF_EVEN", "ROUND_TO_ZERO": "TO_ZERO", "TRUNC": "TO_ZERO",
                     "HALF_EVEN": "HALF_EVEN", "HALF_UP": "HALF_UP", "FLOOR": "FLOOR", "CEIL": "CEIL"}
MULT_BITS = 40  # most significant bits of a requantization multiplier (fewer for wide inputs)


def rounding_name(mode: str) -> str:
    """The canonical rounding name for a model format's ``rounding_mode`` string."""
    key = str(mode).upper()
    if key not in _ROUNDING_ALIASES:
        raise ValueError(f"rounding mode {mode!r} not one of {', '.join(sorted(_ROUNDING_ALIASES))}")
    return _ROUNDING_ALIASES[key]


def round_float(x: np.ndarray, mode: str) -> np.ndarray:
    """Round real values to integers (still floats) with a canonical rounding mode."""
    if mode == "HALF_EVEN":
        return np.round(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "TO_ZERO":
        return np.trunc(x)
    if mode == "HALF_UP":
        return np.floor(x + 0.5)
    if mode == "HALF_DOWN":
        return np.ceil(x - 0.5)
    if mode == "HALF_AWAY":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode == "HALF_ZERO":
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    raise ValueError(mode)


def round_shift(v: np.ndarray, shift: int, mode: str) -> np.ndarray:
    """``round(v / 2**shift)`` for int64 ``v``, exactly, with a canonical rounding mode."""
    v = np.asarray(v, dtype=np.int64)
    if shift <= 0:
        return v << -shift
    floor = v >> shift
    rem = v - (floor << shift)  # 0 <= rem < 2**shift
    half = 1 << (shift - 1)
    if mode == "FLOOR":
        return floor
    if mode == "CEIL":
        return floor + (rem != 0)
    if mode == "TO_ZERO":
        return floor + ((rem != 0) & (v < 0))
    up = rem > half
    tie = rem == half
    if mode == "HALF_UP":
        up |= tie
    elif mode == "HALF_EVEN":
        up |= tie & ((floor & 1) == 1)
    elif mode == "HALF_AWAY":
        up |= tie & (v >= 0)
    elif mode == "HALF_ZERO":
        up |= tie & (v < 0)
    elif mode != "HALF_DOWN":
        raise ValueError(mode)
    return floor + up


def _pow2_exponent(s: float) -> int | None:
    """``e`` with ``s == 2**e`` exactly, else None."""
    if s <= 0 or not math.isfinite(s):
        return None
    m, e = math.frexp(s)
    return e - 1 if m == 0.5 else None


@dataclass(frozen=True, eq=False)
class QuantSpec:
    """One quantizer as the model defines it.

    ``kind``: ``"int"`` (QONNX Quant: ``q = clip(round(x/s + z))``), ``"linear"`` (ONNX
    QuantizeLinear: ``q = clip(round(x/s) + z)``), ``"bipolar"`` (QONNX BipolarQuant and 1-bit
    signed Quant: ``q = x >= 0 ? 1 : -1``), ``"trunc"`` (QONNX Trunc: the input's integers
    ``round(x/in_scale + z*t)`` divided by ``t = s/in_scale`` and rounded, ``q = rnd(clip(...))``). ``scale`` and ``zero_point`` are scalars or arrays
    broadcast against the tensor (per-channel along ``axis`` of the full ONNX shape).
    """

    kind: str
    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    rounding: str = "HALF_EVEN"
    axis: int | None = None
    float32: bool = True  # the model's arithmetic (ONNX Runtime and qonnx compute in float32)
    in_scale: np.ndarray | None = None  # Trunc: the scale of its (already quantized) input

    def __repr__(self) -> str:
        s = self.scale.reshape(-1)
        scale = f"{float(s[0]):.6g}" if s.size == 1 else f"[{s.size} scales]"
        z = self.zero_point.reshape(-1)
        zero = (f"@{int(z[0]):+d}" if z[0] else "") if z.size == 1 else f"@[{z.size} zero points]"
        return f"{self.kind}[{self.qmin},{self.qmax}]*{scale}{zero} {self.rounding}"

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1 and self.zero_point.size == 1

    def integers(self, x: np.ndarray) -> np.ndarray:
        """The quantized integers ``q`` (QuantizeLinear's output) of real values ``x``."""
        ft = np.float32 if self.float32 else np.float64
        x = np.asarray(x, dtype=ft)
        s, z = self.scale.astype(ft), self.zero_point.astype(ft)
        if self.kind == "bipolar":
            return np.where(x >= 0, 1.0, -1.0)
        if self.kind == "linear":
            q = round_float(x / s, self.rounding) + z
        elif self.kind == "trunc":
            t = (s / self.in_scale.astype(ft)).astype(ft)
            q_in = np.round(x / self.in_scale.astype(ft) + z * t)
            return round_float(np.clip(q_in / t, self.qmin, self.qmax), self.rounding).astype(np.float64)
        else:
            q = round_float(x / s + z, self.rounding)
        return np.clip(q, self.qmin, self.qmax).astype(np.float64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        ft = np.float32 if self.float32 else np.float64
        return ((np.asarray(q, dtype=ft) - self.zero_point.astype(ft)) * self.scale.astype(ft)).astype(np.float64)

    def fake(self, x: np.ndarray) -> np.ndarray:
        """Quantize-dequantize: the real value the model computes with."""
        if self.kind == "bipolar":
            return self.integers(x) * self.scale.astype(np.float64)
        return self.dequantize(self.integers(x))

    def ir_type(self) -> tuple[FixedType, float | None, int]:
        """``(dtype, scale, zero_point)`` of a per-tensor quantized tensor in the IR.

        Raw values are the quantized integers ``q``; the real value is
        ``(q - zero_point) * 2**-frac * scale``. A power-of-two scale with zero point 0 becomes
        fraction bits (``scale`` None), so the tensor is a plain ``ap_fixed``.
        """
        if not self.per_tensor:
            raise ValueError("per-channel quantizers apply to constants only")
        s, z = float(self.scale.reshape(-1)[0]), int(self.zero_point.reshape(-1)[0])
        lo, hi = (-1, 1) if self.kind == "bipolar" else (self.qmin, self.qmax)
        t = type_for_range(lo, hi, 0)
        e = _pow2_exponent(s)
        if e is not None and z == 0:
            return FixedType(t.width, t.width + e, t.signed), None, 0
        return t, s, z


@dataclass(frozen=True, eq=False)
class Requant:
    """``y = clip(round((x * mult + add) / 2**shift) + zero, lo, hi)`` on int64.

    ``mult`` and ``add`` are int64 arrays broadcast against the per-inference shape of ``x``
    (e.g. shape ``(n_out,)`` for a dense layer, ``(C, 1, 1)`` per channel of a CHW tensor), or
    scalars. ``x`` carries a leading batch axis.
    """

    mult: np.ndarray
    add: np.ndarray
    shift: int
    lo: int
    hi: int
    zero: int = 0
    rounding: str = "HALF_EVEN"
    overflow: FixedType | None = None  # set: ap_fixed overflow of that type instead of the clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        y = round_shift(x * self.mult + self.add, self.shift, self.rounding) + self.zero
        if self.overflow is not None:
            return _overflow(np.clip(y, -(1 << 62), 1 << 62), self.overflow)
        return np.clip(y, self.lo, self.hi)

    def __str__(self) -> str:
        m = self.mult.reshape(-1)
        mult = str(int(m[0])) if m.size == 1 or np.all(m == m[0]) else f"[{m.size} mults]"
        return f"requant(*{mult}>>{self.shift} clip[{self.lo},{self.hi}] {self.rounding})"


def make_requant(ratio: np.ndarray | float, offset: np.ndarray | float, lo: int, hi: int,
                 rounding: str, zero: int = 0, in_bits: int = 32) -> Requant:
    """A :class:`Requant` for ``y = clip(round(x * ratio + offset) + zero, lo, hi)``.

    ``ratio`` (real, > 0 or any sign per channel) is the input's real scale over the output's;
    ``offset`` is in output units (a ratio or offset beyond int64 even unshifted: a UserError).
    Ratios that are powers of two are represented exactly; others
    get up to :data:`MULT_BITS` significant bits (as many as int64 leaves beside ``in_bits``,
    which bounds ``|x| < 2**in_bits``).
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    biggest = float(np.max(np.abs(ratio))) if ratio.size else 0.0
    if biggest == 0.0:
        shift = 0
    else:
        # mult = ratio * 2**shift with mult_bits significant bits for the biggest ratio
        mult_bits = max(16, min(MULT_BITS, 60 - in_bits))
        shift = mult_bits - math.frexp(biggest)[1]
        exps = [_pow2_exponent(abs(float(r))) for r in ratio.reshape(-1) if r != 0]
        if exps and all(e is not None for e in exps):
            shift = -min(exps)  # exact: the smallest shift that makes every mult an integer
        shift = max(0, shift)
        # keep |x * mult + add| inside int64
        big_add = float(np.max(np.abs(offset))) if offset.size else 0.0
        while shift > 0 and (biggest * 2.0 ** (shift + in_bits) >= 2.0 ** 61
                             or big_add * 2.0 ** shift >= 2.0 ** 61):
            shift -= 1
    scaled_ratio, scaled_offset = ratio * 2.0 ** shift, offset * 2.0 ** shift
    for what, v in (("multiplier", scaled_ratio), ("offset", scaled_offset)):
        if v.size and not (np.isfinite(v).all() and float(np.max(np.abs(v))) < 2.0 ** 62):
            raise UserError(f"a requantization needs a {what} of {float(np.max(np.abs(v))):g} units, "
                            "beyond 64-bit integers: the model's scales or biases are out of range")
    mult = np.round(scaled_ratio).astype(np.int64)
    add = np.round(scaled_offset).astype(np.int64)
    return Requant(mult, add, int(shift), int(lo), int(hi), int(zero), rounding)


def requant_to_fixed(ratio: np.ndarray | float, offset: np.ndarray | float, t_out: FixedType,
                     in_bits: int = 32) -> Requant:
    """A :class:`Requant` onto the ``ap_fixed`` type ``t_out``: ``ratio`` is the input's real
    scale over ``t_out``'s LSB, ``offset`` in LSBs of ``t_out``; ``t_out``'s rounding and
    overflow modes apply."""
    rq = make_requant(ratio, offset, t_out.min_raw, t_out.max_raw, AP_ROUNDING[t_out.rounding],
                      in_bits=in_bits)
    if t_out.overflow == "SAT":
        return rq
    return Requant(rq.mult, rq.add, rq.shift, rq.lo, rq.hi, 0, rq.rounding, t_out)
