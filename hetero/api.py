"""The typed public API: seven functions from an ONNX file to answers, each returning a typed
result with ``to_json()``.

==================  ===========================================  ==============================
function            answers                                      returns
==================  ===========================================  ==============================
:func:`compile_model`  the typed, folded dataflow graph             :class:`~hetero.ir.graph.Graph`
:func:`predict`        the bit-accurate reference's outputs         ``numpy.ndarray``
:func:`estimate`       resources, cycles and fit without tools      :class:`Estimate`
:func:`simulate`       RTL in Verilator, bit-exact against the      :class:`SimResult`
                       reference, latency and interval
:func:`csim`           the HLS C++ in g++, bit-exact check          :class:`CsimResult`
:func:`synth`          Verilog, simulation, synthesis, report       :class:`Report`
:func:`compare`        FPGA vs CPU vs GPU                           :class:`Report`
==================  ===========================================  ==============================

Common parameters: ``model`` is an ONNX file (path); ``config`` an hls4ml-style configuration
(YAML/JSON file, or a :class:`~hetero.ir.config.Config`); ``board`` a board name or alias
(:func:`hetero.boards.get`) or a :class:`~hetero.boards.Board`; ``target_interval`` (cycles)
or ``target_fps`` (inferences per second at the board's clock) what the automatic folding aims
at, else the fastest design that fits ``board``, else fully parallel; ``inputs`` a batch
(array or .npy file, first axis = batch), else ``n`` (default 100) standard-normal inputs drawn
with ``seed``.

Errors (all :class:`~hetero.errors.UserError`, one line naming the file, node or option):
:class:`~hetero.errors.UserError` for bad input (file, model, option, board, a tool that is not
installed), :class:`~hetero.errors.ToolError` for a tool that failed (the message names its
log), :class:`~hetero.errors.SimulationError` for hardware that stalled or disagrees with the
reference. Nothing is written outside ``out`` (and ``dump``) except the caches under
``$HETERO_CACHE_DIR`` (default ``~/.cache/hetero``) and the logs of failed tool runs under its
``runs/``.

Running any backend on any compiled graph: :func:`hetero.sim.run.run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero.boards import Board
from hetero.hw.cost import Resources
from hetero.ir.config import Config
from hetero.ir.graph import Graph
from hetero.passes.folding import FoldingTarget
from hetero.report.synth import Report
from hetero.sim.csim import CsimResult
from hetero.sim.run import Run
from hetero.flows.sim import SimResult
from hetero.synthesis.estimate import Estimate

__all__ = ["compile_model", "predict", "estimate", "simulate", "csim", "synth", "compare",
           "Graph", "Estimate", "SimResult", "CsimResult", "Report", "Run", "Resources"]

ModelPath = str | Path
ConfigLike = Config | str | Path | None
BoardLike = Board | str
Inputs = np.ndarray | str | Path | None


def _board(board: BoardLike | None) -> Board | None:
    from hetero import boards

    return boards.get(board) if isinstance(board, str) else board


def _target(interval: int | None, fps: float | None, board: Board | None) -> FoldingTarget:
    return FoldingTarget.from_options(interval, fps, board)


def compile_model(model: ModelPath, config: ConfigLike = None, board: BoardLike | None = None, *,
                  calibrate: Inputs = None, target_interval: int | None = None,
                  target_fps: float | None = None, dump: str | Path | None = None) -> Graph:
    """Import ``model`` and run the pipeline: typed fixed-point graph, parallelism chosen.

    ``calibrate``: a batch (array or .npy) whose ranges pick the ``auto`` and default
    precisions. ``dump``: a folder that gets the graph after every pass (``00-import.txt``,
    ...). Returns the compiled :class:`~hetero.ir.graph.Graph` (immutable). Raises UserError
    naming the file, node or option (every unsupported node at once). Writes nothing but
    ``dump``."""
    from hetero.flows.common import compile_model as _compile
    from hetero.passes.pipeline import dump_folder

    b = _board(board)
    return _compile(model, config, b, dump=dump_folder(dump) if dump is not None else None,
                    calibrate=calibrate, target=_target(target_interval, target_fps, b))


def predict(model: ModelPath, x: np.ndarray, config: ConfigLike = None, *,
            calibrate: Inputs = None) -> np.ndarray:
    """The bit-accurate reference's outputs for the batch ``x`` (first axis = batch): real
    values, the integers of an integer output, class indices where the hardware ends in
    argmax. Raises UserError (bad model, config or input shape). Writes nothing."""
    from hetero.flows.common import predict as _predict

    return _predict(model, x, config, calibrate=calibrate)


def estimate(model: ModelPath | Graph, board: BoardLike, config: ConfigLike = None, *,
             calibrate: Inputs = None, target_interval: int | None = None,
             target_fps: float | None = None) -> Estimate:
    """The analytic estimate on ``board``, no tools run: resources per layer and in total,
    interval and latency in cycles (both equal to the RTL's), utilization, fit and what does
    not fit. ``model``: an ONNX file (compiled for ``board``) or a graph :func:`compile_model`
    returned (used as it is). Returns an :class:`Estimate` (``to_json()`` is ``hetero estimate
    --json``). Raises UserError. Writes nothing."""
    from hetero.synthesis.estimate import estimate as _estimate

    b = _board(board)
    graph = model if isinstance(model, Graph) else compile_model(
        model, config, b, calibrate=calibrate, target_interval=target_interval,
        target_fps=target_fps)
    return _estimate(graph, b)


def simulate(model: ModelPath, *, inputs: Inputs = None, n: int | None = None,
             config: ConfigLike = None, board: BoardLike | None = None, seed: int = 0,
             backpressure: float = 0.0, waves: str | Path | None = None,
             out: str | Path | None = None, target_interval: int | None = None,
             target_fps: float | None = None) -> SimResult:
    """Simulate the model's RTL cycle by cycle in Verilator (native harness) on a batch and
    compare every output bit for bit with the reference.

    ``board``: fold as ``hetero synth`` would for it. ``backpressure``: probability that the
    output is not ready in a cycle (seeded by ``seed``). ``waves``: an FST file to write.
    Returns a :class:`SimResult` (latency, interval, cycles, the :class:`Run`). Raises
    UserError (bad input or option), ToolError (Verilator or g++ failed), SimulationError (the
    design stalled, naming the stream, or an output differs; the exception's ``report`` holds
    the SimResult). Writes ``out/mismatches.npz`` (the wrong inferences' inputs, expected and
    got raw outputs) when outputs differ and ``out`` is given; builds are cached."""
    from hetero.flows.sim import simulate_model

    b = _board(board)
    return simulate_model(model, inputs=inputs, n=n, config=config,
                          board=b.name if b is not None else None, backpressure=backpressure,
                          seed=seed, waves=waves, out=out,
                          target=_target(target_interval, target_fps, b))


def csim(model: ModelPath, *, inputs: Inputs = None, n: int | None = None,
         config: ConfigLike = None, board: BoardLike | None = None, seed: int = 0,
         out: str | Path | None = None) -> CsimResult:
    """Render the model's HLS C++ project (folded for ``board`` where given), compile it with
    g++ against hls4ml's ap_types headers and run it on a batch; compare bit for bit with the
    reference. Returns a :class:`CsimResult`. Raises UserError (bad input; g++ or hls4ml
    missing; g++ failing, naming its log) and SimulationError (an output differs, the
    exception's ``result`` holding the CsimResult; or the test bench failed). Writes the
    project to ``out/hls`` and, when outputs differ, ``out/mismatches.npz``; builds are
    cached."""
    from hetero.flows.csim import csim_model

    b = _board(board)
    return csim_model(model, inputs=inputs, n=n, config=config,
                      board=b.name if b is not None else None, seed=seed, out=out)


def synth(model: ModelPath, board: BoardLike, out: str | Path, *, config: ConfigLike = None,
          inputs: Inputs = None, n: int | None = None, seed: int = 0, synthesize: bool = True,
          backpressure: float = 0.0, calibrate: Inputs = None,
          target_interval: int | None = None, target_fps: float | None = None,
          labels: np.ndarray | str | Path | None = None, compare: bool = True,
          clock_mhz: float | None = None, dump: str | Path | None = None) -> Report:
    """``hetero synth``: Verilog, RTL simulation bit-exact against the reference, Yosys
    synthesis (skipped with ``synthesize=False``), timing, HLS project and C simulation, and
    (``compare``) CPU/GPU baselines, float-vs-fixed error and, with ``labels`` for ``inputs``,
    accuracy.

    ``clock_mhz``: the clock latency and throughput use (default the board's; lowered to the
    Fmax where timing finds the design slower). Returns the :class:`Report` (``to_json()`` is
    report.json). Raises UserError (bad input, a board whose tools are missing: before any
    work), ToolError (a tool failed), SimulationError (the RTL stalled; or, after the report
    is written, an output or the C simulation disagrees with the reference). Writes, all at
    once into ``out`` (or nothing): ``rtl/hetero_top.v``, ``report.json``, ``logs/``,
    ``hls/``, with ``compare`` ``report.html``, ``report.md`` and ``figures/``, and
    ``mismatches.npz`` when outputs differ."""
    from hetero.flows.synth import synth_report

    b = _board(board)
    return synth_report(model, b.name, out, config=config, inputs=inputs, n=n, seed=seed,
                        synthesize=synthesize, backpressure=backpressure, calibrate=calibrate,
                        target=_target(target_interval, target_fps, b), labels=labels,
                        compare=compare, clock_mhz=clock_mhz, dump=dump)


def compare(model: ModelPath, board: BoardLike, *, out: str | Path | None = None,
            config: ConfigLike = None, inputs: Inputs = None, n: int | None = None,
            seed: int = 0, synthesize: bool = False, calibrate: Inputs = None,
            target_interval: int | None = None, target_fps: float | None = None,
            labels: np.ndarray | str | Path | None = None) -> Report:
    """``hetero compare``: the model on the FPGA (simulated cycles at the board's clock, the
    power model's energy), this machine's CPU and a GPU where onnxruntime has CUDA (measured):
    latency at batch 1, best throughput, energy per inference; with ``labels`` accuracy.
    ``synthesize``: Yosys counts for the power model instead of the estimate.

    Returns the :class:`Report` (its ``baselines`` section holds the comparison). Raises as
    :func:`synth`. Writes the whole report to ``out`` as :func:`synth` does, or nothing when
    ``out`` is None."""
    import tempfile

    if out is not None:
        return synth(model, board, out, config=config, inputs=inputs, n=n, seed=seed,
                     synthesize=synthesize, calibrate=calibrate,
                     target_interval=target_interval, target_fps=target_fps, labels=labels)
    with tempfile.TemporaryDirectory(prefix="hetero-compare-") as scratch:
        return synth(model, board, Path(scratch) / "out", config=config, inputs=inputs, n=n,
                     seed=seed, synthesize=synthesize, calibrate=calibrate,
                     target_interval=target_interval, target_fps=target_fps, labels=labels)

