"""Fixed-point helpers for Amaranth: shapes of FixedType values and requantization logic that
computes exactly what :func:`hetero.ir.fixed.requantize` computes."""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Shape, Value, signed, unsigned
from amaranth.lib import data, stream

from hetero.ir.fixed import FixedType


def shape_of(t: FixedType) -> Shape:
    """The Amaranth shape of a raw value of ``t``."""
    return signed(t.width) if t.signed else unsigned(t.width)


def vector_stream(t: FixedType, n: int) -> stream.Signature:
    """A stream whose payload is a whole vector of ``n`` raw values of type ``t``."""
    return stream.Signature(data.ArrayLayout(shape_of(t), n))


def requantize(v: Value, src_frac_bits: int, dst: FixedType) -> Value:
    """``dst_t y = x`` for a raw value ``v`` (its Amaranth signedness is the source's) with
    ``src_frac_bits`` fraction bits. Combinational; the result has ``shape_of(dst)``."""
    v = Value.cast(v)
    d = src_frac_bits - dst.frac_bits
    if d > 0:
        fl = v >> d
        rem = v[:d]
        half = 1 << (d - 1)
        negative = v[-1] if v.shape().signed else Const(0, 1)
        gt, eq, nz, odd = rem > half, rem == half, rem != 0, fl[0]
        up = {
            "TRN": Const(0, 1),
            "TRN_ZERO": nz & negative,
            "RND": gt | eq,
            "RND_ZERO": gt | (eq & negative),
            "RND_MIN_INF": gt,
            "RND_INF": gt | (eq & ~negative),
            "RND_CONV": gt | (eq & odd),
        }[dst.rounding]
        w = fl + up if dst.rounding != "TRN" else fl
    elif d < 0:
        w = v << (-d)
    else:
        w = v
    out_shape = shape_of(dst)
    if dst.overflow == "WRAP":
        return w[: dst.width].as_signed() if dst.signed else w[: dst.width]
    hi = dst.max_raw
    lo = dst.min_raw if dst.overflow != "SAT_SYM" or not dst.signed else -hi
    too_big, too_small = w > hi, w < lo
    if dst.overflow in ("SAT", "SAT_SYM"):
        r = Mux(too_big, hi, Mux(too_small, lo, w))
    else:  # SAT_ZERO
        r = Mux(too_big | too_small, 0, w)
    return r[: dst.width].as_signed() if out_shape.signed else r[: dst.width]
