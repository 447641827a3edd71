"""Analytic resource model: the LUTs, flip-flops, DSPs and block RAM a layer's hardware takes,
computed from the same structural decisions the generators (:mod:`hetero.hw`) make, with a few
coefficients fitted against Yosys (``benchmarks/calibrate_resources.py`` writes them to
``data/resource_model.json``, versioned, with the command that produced them).

Contract:

- :class:`Resources` is what an op's ``resources`` facet returns; ``+`` adds two.
  ``bram36`` is in 36 kb equivalents (as :mod:`hetero.boards` and :mod:`hetero.synthesis.yosys`);
  ``lutram`` counts LUTs used as memory and is included in ``lut``.
- :func:`coeffs` gives the fitted coefficients of a family; every structural count is an exact
  function of the graph (no tool runs, no Amaranth elaboration), so an estimate of a whole
  model takes milliseconds.
- :func:`memory` maps a synchronously read ROM or RAM of ``depth`` x ``width`` bits the way
  Yosys' ``memory_libmap`` does for the family: block RAM, distributed RAM or logic.
- :func:`dsp_per_product` says how many DSP blocks one ``a`` x ``b`` bit product takes.
"""

from __future__ import annotations

import functools
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Callable, Iterator

_DATA = Path(__file__).resolve().parents[1] / "data" / "resource_model.json"

#: DSP operand widths (signed) per family: Yosys splits wider products over several blocks.
DSP_WIDTHS = {"xc7": (25, 18), "xcup": (27, 18), "ecp5": (18, 18), "ice40": (16, 16)}
#: Products narrower than this stay in logic (synth_ice40 -dsp: mul2dsp -D DSP_Y_MINWIDTH=11).
DSP_MIN_PRODUCT_WIDTH = {"ice40": 11}


@dataclass(frozen=True)
class Resources:
    """Resources of a piece of hardware: an estimate (floats) or what synthesis counted.

    ``bram36`` is in 36 kb equivalents, ``lutram`` is included in ``lut``, ``uram`` counts
    UltraRAM (or iCE40 SPRAM) blocks, as :class:`hetero.boards.Board` counts them."""

    lut: float = 0.0
    ff: float = 0.0
    dsp: int = 0
    bram36: float = 0.0
    lutram: float = 0.0
    uram: int = 0

    #: the resources a board has and :meth:`utilization` compares, in report order
    BOARD_KEYS = ("lut", "ff", "dsp", "bram36", "uram")

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) + getattr(other, f.name)
                           for f in fields(Resources)))

    def scaled(self, k: float) -> "Resources":
        """Every count times ``k`` (``k`` copies)."""
        return Resources(self.lut * k, self.ff * k, int(round(self.dsp * k)), self.bram36 * k,
                         self.lutram * k, int(round(self.uram * k)))

    def as_dict(self) -> dict[str, float]:
        """``{lut, ff, dsp, bram36, lutram}`` rounded for reports (LUT/FF to integers)."""
        return {"lut": int(round(self.lut)), "ff": int(round(self.ff)), "dsp": int(self.dsp),
                "bram36": round(self.bram36, 4), "lutram": int(round(self.lutram))}

    def utilization(self, board) -> dict[str, float]:
        """Percent of ``board`` (a :class:`hetero.boards.Board`) each of :attr:`BOARD_KEYS`
        takes; a resource the board lacks reads 0.0 when unused and ``inf`` when used."""
        out = {}
        for k in self.BOARD_KEYS:
            used, avail = getattr(self, k), getattr(board, k)
            out[k] = 100.0 * used / avail if avail else (float("inf") if used else 0.0)
        return out

    def fits(self, board) -> bool:
        """Whether every resource in :meth:`utilization` is at most 100 %."""
        return all(p <= 100.0 for p in self.utilization(board).values())

    def over(self, board) -> list[dict]:
        """The resources that exceed ``board``: ``{resource, needed, available,
        over_by_percent}`` (``over_by_percent`` None where the board has none)."""
        out = []
        for k, pct in self.utilization(board).items():
            if pct > 100.0:
                avail = getattr(board, k)
                out.append({"resource": k, "needed": round(getattr(self, k), 2),
                            "available": avail,
                            "over_by_percent": round(pct - 100.0, 1) if avail else None})
        return out


