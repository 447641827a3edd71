"""C simulation of the HLS project with g++: compile the rendered project against the ap_types
headers of the installed hls4ml package (``-isystem``; never copied) and our own stream shim
(``-DHETERO_CSIM``), run its test bench on binary beat files and compare every output with the
reference, bit for bit.

Builds are cached by content: the binary of a project whose files, compiler and flags are
unchanged is reused from ``cache_root()/csim``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hetero.cache import cache_dir, cache_root, die_with_parent, publish, valid_executable
from hetero.errors import SimulationError, UserError
from hetero.backends.hls.project import HlsProject
from hetero.ir.graph import Graph
from hetero.sim.run import BackendRun, Run, run

__all__ = ["Csim", "CsimResult", "ap_types_dir", "compiler", "build", "run_beats", "csim_graph", "OPT"]

#: g++ optimisation of the C simulation (benchmarks/csim_speed.py measured -O0/-O1/-O2)
OPT = "-O2"
FLAGS = ["-std=c++14", "-DHETERO_CSIM", "-w"]


def compiler() -> str:
    """The C++ compiler: ``$CXX`` or ``g++`` on PATH. Raises UserError (exit 2) naming what to
    install when there is none."""
    cxx = os.environ.get("CXX") or "g++"
    path = shutil.which(cxx)
    if path is None:
        raise UserError(f"C simulation needs a C++ compiler: '{cxx}' not found on PATH "
                        "(install g++, e.g. apt-get install g++)")
    return path


def ap_types_dir() -> Path:
    """The ap_types headers bundled with the installed hls4ml package. Raises UserError when
    hls4ml is not installed."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or spec.origin is None:
        raise UserError("C simulation needs the ap_types headers of hls4ml: pip install hls4ml==1.3.0")
    path = Path(spec.origin).parent / "templates" / "vivado" / "ap_types"
    if not (path / "ap_fixed.h").is_file():
        raise UserError(f"{path}: no ap_fixed.h in the installed hls4ml; reinstall hls4ml==1.3.0")
    return path


def _version(cxx: str) -> str:
    r = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else cxx


@dataclass(frozen=True)
class Build:
    exe: Path
    cached: bool
    seconds: float
    compiler: str


def build(project: HlsProject, opt: str = OPT) -> Build:
    """Compile the project's test bench and top as one translation unit (cached by content).
    Raises UserError (exit 2) when g++ is missing or fails (the message names the log)."""
    cxx = compiler()
    include = ap_types_dir()
    version = _version(cxx)
    h = hashlib.sha256()
    for name in sorted(project.files):
        h.update(name.encode() + b"\0" + project.files[name].encode() + b"\0")
    h.update(" ".join([version, opt, *FLAGS, str(include)]).encode())
    root = cache_root() / "csim" / h.hexdigest()[:32]
    exe = root / "hetero_csim"
    if valid_executable(exe):
        return Build(exe, True, 0.0, version)
    for stale in cache_dir("csim").glob(".build-*"):  # of builds killed a day ago or more
        try:
            if stale.stat().st_mtime < time.time() - 24 * 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    if root.exists():  # an entry whose executable cannot run: rebuild it
        shutil.rmtree(root, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
    for name, text in project.files.items():
        (work / name).write_text(text)
    cmd = [cxx, opt, *FLAGS, "-isystem", str(include), "-I", str(work), str(work / "hetero_csim.cpp"),
           "-o", str(work / "hetero_csim")]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        log = work / "gxx.log"
        log.write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        raise UserError(f"g++ failed to compile the HLS C simulation (see {log})")
    publish(work, root)  # one rename: a killed build never leaves a half entry
    return Build(exe, False, seconds, version)


def run_beats(exe: Path, beats: np.ndarray, out_beats: int, out_lanes: int) -> tuple[np.ndarray, float]:
    """Run the test bench on input beats [N, beats, lanes] (raw integers); returns the output
    beats [N, out_beats, out_lanes] and the run's seconds. Raises SimulationError when the
    test bench fails (a stream read empty, a wrong TLAST)."""
    beats = np.ascontiguousarray(beats, dtype="<i8")
    with tempfile.TemporaryDirectory(prefix="csim-") as tmp:
        fin, fout = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        with open(fin, "wb") as f:
            np.asarray([len(beats)], dtype="<i8").tofile(f)
            beats.tofile(f)
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True,
                           preexec_fn=die_with_parent)
        seconds = time.perf_counter() - t0
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            raise SimulationError(f"the HLS C simulation failed: {msg}")
        got = np.fromfile(fout, dtype="<i8")
    return got.reshape(len(beats), out_beats, out_lanes), seconds


@dataclass(frozen=True)
class CsimResult:
    """What :func:`csim_graph` found: reference and C++ outputs (raw integers of the output
    tensor, [N, *shape]), the compiler, build and run times; ``run``: the
    :class:`hetero.sim.run.Run` they come from."""

    expected: np.ndarray
    got: np.ndarray
    compiler: str
    build_cached: bool
    build_seconds: float
    run_seconds: float
    project: HlsProject = field(repr=False)
    run: Run | None = field(default=None, repr=False)

    @classmethod
    def from_run(cls, result: Run) -> "CsimResult":
        """The C simulation's figures of a :class:`Run` on the :class:`Csim` backend."""
        d = result.detail
        return cls(result.expected, result.raw, d.build.compiler, d.build.cached,
                   d.build.seconds, d.run_seconds, d.project, result)

    @property
    def mismatches(self) -> int:
        n = len(self.expected)
        return int((self.got != self.expected).reshape(n, -1).any(axis=1).sum())

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    def to_json(self) -> dict:
        """The ``csim`` section of report.json: ``{compiler, inferences, bit_exact, mismatches,
        build_seconds, build_cached, run_seconds}``."""
        return {"compiler": self.compiler, "inferences": int(len(self.expected)),
                "bit_exact": self.bit_exact, "mismatches": self.mismatches,
                "build_seconds": round(self.build_seconds, 3), "build_cached": self.build_cached,
                "run_seconds": round(self.run_seconds, 4)}


def csim_graph(graph, x: np.ndarray, project: HlsProject | None = None, opt: str = OPT,
               values: dict | None = None) -> CsimResult:
    """Render (unless given), build and run the HLS project of a typed ``graph`` on the batch
    ``x`` (real inputs, as the reference takes them) through :func:`hetero.sim.run.run`;
    ``values``: the reference's tensors on ``x`` where the caller has them. No comparison
    raises here; :attr:`CsimResult.bit_exact` tells."""
    return CsimResult.from_run(run(graph, x, Csim(project, opt), values=values))


@dataclass
class Csim:
    """The HLS C++ project (:mod:`hetero.backends.hls.project`) compiled with g++ and run on
    the beats (:mod:`hetero.sim.csim`); ``project``: the rendered project where the caller has
    it. No cycle figures. ``detail`` of the result: a :class:`CsimDetail`."""

    project: HlsProject | None = None
    opt: str | None = None
    name: str = "csim"

    def simulate(self, graph: Graph, in_beats: np.ndarray) -> BackendRun:
        from hetero.backends.hls.project import render_project

        project = self.project if self.project is not None else render_project(graph)
        b = build(project, self.opt or OPT)
        out, seconds = run_beats(b.exe, in_beats, project.out_beats, project.out_lanes)
        return BackendRun(out, b.compiler, detail=CsimDetail(b, seconds, project))


@dataclass(frozen=True)
class CsimDetail:
    """The C simulation's build, run time and project (:attr:`BackendRun.detail` of
    :class:`Csim`)."""

    build: Build
    run_seconds: float
    project: HlsProject
