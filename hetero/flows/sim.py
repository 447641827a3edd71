"""``hetero sim``: a model's hardware simulated cycle by cycle (native Verilator harness) and
checked bit-exact against the reference, for regression runs of thousands of inferences.

The flow: compile the model, build its :class:`~hetero.backends.rtl.top.Top` (with stall probes), run the
reference on the batch (the hardware's input and expected output are tensors of it: the host
runs the float prefix and input quantizer) and :func:`hetero.sim.run.run` it on the
:class:`~hetero.sim.verilator.Verilator` backend, which compares every output bit for bit;
``mismatches.npz`` comes from :func:`hetero.sim.run.write_mismatches`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from contextlib import ExitStack
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetero.ir.config import Config
from hetero.errors import SimulationError, UserError
from hetero.passes.folding import FoldingTarget
from hetero.flows.common import (Progress, StageTimer, atomic_output, check_output, compile_model,
                                 input_batch, runs_dir)
from hetero.reference import execute
from hetero.sim.run import Run, run, write_mismatches
from hetero.sim.verilator import RtlSimResult, Verilator, prepare_runtime, require_cxx

__all__ = ["SimResult", "simulate_model", "simulate_graph", "GraphSim", "MismatchError"]


@dataclass(frozen=True)
class SimResult:
    """What :func:`simulate_model` found; ``mismatches`` counts inferences with any wrong bit.
    ``run``: the :class:`hetero.sim.run.Run` (outputs real and raw, reference); ``sim``: the
    Verilator harness's own result (cycles per inference, build and run times, waves)."""

    model: str
    board: str | None
    inferences: int
    mismatches: int
    sim: RtlSimResult
    stages_s: dict[str, float]
    runtime_compiled: bool  #: this call compiled the Verilator runtime archive (first run)
    mismatch_file: Path | None = None
    run: Run | None = None

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    def to_json(self) -> dict:
        """``{model, board, simulator, inferences, bit_exact, mismatches, latency_cycles,
        max_latency_cycles, interval_cycles (null under two inferences), total_cycles,
        build_seconds, build_cached, run_seconds, stages_s, mismatch_file, waves}``."""
        s = self.sim
        interval = s.interval_cycles if s.interval_cycles == s.interval_cycles else None
        return {"model": self.model, "board": self.board, "simulator": s.simulator,
                "inferences": self.inferences, "bit_exact": self.bit_exact,
                "mismatches": self.mismatches, "latency_cycles": s.latency_cycles,
                "max_latency_cycles": s.max_latency_cycles, "interval_cycles": interval,
                "total_cycles": s.total_cycles, "build_seconds": round(s.build_seconds, 3),
                "build_cached": s.build_cached, "run_seconds": round(s.run_seconds, 4),
                "stages_s": dict(self.stages_s),
                "mismatch_file": str(self.mismatch_file) if self.mismatch_file else None,
                "waves": str(s.waves_path) if s.waves_path else None}

    def summary(self) -> str:
        """A few lines for the terminal."""
        s = self.sim
        build = "cached" if s.build_cached else (
            f"{s.build_seconds:.1f} s" + (", Verilator runtime compiled too"
                                          if self.runtime_compiled else ""))
        lines = [
            f"{self.model}" + (f" for {self.board}" if self.board else ""),
            f"  inferences {self.inferences}, bit-exact: {'yes' if self.bit_exact else 'NO'}"
            f" ({self.mismatches} mismatching)",
            f"  latency    {s.latency_cycles} cycles (max {s.max_latency_cycles})",
            f"  interval   {s.interval_cycles:g} cycles",
            f"  cycles     {s.total_cycles:,} in {s.run_seconds:.2f} s "
            f"({s.cycles_per_second / 1e6:.2f} M cycles/s); build {build}",
        ]
        if s.waves_path:
            lines.append(f"  waves      {s.waves_path}")
        if self.mismatch_file:
            lines.append(f"  mismatches {self.mismatch_file}")
        return "\n".join(lines)