@cache
def _model() -> dict:
    with open(_DATA, encoding="utf-8") as f:
        return json.load(f)


def model_version() -> str:
    """The version string of the coefficient file in use."""
    return str(_model()["version"])


_OVERRIDE: dict[str, float] | None = None


@contextmanager
def override(values: dict[str, float]) -> Iterator[None]:
    """Within the block, :func:`coeffs` returns ``values`` for every family (calibration)."""
    global _OVERRIDE
    saved, _OVERRIDE = _OVERRIDE, dict(values)
    try:
        yield
    finally:
        _OVERRIDE = saved


def coeffs(family: str) -> dict[str, float]:
    """The fitted coefficients of ``family`` (the defaults overridden per family)."""
    if _OVERRIDE is not None:
        return _OVERRIDE
    m = _model()
    out = dict(m["defaults"])
    out.update(m.get("families", {}).get(family, {}))
    return out


def dsp_per_product(a: int, b: int, family: str) -> int:
    """DSP blocks one signed ``a`` x ``b`` bit product takes on ``family`` (Yosys' mul2dsp
    splits a product over blocks of :data:`DSP_WIDTHS`; operands are put on the sides that
    need the fewest); 0 where the product is narrower than :data:`DSP_MIN_PRODUCT_WIDTH`."""
    wa, wb = DSP_WIDTHS[family]
    a, b = max(a, 1), max(b, 1)
    if a + b < DSP_MIN_PRODUCT_WIDTH.get(family, 0):
        return 0  # mul2dsp leaves it to logic
    return min(math.ceil(a / wa) * math.ceil(b / wb), math.ceil(b / wa) * math.ceil(a / wb))


#: Block RAM shapes Yosys' memory_libmap may use per family: (cost, depth, width, kbit). The
#: costs are those of Yosys' RAM libraries (xilinx/brams_xc4v.txt: RAMB18 129, RAMB36 257;
#: DP16KD and iCE40 RAM4K as memory_libmap reports them); a ROM bit in logic costs
#: :data:`LOGIC_COST_PER_ROM_BIT` (synth_xilinx: 1/64; ECP5, iCE40: 1/16, read off Yosys' log).
BRAM_SHAPES = {
    "xc7": [(129, 512 << k, 36 >> k if k < 2 else (9, 4, 2, 1)[k - 2], 18) for k in range(6)]
           + [(257, 512 << k, (72, 36, 18, 9, 4, 2, 1)[k], 36) for k in range(7)],
    "ecp5": [(128.25, 1024 << k, (18, 9, 4, 2, 1)[k], 18) for k in range(5)]
            + [(128.25, 512, 36, 18)],  # PDPW16KD: a 36-bit read port (lattice/brams_16kd.txt)
    "ice40": [(64.25, 256 << k, (16, 8, 4, 2)[k], 4) for k in range(4)],
}
BRAM_SHAPES["xcup"] = BRAM_SHAPES["xc7"]
#: The native block RAM of each family and its size in kbit: estimates and Yosys both count
#: ``bram36`` (36 kb equivalents); :func:`native_bram` turns that back into blocks.
NATIVE_BRAM = {"xc7": ("RAMB36", 36), "xcup": ("RAMB36", 36), "ecp5": ("DP16KD", 18),
               "ice40": ("SB_RAM40_4K", 4)}


