"""One way to run a compiled graph on a backend and check it against the reference.

:func:`run` executes the bit-accurate reference on a batch (the hardware's input and expected
output are tensors of it: the host runs the float prefix and input quantizer), turns the
hardware part's input tensor into AXI4-Stream beats (:mod:`hetero.hw.stream`), hands them to a
:class:`Backend`, turns the beats it returns back into tensors and compares them with the
reference bit for bit. Three backends, each in the module of its simulator:

* :class:`hetero.sim.verilator.Verilator`: the RTL in Verilator's native harness,
  cycle-accurate, with backpressure, stall probes and FST waves;
* :class:`hetero.sim.csim.Csim`: the HLS C++ project compiled with g++, no cycles;
* :class:`hetero.sim.amaranth.AmaranthSim`: the RTL in Amaranth's own simulator,
  cycle-accurate, no tools, for small designs.

:func:`write_mismatches` is the one writer of ``mismatches.npz``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hetero.errors import UserError
from hetero.ir.graph import Graph
from hetero.reference import execute

__all__ = ["Backend", "BackendRun", "Run", "run", "real_outputs", "write_mismatches"]


@dataclass(frozen=True)
class BackendRun:
    """What a backend returns for one batch of input beats: the raw output beats
    [N, B_out, L_out] and, where it measures them, cycles (as in
    :class:`hetero.sim.verilator.RtlSimResult`)."""

    out_beats: np.ndarray
    simulator: str
    latency_cycles: int | None = None
    interval_cycles: float | None = None
    max_latency_cycles: int | None = None
    total_cycles: int | None = None
    detail: Any = None  #: the backend's own result (RtlSimResult, csim Build, ...)


@runtime_checkable
class Backend(Protocol):
    """Runs the hardware of a typed graph on raw input beats.

    ``simulate(graph, in_beats)`` takes beats [N, B_in, L_in] of the hardware part's input
    tensor (raw integers, :func:`hetero.hw.stream.to_beats`) and returns a :class:`BackendRun`
    with the output tensor's beats. It raises UserError (bad input, a tool missing),
    ToolError (a tool failing) or SimulationError (stall, protocol error); it never compares
    with the reference."""

    name: str

    def simulate(self, graph: Graph, in_beats: np.ndarray) -> BackendRun: ...


@dataclass(frozen=True)
class Run:
    """One batch through one backend, compared with the reference.

    ``raw`` and ``expected`` are the raw integers of the output tensor [N, *shape] (backend and
    reference); ``outputs`` the backend's outputs as :func:`hetero.reference.predict` gives the
    reference's (real values, class indices for an argmax output). Cycle figures are None
    where the backend does not measure them; ``seconds`` is the wall time of the backend call
    (build included)."""

    backend: str
    simulator: str
    inputs: np.ndarray = field(repr=False)
    expected: np.ndarray = field(repr=False)
    raw: np.ndarray = field(repr=False)
    outputs: np.ndarray = field(repr=False)
    seconds: float
    latency_cycles: int | None = None
    interval_cycles: float | None = None
    max_latency_cycles: int | None = None
    total_cycles: int | None = None
    detail: Any = field(default=None, repr=False)
    values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  #: the reference's tensors

    @property
    def wrong(self) -> np.ndarray:
        """Per inference, whether any output bit differs from the reference."""
        n = len(self.expected)
        return (self.raw != self.expected).reshape(n, -1).any(axis=1)

    @property
    def mismatches(self) -> int:
        """Inferences with any wrong bit."""
        return int(self.wrong.sum())

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    @property
    def inferences(self) -> int:
        return int(len(self.expected))

    def to_json(self) -> dict:
        """``{backend, simulator, inferences, bit_exact, mismatches, latency_cycles,
        interval_cycles, max_latency_cycles, total_cycles, seconds}`` (JSON types; cycle
        figures null where not measured, the interval also under two inferences)."""
        interval = self.interval_cycles
        return {"backend": self.backend, "simulator": self.simulator,
                "inferences": self.inferences, "bit_exact": self.bit_exact,
                "mismatches": self.mismatches, "latency_cycles": self.latency_cycles,
                "interval_cycles": interval if interval == interval else None,  # NaN: null
                "max_latency_cycles": self.max_latency_cycles,
                "total_cycles": self.total_cycles, "seconds": round(self.seconds, 4)}


def real_outputs(graph: Graph, tensor: str, raw: np.ndarray) -> np.ndarray:
    """Raw integers of ``tensor`` as :func:`hetero.reference.predict` gives outputs: class
    indices for an argmax output, real values otherwise."""
    if graph.producer(tensor).attrs.get("strategy") == "argmax":
        return np.asarray(raw).astype(np.int64)
    return graph.tensors[tensor].onnx_value(raw)


def run(graph: Graph, inputs: np.ndarray, backend: Backend, *,
        values: dict[str, np.ndarray] | None = None) -> Run:
    """Run the batch ``inputs`` (real values, first axis = batch, as the reference takes them)
    through ``backend`` on the typed, folded ``graph`` and compare with the reference.

    ``values``: the reference's tensors on ``inputs`` where the caller has computed them
    (:func:`hetero.reference.execute`); else they are computed here. A mismatch is not an
    error: :attr:`Run.bit_exact` tells. Raises what the backend raises (see :class:`Backend`)."""
    from hetero.dataflow import hardware_part
    from hetero.hw.stream import from_beats, tensor_layouts, to_beats

    x = np.asarray(inputs)
    if values is None:
        values = execute(graph, x)
    part = hardware_part(graph)
    layouts = tensor_layouts(graph)
    t_in, t_out = part.input, part.output
    in_beats = to_beats(values[t_in], tuple(graph.tensors[t_in].shape), layouts[t_in])
    t0 = time.perf_counter()
    r = backend.simulate(graph, in_beats)
    seconds = time.perf_counter() - t0
    raw = from_beats(r.out_beats, tuple(graph.tensors[t_out].shape), layouts[t_out])
    return Run(backend.name, r.simulator, x, values[t_out], raw, real_outputs(graph, t_out, raw),
               seconds, r.latency_cycles, r.interval_cycles, r.max_latency_cycles,
               r.total_cycles, r.detail, values)


def write_mismatches(out: str | Path, result: Run) -> Path:
    """Write ``out/mismatches.npz`` for a run that is not bit-exact: ``index`` (the wrong
    inferences), ``inputs``, ``expected`` and ``got`` (raw integers of the output tensor) of
    those inferences; all at once (a partial file never replaces it). Returns the path.
    Raises UserError when ``out`` cannot be a folder."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder ({e.strerror})") from None
    if not out.is_dir():
        raise UserError(f"{out}: not a folder")
    wrong = result.wrong
    path = out / "mismatches.npz"
    tmp = out / ".mismatches.partial.npz"
    np.savez(tmp, index=np.flatnonzero(wrong), inputs=result.inputs[wrong],
             expected=result.expected[wrong], got=result.raw[wrong])
    tmp.replace(path)
    return path