def simulate_model(model: str | Path, *, inputs: str | Path | np.ndarray | None = None,
                   n: int | None = None, config: Config | str | Path | None = None,
                   board: str | None = None, backpressure: float = 0.0, seed: int = 0,
                   waves: str | Path | None = None, out: str | Path | None = None,
                   progress: Progress | None = None,
                   target: FoldingTarget = FoldingTarget()) -> SimResult:
    """Simulate ``model``'s hardware on a batch and compare it bit-exact with the reference.

    ``inputs``: a batch (array or .npy file, first axis = batch); default ``n`` (100)
    standard-normal inputs drawn with ``seed``; ``n`` also truncates a given batch.
    ``board``: fold the design for that board, as ``hetero synth`` would; ``target``: the
    interval the folding aims at (:mod:`hetero.passes.folding`). ``backpressure``: the
    probability that the output is not ready in a cycle. ``waves``: FST file to write.
    ``out``: folder for ``mismatches.npz`` (inputs, expected, got as raw integers of the
    output tensor), written only when outputs differ, and for ``waves`` when they are meant to
    go there; it is replaced as a whole when the run ends
    (:func:`hetero.flows.common.atomic_output`: a folder of the user's files is refused before
    any work).

    Raises:
        UserError: bad model, config, board, inputs or options (message names which).
        ToolError: Verilator or the C++ compiler failed (message names the log).
        SimulationError: the design stalled, or outputs differ from the reference (after
            writing ``mismatches.npz`` when ``out`` is given).
    """
    from hetero.backends.rtl.top import Top, top_verilog

    if not 0.0 <= backpressure < 1.0:
        raise UserError(f"--backpressure must be in [0, 1), got {backpressure}")
    if n is not None and n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out}: -o takes a folder, and this is a file")
    require_cxx()  # before any work: no C++ compiler, a cache or OUT that cannot be written
    runs_dir()
    out_path = check_output(out) if out is not None else None
    timer = StageTimer(progress)
    compiled: list[bool] = []
    runtime = threading.Thread(target=_prepare_runtime, args=(waves is not None, compiled),
                               daemon=True)
    runtime.start()  # the Verilator runtime compiles (first run only) while Python works
    with timer.stage("compile model"):
        graph = compile_model(model, config, board, target=target)
        top = Top(graph, probes=True)
    x = input_batch(graph, inputs, n, seed)
    with timer.stage(f"reference ({len(x)} inferences)"):
        values = execute(graph, x)
    with timer.stage("verilog"):
        verilog = top_verilog(top)
    work = Path(tempfile.mkdtemp(prefix="sim-", dir=runs_dir()))  # logs outlive a failure
    with ExitStack() as output:
        # OUT is replaced as a whole when the run ends (atomic_output): waves meant for it are
        # written into its scratch folder first
        tmp = output.enter_context(atomic_output(out)) if out is not None else None
        final_waves = Path(waves) if waves else None
        if tmp is not None and final_waves is not None and \
                Path(os.path.abspath(final_waves.parent)) == out_path:
            waves = tmp / final_waves.name
        with timer.stage(f"build and simulate ({len(x)} inferences)"):
            result = run(graph, x, Verilator(  # links the runtime once the thread has it
                backpressure=backpressure, seed=seed, waves=waves or False, work_dir=work,
                top=top, verilog=verilog), values=values)
        mismatch_file = None
        if not result.bit_exact and tmp is not None:
            write_mismatches(tmp, result)
            mismatch_file = Path(out) / "mismatches.npz"
        if waves and final_waves is not None and Path(waves) != final_waves:
            result = dataclasses.replace(result, detail=dataclasses.replace(
                result.detail, waves_path=final_waves))
    shutil.rmtree(work, ignore_errors=True)
    runtime.join()
    sim = result.detail
    report = SimResult(str(model), board, len(x), result.mismatches, sim, timer.seconds,
                       bool(compiled and compiled[0])
                       or not (sim.build_cached or sim.runtime_reused), mismatch_file, result)
    if not result.bit_exact:
        where = f"; see {mismatch_file}" if mismatch_file else " (-o OUT writes mismatches.npz)"
        raise MismatchError(f"simulation disagrees with the reference on {result.mismatches} of "
                            f"{len(x)} inferences (first: inference {int(np.argmax(result.wrong))})"
                            f"{where}", report)
    return report


@dataclass(frozen=True)
class GraphSim:
    """What :func:`simulate_graph` gives: the design, the reference's and the RTL's outputs
    (raw integers of the output tensor, [N, *shape]) and the simulator's observations."""

    top: object  # hetero.backends.rtl.top.Top
    expected: np.ndarray
    got: np.ndarray
    sim: RtlSimResult

    @property
    def bit_exact(self) -> bool:
        return bool(np.array_equal(self.got, self.expected))


def simulate_graph(graph, x: np.ndarray, work_dir: str | Path, *, backpressure: float = 0.0,
                   seed: int = 0, stall_timeout: int = 100_000) -> GraphSim:
    """Build the hardware of a typed ``graph`` (with probe ports), stream the batch ``x`` (real
    inputs, as the reference takes them) through it in Verilator and return both outputs.
    No comparison is made here; :attr:`GraphSim.bit_exact` tells."""
    from hetero.backends.rtl.top import Top

    top = Top(graph, probes=True)
    result = run(graph, x, Verilator(backpressure=backpressure, seed=seed,
                                     stall_timeout=stall_timeout, work_dir=work_dir, top=top))
    return GraphSim(top, result.expected, result.raw, result.detail)


class MismatchError(SimulationError):
    """Outputs differ from the reference; ``report`` holds the full :class:`SimResult`."""

    def __init__(self, message: str, report: SimResult):
        super().__init__(message)
        self.report = report


def _prepare_runtime(trace: bool, compiled: list[bool]) -> None:
    try:
        compiled.append(not prepare_runtime(trace)[1])
    except Exception:  # noqa: BLE001 - the build retries it and reports the error itself
        pass