def native_bram(bram36: float, family: str) -> tuple[str, float]:
    """``(cell name, blocks)`` of ``bram36`` 36 kb equivalents on ``family``: DP16KD on ECP5
    (2 per bram36), SB_RAM40_4K on iCE40 (9 per bram36), RAMB36 on Xilinx (a RAMB18 is 0.5)."""
    name, kbits = NATIVE_BRAM[family]
    return name, round(bram36 * 36 / kbits, 2)


LOGIC_COST_PER_ROM_BIT = {"xc7": 1 / 64, "xcup": 1 / 64, "ecp5": 1 / 16, "ice40": 1 / 16}
#: Distributed RAM for written memories: (cost, depth, width, LUT sites) of the cell Yosys
#: uses (Xilinx RAM64M in simple dual port: 64 x 3; ECP5 TRELLIS_DPR16X4: 16 x 4, 6 LUT4
#: sites); RAM bits in logic cost 1 each. iCE40 has none.
LUTRAM_SHAPES = {"xc7": (8, 64, 3, 4), "xcup": (8, 64, 3, 4), "ecp5": (8, 16, 4, 6)}


def bram_mapping(depth: int, width: int, family: str) -> tuple[float, float]:
    """``(cost, bram36)`` of the cheapest block RAM mapping of ``depth`` x ``width`` bits: one
    shape for the whole memory, or whole blocks of one shape for the first words and the
    cheapest mapping of the rest (an iCE40 ROM of 1280 x 11 bits takes 3 blocks of 1024 x 4
    and one of 256 x 16: 4, where one shape needs 5)."""
    best = None
    for cost, d, w, kb in BRAM_SHAPES[family]:
        n = math.ceil(depth / d) * math.ceil(width / w)
        cands = [(n * cost, n * kb / 36)]
        if depth > d and depth % d:
            full = depth // d * math.ceil(width / w)
            rest = bram_mapping(depth % d, width, family)
            cands.append((full * cost + rest[0], full * kb / 36 + rest[1]))
        for cand in cands:
            best = cand if best is None or cand[0] < best[0] else best
    return best


def memory(depth: int, width: int, family: str, rom: bool = True,
           distinct: "int | Callable[[], int] | None" = None) -> Resources:
    """Resources of a synchronously read ROM of ``depth`` words of ``width`` bits, mapped as
    Yosys' ``memory_libmap`` maps it: block RAM when that costs less than logic
    (:data:`LOGIC_COST_PER_ROM_BIT`), else logic: about ``rom_lut_per_bit`` LUTs per
    output bit and LUT-sized slice of the address space, plus the read register. ``distinct``
    (when the contents are known): the output bits that are neither constant nor a copy of
    another (Yosys merges identical LUTs and registers and drops constant ones), counted
    instead of ``width`` for a ROM in logic; a callable is asked only then."""
    c = coeffs(family)
    if depth <= 1:
        return Resources(ff=width)
    cost, bram36 = bram_mapping(depth, width, family)
    if not rom:
        lut_shape = LUTRAM_SHAPES.get(family)
        if lut_shape is None:
            lr_cost = lr_luts = float("inf")
        else:
            lr_cost_each, d, w, luts = lut_shape
            n = math.ceil(depth / d) * math.ceil(width / w)
            lr_cost, lr_luts = n * lr_cost_each, n * luts
        if cost <= min(lr_cost, depth * width):
            return Resources(bram36=bram36)
        if lr_cost <= depth * width:
            return Resources(lut=lr_luts + width * c["mux_lut_per_bit"], ff=width, lutram=lr_luts)
        return Resources(lut=depth * width * c["mux_lut_per_bit"] / 2, ff=depth * width + width)
    if cost < depth * width * LOGIC_COST_PER_ROM_BIT[family]:
        return Resources(bram36=bram36)
    k = 6 if family in ("xc7", "xcup") else 4
    if callable(distinct):
        distinct = distinct()
    bits = width if distinct is None else min(distinct, width)
    lut = bits * c["rom_lut_per_bit"] * max(1.0, depth / (1 << k))
    return Resources(lut=lut, ff=bits)


