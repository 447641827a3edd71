"""Analytic resource model: the LUTs, flip-flops, DSPs and block RAM a layer's hardware takes,
computed from the same structural decisions the generators (:mod:`hetero.hw`) make, with a few
coefficients fitted against Yosys (``benchmarks/calibrate_resources.py`` writes them to
``data/resource_model.json``, versioned, with the command that produced them).

Contract:

- :class:`Resources` is what an op's ``resources`` facet returns; ``+`` adds two.
  ``bram36`` is in 36 kb equivalents (as :mod:`hetero.boards` and :mod:`hetero.synthesis.yosys`);
  ``lutram`` counts LUTs used as memory and is included in ``lut``.
- :func:`coeffs` gives the coefficients of a ``family`` (:data:`Family`: a family name, whose
  fitted coefficients are used, or a :class:`Calibration` carrying its own); every structural
  count is an exact function of the graph (no tool runs, no Amaranth elaboration), so an
  estimate of a whole model takes milliseconds.
- :func:`memory` maps a synchronously read ROM or RAM of ``depth`` x ``width`` bits the way
  Yosys' ``memory_libmap`` does for the family: block RAM, distributed RAM or logic.
- :func:`dsp_per_product` says how many DSP blocks one ``a`` x ``b`` bit product takes;
  :func:`adder_luts` and :func:`tree_luts` what adders and adder trees take.

These are the shared primitives; each hardware block's own cost model lives next to the
block: :func:`hetero.hw.mvau.mvau_resources` (and its epilogues' ``resources``),
:func:`hetero.hw.window.window_generator_resources`, :func:`hetero.hw.lanes.movement_resources`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Union

if TYPE_CHECKING:
    import numpy as np

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

    def to_json(self) -> dict[str, float]:
        """:meth:`as_dict` and ``uram``: ``{lut, ff, dsp, bram36, lutram, uram}``."""
        return {**self.as_dict(), "uram": int(self.uram)}

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


@dataclass(frozen=True)
class Calibration:
    """A family with explicit coefficients (``benchmarks/calibrate_resources.py`` evaluates the
    model at trial coefficients this way): every cost function taking a ``family`` accepts
    one, and :func:`coeffs` then returns exactly ``coefficients``. Compared and hashed by
    value."""

    family: str
    coefficients: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, family: str, values: Mapping[str, float]) -> "Calibration":
        """``family`` with the coefficients ``values``."""
        return cls(family, tuple(sorted((str(k), float(v)) for k, v in values.items())))


#: What the cost functions take as ``family``: a family name (the fitted coefficients of
#: data/resource_model.json) or a :class:`Calibration`.
Family = Union[str, Calibration]


def family_name(family: Family) -> str:
    """The family name of ``family`` (``xc7``, ``xcup``, ``ecp5``, ``ice40``)."""
    return family.family if isinstance(family, Calibration) else family


def coeffs(family: Family) -> dict[str, float]:
    """The coefficients of ``family``: a :class:`Calibration`'s own, else the fitted ones (the
    defaults overridden per family)."""
    if isinstance(family, Calibration):
        return dict(family.coefficients)
    m = _model()
    out = dict(m["defaults"])
    out.update(m.get("families", {}).get(family, {}))
    return out


def dsp_per_product(a: int, b: int, family: Family) -> int:
    """DSP blocks one signed ``a`` x ``b`` bit product takes on ``family`` (Yosys' mul2dsp
    splits a product over blocks of :data:`DSP_WIDTHS`; operands are put on the sides that
    need the fewest); 0 where the product is narrower than :data:`DSP_MIN_PRODUCT_WIDTH`."""
    family = family_name(family)
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


def bram_mapping(depth: int, width: int, family: Family) -> tuple[float, float]:
    """``(cost, bram36)`` of the cheapest block RAM mapping of ``depth`` x ``width`` bits: one
    shape for the whole memory, or whole blocks of one shape for the first words and the
    cheapest mapping of the rest (an iCE40 ROM of 1280 x 11 bits takes 3 blocks of 1024 x 4
    and one of 256 x 16: 4, where one shape needs 5)."""
    family = family_name(family)
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


def memory(depth: int, width: int, family: Family, rom: bool = True,
           distinct: "int | Callable[[], int] | None" = None) -> Resources:
    """Resources of a synchronously read ROM of ``depth`` words of ``width`` bits, mapped as
    Yosys' ``memory_libmap`` maps it: block RAM when that costs less than logic
    (:data:`LOGIC_COST_PER_ROM_BIT`), else logic: about ``rom_lut_per_bit`` LUTs per
    output bit and LUT-sized slice of the address space, plus the read register. ``distinct``
    (when the contents are known): the output bits that are neither constant nor a copy of
    another (Yosys merges identical LUTs and registers and drops constant ones), counted
    instead of ``width`` for a ROM in logic; a callable is asked only then."""
    c, family = coeffs(family), family_name(family)
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


def adder_luts(width: float, family: Family) -> float:
    """LUTs of one two-input adder of ``width`` bits."""
    return width * coeffs(family)["lut_per_adder_bit"]


def tree_bits(terms: int, term_width: float, sum_width: int) -> float:
    """Adder bits of a balanced adder tree over ``terms`` terms (each partial sum wrapped to
    ``sum_width`` bits)."""
    if terms <= 1:
        return 0.0
    return (terms - 1) * min(sum_width, term_width + math.log2(terms) / 2 + 1)


def tree_luts(terms: int, term_width: float, sum_width: int, family: Family) -> float:
    """LUTs of that tree (:func:`tree_bits` times ``lut_per_adder_bit``)."""
    return adder_luts(tree_bits(terms, term_width, sum_width), family)
