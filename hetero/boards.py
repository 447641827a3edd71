"""Board database: the FPGA boards hetero can target, loaded from ``data/boards.json``.

Contract:

- ``get(name)`` returns the :class:`Board` whose name or alias equals ``name``
  case-insensitively (surrounding blanks ignored); anything else raises
  :class:`hetero.errors.UserError` naming every known board.
- ``all_boards()`` returns every board, in the order of the data file.
- Counts are the "Available" figures the vendor tool or nextpnr report for the part.

Block RAM is expressed in **36 kb equivalents** (``bram36``) so that families compare:
``bram36 = blocks * kbits / 36`` where ``kbits`` is the native block size:

- Xilinx RAMB36 = 36 kb (a RAMB18 = 18 kb, i.e. half a RAMB36),
- ECP5 DP16KD = 18 kb, so ``bram36 = DP16KD / 2``,
- iCE40 EBR (SB_RAM40_4K) = 4 kb, so ``bram36 = EBR * 4 / 36``.

:mod:`hetero.synthesis.yosys` uses :func:`bram36_equivalent` for the same conversion, so used and
available figures are consistent. ``uram`` counts UltraRAM blocks (Xilinx UltraScale+) or, on
iCE40 UltraPlus, SPRAM blocks (256 kb each). ``power_w_rough`` is a rough public figure (the
midpoint of a quoted range, or the quoted maximum), never a measurement: show it as rough.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hetero.errors import UserError

FAMILIES = ("xc7", "xcup", "ecp5", "ice40")
"""Device families: Xilinx 7-series, Xilinx UltraScale+, Lattice ECP5, Lattice iCE40."""

_DATA = Path(__file__).parent / "data" / "boards.json"


def bram36_equivalent(blocks: float, kbits: float) -> float:
    """Return ``blocks`` block RAMs of ``kbits`` kbit each as 36 kb equivalents."""
    return blocks * kbits / 36


@dataclass(frozen=True)
class Board:
    """One FPGA board and the resources of its part.

    ``family`` is one of :data:`FAMILIES`; ``bram36`` is in 36 kb equivalents (see module
    docstring); ``clock_mhz`` is the default fabric clock; ``power_w_rough`` is rough.
    """

    name: str
    aliases: tuple[str, ...]
    part: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram36: float
    uram: int
    clock_mhz: float
    power_w_rough: float
    notes: str

    @property
    def label(self) -> str:
        """``name`` followed by its aliases in parentheses, e.g. ``pynq-z2 (pynq)``."""
        return f"{self.name} ({', '.join(self.aliases)})" if self.aliases else self.name


def _from_json(entry: dict) -> Board:
    family = entry["family"]
    if family not in FAMILIES:
        raise ValueError(f"board {entry['name']!r}: unknown family {family!r}")
    return Board(
        name=entry["name"],
        aliases=tuple(entry.get("aliases", ())),
        part=entry["part"],
        family=family,
        lut=int(entry["lut"]),
        ff=int(entry["ff"]),
        dsp=int(entry["dsp"]),
        bram36=bram36_equivalent(entry["bram"]["blocks"], entry["bram"]["kbits"]),
        uram=int(entry.get("uram", 0)),
        clock_mhz=float(entry["clock_mhz"]),
        power_w_rough=float(entry["power_w_rough"]),
        notes=entry.get("notes", ""),
    )


@cache
def _load() -> tuple[Board, ...]:
    with open(_DATA, encoding="utf-8") as f:
        return tuple(_from_json(e) for e in json.load(f)["boards"])


def all_boards() -> list[Board]:
    """Return every known board, in data-file order (a new list each call)."""
    return list(_load())


def get(name: str) -> Board:
    """Return the board called ``name`` or with alias ``name`` (case-insensitive).

    Raises :class:`hetero.errors.UserError` for an unknown name; the message lists all boards.
    """
    key = name.strip().lower()
    for board in _load():
        if key == board.name.lower() or key in (a.lower() for a in board.aliases):
            return board
    known = ", ".join(b.label for b in _load())
    raise UserError(f"unknown board {name!r}; known boards: {known}")
