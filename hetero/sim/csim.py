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

from hetero.cache import cache_root
from hetero.errors import SimulationError, UserError
from hetero.backends.hls.project import HlsProject

__all__ = ["CsimResult", "ap_types_dir", "compiler", "build", "run_beats", "csim_graph", "OPT"]

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
    if exe.is_file():
        return Build(exe, True, 0.0, version)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
    for name, text in project.files.items():
        (work / name).write_text(text)
    cmd = [cxx, opt, *FLAGS, "-isystem", str(include), "-I", str(work), str(work / "hetero_csim.cpp"),
           "-o", str(work / "hetero_csim")]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        log = work / "gxx.log"
        log.write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        raise UserError(f"g++ failed to compile the HLS C simulation (see {log})")
    try:
        work.replace(root)
    except OSError:  # another process built the same project meanwhile
        shutil.rmtree(work, ignore_errors=True)
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
        r = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            raise SimulationError(f"the HLS C simulation failed: {msg}")
        got = np.fromfile(fout, dtype="<i8")
    return got.reshape(len(beats), out_beats, out_lanes), seconds


@dataclass(frozen=True)
class CsimResult:
    """What :func:`csim_graph` found: reference and C++ outputs (raw integers of the output
    tensor, [N, *shape]), the compiler, build and run times."""

    expected: np.ndarray
    got: np.ndarray
    compiler: str
    build_cached: bool
    build_seconds: float
    run_seconds: float
    project: HlsProject = field(repr=False)

    @property
    def mismatches(self) -> int:
        n = len(self.expected)
        return int((self.got != self.expected).reshape(n, -1).any(axis=1).sum())

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    def report(self) -> dict:
        """The ``csim`` section of report.json."""
        return {"compiler": self.compiler, "inferences": int(len(self.expected)),
                "bit_exact": self.bit_exact, "mismatches": self.mismatches,
                "build_seconds": round(self.build_seconds, 3), "build_cached": self.build_cached,
                "run_seconds": round(self.run_seconds, 4)}


def csim_graph(graph, x: np.ndarray, project: HlsProject | None = None, opt: str = OPT) -> CsimResult:
    """Render (unless given), build and run the HLS project of a typed ``graph`` on the batch
    ``x`` (real inputs, as the reference takes them); no comparison raises here."""
    from hetero.hw.stream import from_beats, tensor_layouts, to_beats
    from hetero.reference import execute
    from hetero.backends.hls.project import render_project

    project = project or render_project(graph)
    b = build(project, opt)
    values = execute(graph, x)
    layouts = tensor_layouts(graph)
    t_in, t_out = project.in_tensor, project.out_tensor
    beats = to_beats(values[t_in], tuple(graph.tensors[t_in].shape), layouts[t_in])
    out, seconds = run_beats(b.exe, beats, project.out_beats, project.out_lanes)
    got = from_beats(out, tuple(graph.tensors[t_out].shape), layouts[t_out])
    return CsimResult(values[t_out], got, b.compiler, b.cached, b.seconds, seconds, project)


