"""Integer arithmetic that fits the numbers: products and sums for matrix-vector units.

Synthesis (Yosys ``synth_xilinx``) maps every ``*`` it can to a DSP block, even a product by a
2-bit constant. These helpers write a product as logic where logic is cheaper:

* :func:`const_mul`: ``x * w`` for a constant ``w`` as shift-adds of its canonical signed digits
  (CSD: fewest nonzero digits in {-1, 0, 1}), or of ``x``'s own bits when ``x`` is narrower;
  a ``*`` (a DSP) only when both would need more than :data:`MAX_ADD_TERMS` terms;
* :func:`var_mul`: ``x * w`` of two signals (a weight read from a ROM) as partial products over
  the narrower operand's bits when it has at most :data:`MAX_ADD_TERMS` bits, else a ``*``
  (where a folded unit reuses one DSP across its steps);
* :func:`popcount` and :func:`sum_tree`: balanced adder trees (XNOR-popcount for +-1 values).

Every result is the exact product or sum (Amaranth arithmetic widens as needed).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

__all__ = ["csd", "const_mul", "var_mul", "popcount", "sum_tree", "MAX_ADD_TERMS"]

#: A product costing more than this many shifted adds goes to a multiplier (a DSP).
MAX_ADD_TERMS = 4


def csd(w: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``w``: ``[(shift, +1 or -1), ...]`` with
    ``w == sum(sign << shift)`` and no two adjacent nonzero digits (the fewest nonzero digits)."""
    digits = []
    k = 0
    while w:
        if w & 1:
            d = 2 - (w & 3)  # +1 if w % 4 == 1, -1 if w % 4 == 3
            digits.append((k, d))
            w -= d
        w >>= 1
        k += 1
    return digits


def _bit_terms(x: Value, w) -> list[Value]:
    """``x * w`` as one term per bit of ``x`` (``w`` a constant or a value): ``x[k] ? w<<k : 0``,
    the sign bit of a signed ``x`` with negative weight."""
    n = len(x)
    terms = []
    for k in range(n):
        shifted = Value.cast(w) << k
        if x.shape().signed and k == n - 1:
            terms.append(Mux(x[k], -shifted, 0))
        else:
            terms.append(Mux(x[k], shifted, 0))
    return terms


def const_mul(x: Value, w: int) -> Value:
    """Exactly ``x * w`` for the integer constant ``w``, as shift-adds where they are cheap."""
    x = Value.cast(x)
    w = int(w)
    if w == 0:
        return Const(0, 1)
    digits = csd(w)
    if len(digits) <= MAX_ADD_TERMS and len(digits) <= max(len(x), 1):
        terms = [(x << s) if d > 0 else -(x << s) for s, d in digits]
        return sum_tree(terms)
    if len(x) <= MAX_ADD_TERMS:
        return sum_tree(_bit_terms(x, Const(w, signed(w.bit_length() + 1))))
    if len(digits) <= MAX_ADD_TERMS:
        return sum_tree([(x << s) if d > 0 else -(x << s) for s, d in digits])
    return x * w


def const_mul_terms(w: int, xw: int, bipolar: bool = False) -> tuple[int, int, bool]:
    """``(terms, term width, dsp)`` of :func:`const_mul` for ``x * w`` with an ``xw``-bit
    ``x`` (a bipolar input is one bit: one term): the same case split, for cost models
    (``dsp``: left to a multiplier, which synthesis maps to DSP blocks)."""
    mag = abs(w).bit_length()
    if bipolar:
        return 1, mag + 1, False
    digits = len(csd(w))
    if digits <= MAX_ADD_TERMS and digits <= max(xw, 1):
        return digits, xw + mag, False
    if xw <= MAX_ADD_TERMS:
        return xw, xw + mag, False
    if digits <= MAX_ADD_TERMS:
        return digits, xw + mag, False
    return 1, xw + mag, True


def var_mul(x: Value, w: Value) -> Value:
    """Exactly ``x * w`` of two values: partial products over the narrower operand's bits when it
    has at most :data:`MAX_ADD_TERMS` bits (logic), else a multiplier (a DSP)."""
    x, w = Value.cast(x), Value.cast(w)
    if len(w) > len(x):
        x, w = w, x
    if len(w) == 1 and not w.shape().signed:
        return Mux(w, x, 0)
    if len(w) <= MAX_ADD_TERMS:
        return sum_tree(_bit_terms(w, x))
    return x * w


def sum_tree(terms: list, width: int | None = None) -> Value:
    """The sum of ``terms`` as a balanced adder tree; with ``width``, each partial sum is wrapped
    to that many bits, signed (exact when the final sum fits: two's complement arithmetic)."""
    def fit(v: Value) -> Value:
        v = Value.cast(v)
        return v[:width].as_signed() if width is not None and len(v) > width else v

    terms = [fit(t) for t in terms]
    if not terms:
        return Const(0, signed(width) if width else unsigned(1))
    while len(terms) > 1:
        pairs = [fit(terms[k] + terms[k + 1]) for k in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


def _named(m: Module, v: Value, name: str) -> Signal:
    """``v`` as a signal driven in ``m``'s comb domain."""
    sig = Signal(Value.cast(v).shape(), name=name)
    m.d.comb += sig.eq(v)
    return sig


def popcount(bits, m: Module | None = None) -> Value:
    """The number of ones among 1-bit values (a list), or among the bits of one value, as a
    balanced adder tree (Yosys turns it into its own compressor tree). With ``m`` a value is
    first named as a signal of ``m``'s comb domain: Amaranth copies an expression for every
    use of one of its bits, a signal it names once."""
    if isinstance(bits, (list, tuple)):
        return sum_tree([Value.cast(b).as_unsigned() for b in bits]) if bits else Const(0, 1)
    v = Value.cast(bits)
    if m is not None and not isinstance(v, Signal):
        v = _named(m, v, "pop_in")
    return sum_tree([v[j] for j in range(len(v))]) if len(v) else Const(0, 1)
