"""``hetero sim``: a model's hardware simulated cycle by cycle (native Verilator harness) and
checked bit-exact against the reference, for regression runs of thousands of inferences.

The flow: compile the model, build its :class:`~hetero.backends.rtl.top.Top` (with stall probes), run the
reference on the batch (the hardware's input and expected output are tensors of it: the host
runs the float prefix and input quantizer), stream the input tensor's beats through the RTL
with :func:`hetero.sim.verilator.simulate_beats` and compare every output bit for bit.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetero.ir.config import Config
from hetero.errors import SimulationError, UserError
from hetero.passes.folding import FoldingTarget
from hetero.flows.common import Progress, StageTimer, runs_dir, compile_model, input_batch
from hetero.reference import execute
from hetero.sim.verilator import RtlSimResult, prepare_runtime, simulate_beats

__all__ = ["SimReport", "simulate_model"]


@dataclass(frozen=True)
class SimReport:
    """What :func:`simulate_model` found; ``mismatches`` counts inferences with any wrong bit."""

    model: str
    board: str | None
    inferences: int
    mismatches: int
    sim: RtlSimResult
    stages_s: dict[str, float]
    runtime_compiled: bool  #: this call compiled the Verilator runtime archive (first run)
    mismatch_file: Path | None = None

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

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
                   target: FoldingTarget = FoldingTarget()) -> SimReport:
    """Simulate ``model``'s hardware on a batch and compare it bit-exact with the reference.

    ``inputs``: a batch (array or .npy file, first axis = batch); default ``n`` (100)
    standard-normal inputs drawn with ``seed``; ``n`` also truncates a given batch.
    ``board``: fold the design for that board, as ``hetero synth`` would; ``target``: the
    interval the folding aims at (:mod:`hetero.passes.folding`). ``backpressure``: the
    probability that the output is not ready in a cycle. ``waves``: FST file to write.
    ``out``: folder for ``mismatches.npz`` (inputs, expected, got as raw integers of the
    output tensor), written only when outputs differ.

    Raises:
        UserError: bad model, config, board, inputs or options (message names which).
        ToolError: Verilator or the C++ compiler failed (message names the log).
        SimulationError: the design stalled, or outputs differ from the reference (after
            writing ``mismatches.npz`` when ``out`` is given).
    """
    from hetero.backends.rtl.top import Top
    from hetero.hw.stream import from_beats, to_beats

    if not 0.0 <= backpressure < 1.0:
        raise UserError(f"--backpressure must be in [0, 1), got {backpressure}")
    if n is not None and n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out}: -o takes a folder, and this is a file")
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
        hw_in, expected = values[top.input_tensor], values[top.output_tensor]
    in_shape = tuple(graph.tensors[top.input_tensor].shape)
    out_shape = tuple(graph.tensors[top.output_tensor].shape)
    with timer.stage("verilog"):
        verilog = _verilog(top)
    work = Path(tempfile.mkdtemp(prefix="sim-", dir=runs_dir()))  # logs outlive a failure
    with timer.stage(f"build and simulate ({len(x)} inferences)"):
        sim = simulate_beats(  # links the runtime once the thread has it (waits on its lock)
            verilog, _top_name(), to_beats(hw_in, in_shape, top.in_layout),
            in_width=top.in_type.width, in_signed=top.in_type.signed,
            out_beats=top.out_layout.beats, out_lanes=top.out_layout.lanes,
            out_width=top.out_type.width, out_signed=top.out_type.signed, work_dir=work,
            backpressure=backpressure, seed=seed, waves=waves or False,
            probe_names=top.stream_names)
    got = from_beats(sim.outputs, out_shape, top.out_layout)
    wrong = (got != expected).reshape(len(x), -1).any(axis=1)
    mismatches = int(wrong.sum())
    mismatch_file = None
    if mismatches and out is not None:
        mismatch_file = _write_mismatches(Path(out), x, expected, got, wrong)
    shutil.rmtree(work, ignore_errors=True)
    runtime.join()
    report = SimReport(str(model), board, len(x), mismatches, sim, timer.seconds,
                       bool(compiled and compiled[0])
                       or not (sim.build_cached or sim.runtime_reused), mismatch_file)
    if mismatches:
        where = f"; see {mismatch_file}" if mismatch_file else " (-o OUT writes mismatches.npz)"
        raise MismatchError(f"simulation disagrees with the reference on {mismatches} of "
                            f"{len(x)} inferences (first: inference {int(np.argmax(wrong))})"
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
    from hetero.hw.stream import from_beats, to_beats
    from hetero.backends.rtl.top import Top

    top = Top(graph, probes=True)
    values = execute(graph, x)
    in_shape = tuple(graph.tensors[top.input_tensor].shape)
    out_shape = tuple(graph.tensors[top.output_tensor].shape)
    sim = simulate_beats(
        _verilog(top), _top_name(), to_beats(values[top.input_tensor], in_shape, top.in_layout),
        in_width=top.in_type.width, in_signed=top.in_type.signed,
        out_beats=top.out_layout.beats, out_lanes=top.out_layout.lanes,
        out_width=top.out_type.width, out_signed=top.out_type.signed, work_dir=work_dir,
        backpressure=backpressure, seed=seed, stall_timeout=stall_timeout,
        probe_names=top.stream_names)
    return GraphSim(top, values[top.output_tensor], from_beats(sim.outputs, out_shape, top.out_layout),
                    sim)


class MismatchError(SimulationError):
    """Outputs differ from the reference; ``report`` holds the full :class:`SimReport`."""

    def __init__(self, message: str, report: SimReport):
        super().__init__(message)
        self.report = report


def _prepare_runtime(trace: bool, compiled: list[bool]) -> None:
    try:
        compiled.append(not prepare_runtime(trace)[1])
    except Exception:  # noqa: BLE001 - the build retries it and reports the error itself
        pass


def _verilog(top) -> str:
    from hetero.backends.rtl.top import top_verilog

    return top_verilog(top)


def _top_name() -> str:
    from hetero.dataflow import TOP_NAME

    return TOP_NAME


def _write_mismatches(out: Path, x: np.ndarray, expected: np.ndarray, got: np.ndarray,
                      wrong: np.ndarray) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder ({e.strerror})") from None
    if not out.is_dir():
        raise UserError(f"{out}: not a folder")
    path = out / "mismatches.npz"
    tmp = out / ".mismatches.partial.npz"
    np.savez(tmp, index=np.flatnonzero(wrong), inputs=x[wrong], expected=expected[wrong],
             got=got[wrong])
    tmp.replace(path)
    return path