def rom_distinct_bits(words: np.ndarray, ww: int) -> int:
    """Output bits of a ROM holding ``words`` (steps x fields, each field ``ww`` bits two's
    complement) that are neither constant over the steps nor equal to another bit."""
    import numpy as np

    bits = ((np.asarray(words, dtype=np.int64)[:, :, None] >> np.arange(ww)) & 1).astype(np.uint8)
    cols = bits.reshape(bits.shape[0], -1)
    varying = cols[:, cols.min(axis=0) != cols.max(axis=0)]
    if not varying.size:
        return 0
    # each column packed into bytes, compared as one opaque value (np.unique over axis=1 of
    # the bit matrix is ~50x slower)
    packed = np.ascontiguousarray(np.packbits(varying, axis=0).T)
    return int(len(np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel())))


def adder_luts(width: float, family: str) -> float:
    """LUTs of one two-input adder of ``width`` bits."""
    return width * coeffs(family)["lut_per_adder_bit"]


# -- the matrix-vector unit (hetero.hw.mvau.MVAU) ---------------------------------------------
def _product_terms(v: int, xw: int, bipolar: bool) -> tuple[int, int, bool]:
    """``(terms, term width, dsp)`` of :func:`hetero.hw.arith.const_mul` for ``x * v`` with an
    ``xw``-bit ``x`` (a bipolar input is one bit): the same case split."""
    from hetero.hw.arith import MAX_ADD_TERMS, csd

    mag = abs(v).bit_length()
    if bipolar:
        return 1, mag + 1, False
    digits = len(csd(v))
    if digits <= MAX_ADD_TERMS and digits <= max(xw, 1):
        return digits, xw + mag, False
    if xw <= MAX_ADD_TERMS:
        return xw, xw + mag, False
    if digits <= MAX_ADD_TERMS:
        return digits, xw + mag, False
    return 1, xw + mag, True


def _tree_bits(terms: int, term_width: float, sum_width: int) -> float:
    """Adder bits of a balanced adder tree over ``terms`` terms (each partial sum wrapped to
    ``sum_width`` bits)."""
    if terms <= 1:
        return 0.0
    return (terms - 1) * min(sum_width, term_width + math.log2(terms) / 2 + 1)


def _tree(terms: int, term_width: float, sum_width: int, family: str) -> float:
    """LUTs of that tree (:func:`_tree_bits` times ``lut_per_adder_bit``)."""
    return adder_luts(_tree_bits(terms, term_width, sum_width), family)


