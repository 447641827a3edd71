"""``csim_model``: the flow behind ``hetero csim`` (compile, render the HLS project, run it
with g++ against the reference), and the ``csim`` section of ``hetero synth``'s report."""

from __future__ import annotations
from pathlib import Path
import numpy as np
from hetero.errors import SimulationError, UserError
from hetero.backends.hls.project import HlsProject
from hetero.sim.csim import CsimResult, ap_types_dir, compiler, csim_graph
from hetero.sim.run import write_mismatches


def csim_model(model: str | Path, *, inputs=None, n: int | None = None, config=None,
               board: str | None = None, seed: int = 0, out: str | Path | None = None) -> CsimResult:
    """``hetero csim``: compile ``model`` (folded for ``board`` as ``hetero synth`` would),
    render its HLS project, build and run it with g++ on a batch (``inputs``, or ``n`` random
    ones; default 100) and compare with the reference. ``out``: write the project to
    ``out/hls`` and, when outputs differ, ``out/mismatches.npz``, replacing ``out`` as a whole
    (:func:`hetero.flows.common.atomic_output`, which refuses a folder of the user's files).

    Raises UserError (exit 2: bad input, g++ or hls4ml missing, g++ failing) and
    SimulationError (exit 4: outputs differ, or the test bench failed)."""
    from hetero.boards import get as get_board
    from hetero.cache import cache_dir
    from hetero.flows.common import atomic_output, check_output, compile_model, input_batch
    from hetero.backends.hls.project import render_project, write_project

    if n is not None and n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out}: -o takes a folder, and this is a file")
    compiler()  # fail early, before any work, when there is no g++, no ap_types, a cache or
    ap_types_dir()  # an OUT that cannot be written, or an OUT of the user's own files
    cache_dir("csim")
    if out is not None:
        check_output(out)
    b = get_board(board) if board is not None else None
    graph = compile_model(model, config, b)
    x = input_batch(graph, inputs, n, seed)
    project = render_project(graph, *((b.part, 1000.0 / b.clock_mhz) if b is not None else ()))
    result = csim_graph(graph, x, project)
    if out is not None:  # replaced as a whole (atomic_output)
        with atomic_output(out) as tmp:
            write_project(project, tmp / "hls")
            if not result.bit_exact:
                write_mismatches(tmp, result.run)
    if not result.bit_exact:
        where = f"; see {Path(out) / 'mismatches.npz'}" if out is not None else " (-o OUT writes mismatches.npz)"
        raise CsimMismatch(f"HLS C simulation disagrees with the reference on {result.mismatches} of "
                           f"{len(x)} inferences{where}", result)
    return result

class CsimMismatch(SimulationError):
    """The C simulation's outputs differ from the reference; ``result`` holds them."""

    def __init__(self, message: str, result: CsimResult):
        super().__init__(message)
        self.result = result

def synth_section(graph, board, folder: Path, x: np.ndarray, values: dict | None = None) -> dict:
    """For ``hetero synth``: write the HLS project into ``folder`` and, where g++ and the
    ap_types headers are present, run the C simulation on ``x``. Returns report.json's ``csim``
    section: the result, or ``skipped`` with the reason (an op without an HLS kernel, no g++)."""
    from hetero.backends.hls.project import render_project, write_project

    try:
        project = render_project(graph, board.part, 1000.0 / board.clock_mhz)
    except UserError as e:
        return {"skipped": f"no HLS project: {e}"}
    write_project(project, folder)
    try:
        compiler()
        ap_types_dir()
    except UserError as e:
        return {"skipped": str(e)}
    _write_inputs(graph, x, project, folder / "inputs.bin", values)
    try:
        return csim_graph(graph, x, project, values=values).to_json()
    except SimulationError as e:
        return {"bit_exact": False, "error": str(e)}

def _write_inputs(graph, x: np.ndarray, project: HlsProject, path: Path,
                  values: dict | None = None) -> None:
    """The test bench's input file for the batch ``x``: int64 count, then the raw input beats
    (``values``: the reference's tensors on ``x`` where the caller has them)."""
    from hetero.hw.stream import tensor_layouts, to_beats
    from hetero.reference import execute

    raw = (values if values is not None else execute(graph, x))[project.in_tensor]
    beats = to_beats(raw, tuple(graph.tensors[project.in_tensor].shape), tensor_layouts(graph)[project.in_tensor])
    with open(path, "wb") as f:
        np.asarray([len(beats)], dtype="<i8").tofile(f)
        np.ascontiguousarray(beats, dtype="<i8").tofile(f)