def mvau(unit_w, t_x, t_out, epilogue, pe: int, simd: int, x_range=None, xnor: bool = False,
         bipolar: bool = False, n_lanes: int | None = None, family: str = "xc7") -> Resources:
    """Resources of :class:`hetero.hw.mvau.MVAU` built with these arguments (the same
    structure: constant shift-add products when fully parallel, a weight ROM of one word per
    step otherwise, the epilogue form :meth:`RequantEpilogue.form` picks)."""
    import numpy as np

    from hetero.hw.arith import MAX_ADD_TERMS
    from hetero.hw.mvau import RAM_FORMS, ROM_CHUNK_BITS, dot_ranges, folds, range_shape

    c = coeffs(family)
    w = np.asarray(unit_w, dtype=np.int64)
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
    ow = t_out.width
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
                        t = cache[v] = _product_terms(v, xw, bip)
                    terms += t[0]
                    width += t[0] * t[1]
                    if t[2]:
                        dsp_pairs.add((int(i), v))
                        on_dsp += 1
                if terms:  # sums of DSP products: Yosys folds some into the DSPs' adders
                    bits = _tree_bits(terms, width / terms, dw)
                    lut += bits * ((terms - on_dsp) / terms * c["lut_per_adder_bit"]
                                   + on_dsp / terms * c["dsp_adder_lut_per_bit"])
            dsp += sum(dsp_per_product(xw, abs(v).bit_length() + 1, family) for _, v in dsp_pairs)
        ff += pe * dw
    else:
        w_shape = range_shape(int(w.min()), int(w.max()))
        ww = 1 if xnor else w_shape.width
        total = pe * simd * ww
        chunk = max(ww, ROM_CHUNK_BITS // ww * ww)
        rom = _rom_fields(w, pe, simd, nf, sf, xnor) if steps * total <= ROM_DISTINCT_MAX else None
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
            lut += pe * (_tree(round(live), ww + 1, dw, family) + c["mux_lut_per_bit"] * live * ww)
        elif min(xw, ww) <= MAX_ADD_TERMS:
            k, other = min(xw, ww), max(xw, ww)
            lut += pe * (_tree(round(live * k), other + k / 2, dw, family)
                         + c.get("pp_lut_per_bit", c["mux_lut_per_bit"]) * live * k * other)
        elif dsp_per_product(xw, ww, family):
            dsp += pe * simd * dsp_per_product(xw, ww, family)
            lut += pe * _tree_bits(simd, xw + ww, dw) * c["dsp_adder_lut_per_bit"]
        else:  # a product too narrow for the family's DSP: a soft multiplier
            lut += pe * (_tree(simd, xw + ww, dw, family)
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
    # epilogue, per PE
    form = epilogue.form(pe)
    mults = None if form != "multiply" else np.asarray(epilogue.dot_rq.mult).reshape(-1)
    if form == "plain":
        t_sum = epilogue.t_sum
        lut += pe * c["epi_plain_lut_per_bit"] * (t_sum.width + ow)
    else:
        costs = epilogue.costs(pe)
        chans = [len(range(p, n_out, pe)) for p in range(pe)]
        if form in RAM_FORMS:
            mem = Resources()
            for p in range(pe):
                depth, width = _epilogue_rom(epilogue, form, p, pe, n_out)
                mem = mem + memory(depth, width, family)
            lut, ff, bram, lutram = lut + mem.lut, ff + mem.ff, bram + mem.bram36, lutram + mem.lutram
            ff += pe * dw
            lut += c["epi_logic_scale"] * _epilogue_logic(epilogue, form, pe, n_out)
        else:
            logic = costs[form]
            if form == "multiply":  # RequantEpilogue.apply: const_mul, or d * table value
                from hetero.hw.arith import csd

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
                if max(chans) > 1:
                    logic -= pe * 1000  # costs() counts a DSP per PE as 1000 LUTs
            lut += c["epi_logic_scale"] * max(logic, 0.0)
    ff += n_out * ow + c["unit_ff"]
    lut += c["unit_lut"]
    return Resources(lut=lut, ff=ff * c["ff_scale"], dsp=int(dsp), bram36=bram, lutram=lutram)


#: ROMs up to this many bits (steps x word width) get their distinct bits counted.
ROM_DISTINCT_MAX = 1 << 23


def live_lanes(rom) -> float:
    """Product lanes a folded unit effectively builds from its weight ROM fields ``rom``
    (``[steps, lanes]``): each lane counts ``(v / V) ** 2``, ``v`` the distinct nonzero weights
    it takes over the steps and ``V`` those of the whole layer (0 for a lane that is always 0,
    1 for one taking every value). The square is fitted: on UNSW-NB15's ternary layers, 80-97 %
    zeros, Yosys' LUTs follow it within 15 % where counting live lanes alone overstated them by
    40-70 % (benchmarks/calibrate_resources.py); dense layers (TFC, KWS-MLP) keep ``v = V``."""
    import numpy as np

    rom = np.asarray(rom)
    layer = len(np.unique(rom[rom != 0]))
    if not layer:
        return 0.0
    srt = np.sort(rom, axis=0)
    distinct = (srt[1:] != srt[:-1]).sum(axis=0) + 1 - (rom == 0).any(axis=0)
    return float(((distinct / layer) ** 2).sum())


def _rom_fields(w, pe: int, simd: int, nf: int, sf: int, xnor: bool):
    """The weight ROM's fields as :meth:`hetero.hw.mvau.MVAU._rom_words` lays them out: one
    row per step ``k`` (``nf = k // sf``, ``sf = k % sf``), field ``p * simd + s`` holding
    ``w[sf * simd + s, nf * pe + p]`` (0, or +1 for XNOR, where that is padding)."""
    import numpy as np

    n_in, n_out = w.shape
    pad = np.full((sf * simd, nf * pe), 1 if xnor else 0, dtype=np.int64)
    pad[:n_in, :n_out] = (w > 0) if xnor else w
    # [sf, s, nf, p] -> rows (nf, sf), fields (p, s)
    grid = pad.reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)
    return grid.reshape(nf * sf, pe * simd)


def _epilogue_rom(epilogue, form: str, p: int, pe: int, n_out: int) -> tuple[int, int]:
    """(depth, width) of PE ``p``'s epilogue ROM (``RequantEpilogue.rom``'s sizes)."""
    from hetero.hw.mvau import range_shape

    chans = list(range(p, n_out, pe))
    if form == "table":
        return sum(epilogue.d_hi[c] - epilogue.d_lo[c] + 1 for c in chans), epilogue.t_out.width
    rows = [epilogue._threshold_rows(epilogue.dot_rq, c) for c in chans]
    cols = epilogue._threshold_columns(rows, chans)
    tw = range_shape(min(min(min(col) for col in cols), -1), max(max(col) for col in cols)).width
    return len(chans), len(cols) * tw


def _epilogue_logic(epilogue, form: str, pe: int, n_out: int) -> float:
    """LUTs of a memory form's logic: comparators on the threshold word, or the address adder."""
    from hetero.hw.mvau import range_shape

    tw = range_shape(min(min(epilogue.d_lo), -1), max(epilogue.d_hi) + 1).width
    if form == "table":
        return pe * 2 * tw
    n_t = _epilogue_rom(epilogue, form, 0, pe, n_out)[1] // max(tw, 1)
    return pe * (n_t * (tw + 1) + epilogue.t_out.width)


def window_generator(geo, width: int, family: str) -> Resources:
    """:class:`hetero.hw.window.WindowGenerator` for ``geo`` on ``width``-bit lanes: its line
    buffer (a written memory of ``line_depth`` words of ``(K_h-1)*C`` lanes), the window and
    column shift registers, and the scan (``window_lut_per_bit`` per window bit, plus 40)."""
    c = coeffs(family)
    win_bits = geo.window_lanes * width
    line = Resources()
    if geo.line_depth:
        line = memory(geo.line_depth, (geo.kernel[0] - 1) * geo.channels * width, family, rom=False)
    cols = (geo.kernel[1] - 1) * geo.dilations[1] * geo.kernel[0] * geo.channels * width
    return line + Resources(lut=c["window_lut_per_bit"] * win_bits + 40, ff=win_bits + cols + 40)


def movement(graph, node, src_flat, family: str) -> Resources:
    """Data movement (:func:`hetero.hw.lanes.movement_hardware`): nothing when every element
    keeps its beat and lane (a wire), else a Regroup buffering the input tensor (its bits as
    FFs) and muxing it onto the output lanes: ``regroup_lut_per_bit`` per output lane bit and
    extra beat to choose from, plus the beat counters."""
    from hetero.hw.lanes import moves

    t_in, lin, lout, src, wire = moves(graph, node, src_flat)
    if wire:
        return Resources()
    bits = lin.beats * lin.lanes * t_in.dtype.width
    c = coeffs(family)
    mux = lout.lanes * t_in.dtype.width * max(lout.beats - 1, 0)
    return Resources(lut=c["regroup_lut_per_bit"] * mux + 20, ff=bits + 16)
