"""Bulk RTL simulation with no Python in the cycle loop: a native C++ Verilator harness.

:func:`simulate_beats` streams multi-beat AXI4-Stream inferences (the convention of
:mod:`hetero.hw.stream`) through a Verilog top level and returns the raw output beats and the
cycles each inference entered and left. Python only writes the stimulus file before and reads
the result file after. The design sits in a small bench (``hetero/data/rtlsim_tb.v``) whose
only port is the clock; at every rising edge the bench hands the design's outputs to the C++
harness (``hetero/data/rtlsim_main.cpp``, one DPI call) and registers the inputs it returns,
so Verilator evaluates the design's logic once per cycle and generates it once. The harness
keeps the handshakes, the seeded backpressure (xorshift64*) and stall detection.

Builds are cached under ``$HETERO_CACHE_DIR/rtlsim/<key>`` keyed by the Verilog text, the top
name, the bench and harness sources, the build flags and tool versions; a file lock makes
concurrent callers build each design once. Verilator's output is compiled as two translation
units (fast code optimized, slow code not) instead of verilated.mk's one per file; the
Verilator runtime is compiled once per cache and flag set into an archive
(:func:`prepare_runtime`), alongside the first design. Traced builds (``waves``, FST) are
separate cache entries.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from hetero.backends.rtl.ports import Port, ports as rtl_ports
from hetero.cache import cache_dir, cache_root, die_with_parent, valid_executable
from hetero.errors import SimulationError, ToolError, UserError
from hetero.ir.graph import Graph
from hetero.sim.run import BackendRun
from hetero.sim.verilator_tool import (first_error, locked, simulator_version, tool_env,
                                        verilator_bin, verilog_ports)

__all__ = ["RtlSimResult", "Verilator", "simulate_beats", "prepare_runtime", "BUILD_ARGS", "OPT_MODEL"]

#: Verilator flags: Amaranth's output trips lint warnings (-Wno-fatal); the rest make the
#: model faster at no build cost (Verilator's own optimizer, X values resolved as zeros).
BUILD_ARGS: tuple[str, ...] = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                               "--no-timing")
# g++ levels, measured on the folded jet-tagging MLP (pynq-z2), 10k inferences, 240k cycles:
# the model's fast code at -O0 compiles in 1.9-3 s of CPU and simulates 0.05 M cycles/s (5 s);
# -O1 takes 7 s and simulates 0.4-0.6 M cycles/s; -O2 10.5 s for no gain; -Og 4 s, slower.
#: Verilator runtime sources every harness links (FST tracing adds verilated_fst_c). Not
#: verilated_dpi: Amaranth's designs import and export no DPI functions (2.3 s of CPU saved).
RUNTIME_SOURCES: tuple[str, ...] = ("verilated", "verilated_threads")
#: g++ options for the model's fast code: -O1 without the three passes that took half of its
#: compile time on the folded jet-tagging MLP (DSE, FRE, dominator opts: 6.6 s -> 3.3 s of CPU
#: for 1.1 MB of C++, -O0 takes 3.0 s) for a model ~25 % slower than plain -O1 (-O0: 10x).
OPT_MODEL = ("-O1", "-fno-tree-dse", "-fno-tree-fre", "-fno-tree-dominator-opts")
#: g++ level for code Verilator marks slow (construction, initial values): run once.
OPT_SLOW = "-O0"
#: g++ level for the Verilator runtime, compiled once per cache as one translation unit and
#: archived: 5.6 s of CPU at -O0 (three files at -O1: 10.2 s); the harness hardly runs it.
OPT_RUNTIME = "-O0"
RESET_CYCLES = 4
_HEADER = 16
_MAGIC = 0x4852544C53494D31
_STATUS_OK, _STATUS_STALL, _STATUS_TLAST, _STATUS_EARLY = 0, 1, 2, 3
_BENCH = "hetero_rtlsim_tb"  # module name of the bench around the design (data/rtlsim_tb.v)
_PORTS = ("clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
          "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast")


@dataclass(frozen=True)
class RtlSimResult:
    """What one :func:`simulate_beats` call observed.

    Cycle numbers count rising clock edges after reset (the first edge is cycle 0); a beat's
    cycle is the edge at which ``tvalid & tready`` was sampled high.
    """

    outputs: np.ndarray  #: int64 [N, B_out, L_out] raw values, sign-extended when out_signed
    in_cycles: np.ndarray  #: int64 [N], cycle of each inference's first input beat
    out_cycles: np.ndarray  #: int64 [N], cycle of each inference's last output beat
    latency_cycles: int  #: out_cycles[0] - in_cycles[0] (first inference, idle pipeline)
    max_latency_cycles: int  #: max over inferences of out_cycles[i] - in_cycles[i]
    interval_cycles: float  #: mean spacing of in_cycles over the second half (nan if N < 2)
    total_cycles: int  #: edges simulated after reset
    simulator: str  #: e.g. "verilator 5.048 (native harness)"
    build_seconds: float  #: 0.0 when the build came from the cache
    run_seconds: float  #: the harness process, stimulus and result files included
    build_cached: bool
    runtime_reused: bool  #: the build linked a precompiled Verilator runtime archive
    log_path: Path | None = None  #: sim.log in work_dir (the harness's stderr)
    waves_path: Path | None = None  #: the FST file when waves were asked for

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per wall-clock second of the run."""
        return self.total_cycles / self.run_seconds if self.run_seconds > 0 else float("nan")


# --- the backend of hetero.sim.run ---------------------------------------------------------


@dataclass
class Verilator:
    """The RTL (:class:`hetero.backends.rtl.top.Top`) in Verilator's native harness.

    ``top``/``verilog``: the design where the caller has generated it (else built here, with
    stall probes when ``probes``); ``work_dir``: the run's folder (build log, ``sim.log``;
    default a fresh folder under the cache's ``runs/``, removed after a successful run).
    ``backpressure``, ``seed``, ``stall_timeout``, ``waves``: as
    :func:`hetero.sim.verilator.simulate_beats` takes them."""

    backpressure: float = 0.0
    seed: int = 0
    waves: bool | str | Path = False
    stall_timeout: int = 100_000
    probes: bool = True
    work_dir: str | Path | None = None
    top: Any = None
    verilog: str | None = None
    name: str = "verilator"

    def simulate(self, graph: Graph, in_beats: np.ndarray) -> BackendRun:
        import tempfile

        from hetero.backends.rtl.top import Top, top_verilog
        from hetero.dataflow import TOP_NAME

        top = self.top if self.top is not None else Top(graph, probes=self.probes)
        verilog = self.verilog if self.verilog is not None else top_verilog(top)
        scratch = None
        if self.work_dir is None:
            runs = cache_root() / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix="sim-", dir=runs))  # logs outlive a failure
        s = simulate_beats(
            verilog, TOP_NAME, in_beats, in_width=top.in_type.width,
            in_signed=top.in_type.signed, out_beats=top.out_layout.beats,
            out_lanes=top.out_layout.lanes, out_width=top.out_type.width,
            out_signed=top.out_type.signed, work_dir=self.work_dir or scratch,
            backpressure=self.backpressure, seed=self.seed, stall_timeout=self.stall_timeout,
            waves=self.waves, probe_names=top.stream_names if top.probes else None,
            ports=rtl_ports(top))
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        return BackendRun(s.outputs, s.simulator, s.latency_cycles, s.interval_cycles,
                          s.max_latency_cycles, s.total_cycles, s)



def simulate_beats(
    verilog: str,
    top: str,
    in_beats: np.ndarray,
    *,
    in_width: int,
    in_signed: bool,
    out_beats: int,
    out_lanes: int,
    out_width: int,
    out_signed: bool,
    work_dir: str | Path,
    backpressure: float = 0.0,
    seed: int = 0,
    stall_timeout: int = 100_000,
    waves: bool | str | Path = False,
    probe_names: list[str] | tuple[str, ...] | None = None,
    ports: Sequence[Port] | None = None,
) -> RtlSimResult:
    """Simulate ``top`` (Verilog source text) on ``in_beats``, one inference per row.

    ``in_beats`` holds raw integers [N, B_in, L_in] that fit ``in_width`` bits (two's
    complement when ``in_signed``); lane ``k`` of a beat is ``tdata[k*W +: W]``. Every input
    beat is offered as soon as the previous one was taken, with ``s_axis_tlast`` high on the
    last beat of each inference. ``m_axis_tready`` is low in a cycle with probability
    ``backpressure`` (< 1; drawn from a generator seeded with ``seed``). Each inference must
    give ``out_beats`` beats of ``out_lanes`` lanes of ``out_width`` bits, ``m_axis_tlast``
    high exactly on its last beat.

    ``waves``: True writes ``work_dir/waves.fst``, a path writes the FST file there (a traced
    build, cached separately). ``probe_names``: names of the bits of the top's optional
    ``probe_valid``/``probe_ready`` ports (bit k = stream k, upstream to downstream); when
    the ports exist they name the stalled stream, whether or not names are given.
    ``ports``: the port list of ``top`` (:func:`hetero.backends.rtl.ports.ports` of a
    generated design); without it, Verilator reads them from the text
    (:func:`hetero.sim.verilator_tool.verilog_ports`).

    Raises:
        ValueError: bad shapes, widths, values out of range or a top without the port contract.
        SimulationError: no beat moved for ``stall_timeout`` cycles while outputs were missing
            (the message names the stalled stream), or the design broke the tlast protocol.
        ToolError: the build failed or the harness crashed (the message names the log).
    """
    beats = _check_beats(in_beats, in_width, in_signed)
    n, b_in, l_in = beats.shape
    if not (1 <= out_width <= 64 and out_beats >= 1 and out_lanes >= 1):
        raise ValueError(f"need out_width 1..64, out_beats >= 1, out_lanes >= 1; got "
                         f"{out_width}, {out_beats}, {out_lanes}")
    if not (0.0 <= backpressure < 1.0 and stall_timeout >= 1):
        raise ValueError(f"need 0 <= backpressure < 1 and stall_timeout >= 1; got "
                         f"{backpressure}, {stall_timeout}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top) or top == _BENCH:
        raise ValueError(f"top must be a Verilog module name, got {top!r}")
    ports = port_widths(verilog_ports(verilog, top) if ports is None else ports)
    _check_ports(ports, top, l_in * in_width, out_lanes * out_width)
    n_probes = ports.get("probe_valid", 0)
    if n_probes and ports.get("probe_ready") != n_probes:
        raise ValueError(f"'{top}': probe_valid and probe_ready must have the same width")
    if probe_names is not None and len(probe_names) != n_probes:
        raise ValueError(f"'{top}' has {n_probes} probe bits, but {len(probe_names)} probe "
                         "names were given")
    names = list(probe_names) if probe_names is not None else [f"stream {k}"
                                                               for k in range(n_probes)]

    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    wave_file = None
    if waves:
        wave_file = (work_dir / "waves.fst" if waves is True else Path(waves).resolve())
        wave_file.parent.mkdir(parents=True, exist_ok=True)
        wave_file.unlink(missing_ok=True)
    exe, cached, build_s, reused = build(verilog, top, in_bits=l_in * in_width,
                                         out_bits=out_lanes * out_width, probe_bits=n_probes,
                                         trace=bool(waves), log=work_dir / "build.log")

    t0 = time.perf_counter()
    words_in, words_out = _words(l_in * in_width), _words(out_lanes * out_width)
    probe_words = _words(max(n_probes, 1))
    stim, result, log = work_dir / "stimulus.bin", work_dir / "result.bin", work_dir / "sim.log"
    pack_words(beats, in_width, words_in).tofile(stim)
    result.unlink(missing_ok=True)
    threshold = min(int(round(backpressure * 2**32)), 2**32 - 1)
    cmd = [str(exe), str(stim), str(result)] + [str(v) for v in (
        n, b_in, out_beats, words_in, words_out, probe_words, threshold, seed & (2**64 - 1),
        stall_timeout, RESET_CYCLES)] + ([str(wave_file)] if wave_file else [])
    with open(log, "w") as out:
        rc = subprocess.run(cmd, cwd=work_dir, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, check=False,
                            preexec_fn=die_with_parent).returncode
    if rc != 0 or not result.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise ToolError(f"simulation of '{top}' failed (exit {rc}): {tail[0][:200]}; see {log}")
    raw = np.fromfile(result, dtype="<i8", count=_HEADER + 2 * n)
    header, first_in, last_out = raw[:_HEADER], raw[_HEADER:_HEADER + n], raw[_HEADER + n:]
    if header[0] != _MAGIC:
        raise ToolError(f"simulation of '{top}' wrote a malformed result; see {log}")
    offset = 8 * (_HEADER + 2 * n)
    out_words = np.fromfile(result, dtype="<u4", count=n * out_beats * words_out, offset=offset)
    probes = np.fromfile(result, dtype="<u4", count=2 * probe_words,
                         offset=offset + 4 * out_words.size) if n_probes else None
    run_s = time.perf_counter() - t0

    status = int(header[1])
    if status != _STATUS_OK:
        raise SimulationError(_failure_message(top, status, header, n, b_in, out_beats,
                                               stall_timeout, probes, names, log))
    outputs = unpack_words(out_words.reshape(n, out_beats, words_out), out_lanes, out_width,
                           out_signed)
    lat = last_out - first_in
    half = first_in[n // 2:] if n >= 4 else first_in
    interval = float(np.diff(half).mean()) if len(half) >= 2 else float("nan")
    return RtlSimResult(
        outputs=outputs, in_cycles=first_in.copy(), out_cycles=last_out.copy(),
        latency_cycles=int(lat[0]), max_latency_cycles=int(lat.max()), interval_cycles=interval,
        total_cycles=int(header[2]), simulator=f"{simulator_version().split(' +')[0]} "
                                               "(native harness)",
        build_seconds=build_s, run_seconds=run_s, build_cached=cached, runtime_reused=reused,
        log_path=log, waves_path=wave_file if wave_file and wave_file.exists() else None)


# --- stimulus and result words ----------------------------------------------------------------


def _words(bits: int) -> int:
    """32-bit words of a DPI bit vector of ``bits`` bits (svBitVecVal array)."""
    return max(1, math.ceil(bits / 32))


def pack_words(beats: np.ndarray, width: int, words: int) -> np.ndarray:
    """Raw lanes [..., L] of ``width`` bits as little-endian payload words [..., words] (uint32),
    lane k at bits ``[k*width +: width]``."""
    lead, lanes = beats.shape[:-1], beats.shape[-1]
    v = beats.astype(np.int64).view(np.uint64) & np.uint64((1 << width) - 1)
    bits = ((v[..., None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(lead + (lanes * width,))
    pad = words * 32 - lanes * width
    if pad:
        bits = np.concatenate([bits, np.zeros(lead + (pad,), np.uint8)], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u4").reshape(lead + (words,))


def unpack_words(words: np.ndarray, lanes: int, width: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_words`: payload words [..., W] to raw int64 lanes [..., lanes]."""
    lead = words.shape[:-1]
    as_bytes = np.ascontiguousarray(words.astype("<u4")).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :lanes * width]
    bits = bits.reshape(lead + (lanes, width)).astype(np.uint64)
    v = (bits << np.arange(width, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    if signed and width < 64:
        shift = np.uint64(64 - width)
        return (v << shift).view(np.int64) >> np.int64(64 - width)
    return v.view(np.int64)


def _check_beats(in_beats: np.ndarray, width: int, signed: bool) -> np.ndarray:
    beats = np.asarray(in_beats)
    if beats.ndim != 3 or 0 in beats.shape:
        raise ValueError(f"in_beats must be a non-empty [N, beats, lanes] array, got shape "
                         f"{beats.shape}")
    if not np.issubdtype(beats.dtype, np.integer):
        raise ValueError(f"in_beats must hold raw integers, got dtype {beats.dtype}")
    if not 1 <= width <= 64:
        raise ValueError(f"in_width must be 1..64, got {width}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if int(beats.min()) < lo or int(beats.max()) > hi:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"in_beats out of range for {width}-bit {kind}: "
                         f"min {beats.min()}, max {beats.max()}")
    return beats.astype(np.int64)


# --- ports --------------------------------------------------------------------------------------

def port_widths(ports: Sequence[Port]) -> dict[str, int]:
    """Port name -> width in bits."""
    return {p.name: p.width for p in ports}


def _check_ports(ports: dict[str, int], top: str, in_bits: int, out_bits: int) -> None:
    missing = [p for p in _PORTS if p not in ports]
    if missing:
        raise ValueError(f"'{top}' lacks the AXI4-Stream port contract: no port "
                         f"{', '.join(missing)}")
    for name, want in (("s_axis_tdata", in_bits), ("m_axis_tdata", out_bits)):
        if ports[name] != want:
            raise ValueError(f"'{top}': {name} is {ports[name]} bits wide, the beats need {want}")


# --- failures -----------------------------------------------------------------------------------


def _failure_message(top: str, status: int, header: np.ndarray, n: int, b_in: int, b_out: int,
                     timeout: int, probes: np.ndarray | None, names: list[str],
                     log: Path) -> str:
    in_beats, out_beats, cycle = int(header[3]), int(header[4]), int(header[5])
    done = out_beats // b_out
    if status == _STATUS_TLAST:
        return (f"m_axis: tlast wrong on output beat {out_beats % b_out} of inference {done} "
                f"(cycle {cycle}; each inference has {b_out} beats, tlast on the last) "
                f"in design '{top}'")
    if status == _STATUS_EARLY:
        return (f"m_axis: output beat at cycle {cycle} for inference {done}, whose input has "
                f"not started, in design '{top}'")
    s_valid, s_ready, m_valid = (bool(header[k]) for k in (6, 7, 8))
    where = (f"design '{top}' stalled: no beat moved for {timeout} cycles (cycle {cycle}), "
             f"{in_beats} input beats and {done} of {n} outputs done")
    return f"{where}; {_stall_cause(s_valid, s_ready, m_valid, probes, names)}"


def _stall_cause(s_valid: bool, s_ready: bool, m_valid: bool, probes: np.ndarray | None,
                 names: list[str]) -> str:
    """Which stream is stuck: the most downstream internal stream whose data waits for a
    consumer that is never ready, else what the top-level ports show."""
    ports = (f"s_axis_tvalid={int(s_valid)} s_axis_tready={int(s_ready)} "
             f"m_axis_tvalid={int(m_valid)}")
    if probes is not None and names:
        pw = len(probes) // 2
        bits = np.unpackbits(probes.astype("<u4").view(np.uint8), bitorder="little")
        valid, ready = bits[:pw * 32][:len(names)], bits[pw * 32:][:len(names)]
        waiting = np.flatnonzero(valid & ~ready & 1)
        if len(waiting):
            return f"stalled at {names[waiting[-1]]}: data waits, consumer never ready ({ports})"
        if not valid.any():
            lead = ("s_axis: the design takes no input" if s_valid and not s_ready
                    else "m_axis: no output offered")
            return f"{lead}; nothing in flight (no internal stream valid; {ports})"
        return f"internal streams move but nothing reaches m_axis ({ports})"
    if s_valid and not s_ready:
        return f"s_axis: the design takes no input and offers no output ({ports})"
    return f"m_axis: no output offered ({ports})"


# --- build ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cxx_version() -> str:
    try:
        out = subprocess.run([_cxx(), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0] if out.stdout else ""
    except OSError:
        return ""


@lru_cache(maxsize=1)
def _has_lz4_header() -> bool:
    """Whether the C++ compiler finds <lz4.h> (liblz4-dev); otherwise the bundled stand-in."""
    try:
        proc = subprocess.run([_cxx(), "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                              capture_output=True, text=True, check=False)
        return proc.returncode == 0
    except OSError:
        return False


def _data(name: str) -> str:
    return resources.files("hetero").joinpath("data", name).read_text()


def prepare_runtime(trace: bool = False) -> tuple[Path, bool]:
    """Compile the Verilator runtime archive for harness builds (with FST support when
    ``trace``) unless the cache has it; return (archive, it was there already). Safe to call
    from several threads or processes at once; :func:`simulate_beats` calls it itself, callers
    may start it early to overlap it with other work."""
    shim = trace and not _has_lz4_header()
    runtime = {"opt": OPT_RUNTIME, "trace": trace, "shim": shim, "sources": RUNTIME_SOURCES,
               "sim": simulator_version(), "cxx": _cxx_version(), "prefix": sys.prefix}
    key = hashlib.sha256(json.dumps(runtime).encode()).hexdigest()[:16]
    root = cache_dir("rtlsim")
    archive = root / f"runtime-{key}.a"
    if archive.exists():
        return archive, True
    with locked(root / f"runtime-{key}.lock"):
        if archive.exists():
            return archive, True
        work = root / f"runtime-{key}.build"
        shutil.rmtree(work, ignore_errors=True)
        for stale in root.glob(f"runtime-{key}.*.tmp"):  # a killed build's (we hold the lock)
            stale.unlink(missing_ok=True)
        work.mkdir()
        if shim:
            (work / "lz4.h").write_text(_data("rtlsim_lz4/lz4.h"))
        sources = RUNTIME_SOURCES + (("verilated_fst_c",) if trace else ())
        (work / "runtime.cpp").write_text("".join(f'#include "{n}.cpp"\n' for n in sources))
        log = root / f"runtime-{key}.log"
        tmp = archive.with_suffix(f".{os.getpid()}.tmp")
        with open(log, "w") as out:  # one translation unit: verilated.h parsed once
            ok = _run([_cxx(), OPT_RUNTIME, *_cxx_flags(work, trace), "-c", "runtime.cpp",
                       "-o", "runtime.o"], out, cwd=work)
            ok = ok and _run(["ar", "rcs", str(tmp), str(work / "runtime.o")], out)
        if not ok:
            raise ToolError(f"compiling the Verilator runtime failed{first_error(log)}; "
                            f"see {log}")
        tmp.replace(archive)
        shutil.rmtree(work, ignore_errors=True)
    return archive, False


def build(verilog: str, top: str, *, in_bits: int, out_bits: int, probe_bits: int = 0,
          trace: bool = False, log: Path | None = None) -> tuple[Path, bool, float, bool]:
    """Build (or find in the cache) the harness for ``top`` (tdata of ``in_bits`` and
    ``out_bits``, ``probe_bits`` wide probe ports or none); return (executable, came from the
    cache, build seconds, linked a runtime archive built earlier). ``log`` receives the tool
    output (also kept in the build folder)."""
    main_cpp, bench = _data("rtlsim_main.cpp"), _data("rtlsim_tb.v")
    shim = trace and not _has_lz4_header()
    config = "#define RTLSIM_TRACE 1\n" if trace else "// no trace\n"
    params = [f"-GIN_W={in_bits}", f"-GOUT_W={out_bits}", f"-GPROBE_W={max(probe_bits, 1)}",
              f"+define+RTLSIM_DUT={top}", *(["+define+RTLSIM_PROBES"] if probe_bits else [])]
    key_src = json.dumps({"verilog": verilog, "top": top, "main": main_cpp, "config": config,
                          "bench": bench, "params": params, "args": BUILD_ARGS,
                          "opt": [OPT_MODEL, OPT_SLOW, OPT_RUNTIME], "trace": trace,
                          "shim": shim, "sources": RUNTIME_SOURCES, "sim": simulator_version(),
                          "cxx": _cxx_version(), "prefix": sys.prefix})
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    root = cache_dir("rtlsim")
    build_dir = root / key
    exe, done = build_dir / "rtlsim", build_dir / "BUILD_OK"
    log = Path(log) if log is not None else build_dir.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with locked(root / f"{key}.lock"):
        if done.exists() and valid_executable(exe):  # else (killed writer, damaged): rebuild
            return exe, True, 0.0, False
        # built beside the entry and renamed into place: a killed build leaves no half entry
        # (its scratch folder goes at the next build of the key, which holds the lock)
        for stale in root.glob(f".{key}.build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(build_dir, ignore_errors=True)
        work = root / f".{key}.build-{os.getpid()}"
        src = work / "src"
        src.mkdir(parents=True)
        for name, text in ((f"{top}.v", verilog), ("rtlsim_tb.v", bench),
                           ("rtlsim_main.cpp", main_cpp), ("rtlsim_config.h", config)):
            (src / name).write_text(text)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as pool:  # the runtime alongside the design
            runtime = pool.submit(prepare_runtime, trace)
            with open(log, "w") as out:
                ok, names = _compile(work, top, params, trace, out)
                archive, reused = runtime.result()
                objs = [work / "obj" / f"{n}.o" for n in names]
                ok = ok and _run([_cxx(), *map(str, objs), str(archive), "-o", str(work / exe.name),
                                  "-pthread", *(["-lz"] + ([] if shim else ["-llz4"])
                                                if trace else [])], out)
        seconds = time.perf_counter() - t0
        if not ok or not (work / exe.name).exists():  # left for inspection; redone next time
            raise ToolError(f"Verilator build of '{top}' failed{first_error(log)}; see {log}")
        shutil.copyfile(log, work / "build.log")
        (work / done.name).write_text(key_src)
        os.rename(work, build_dir)
    return exe, False, seconds, reused


def _include() -> Path:
    return verilator_bin().parent.parent / "include"


def _cxx_flags(obj: Path, trace: bool) -> list[str]:
    """Flags of every harness compile (runtime, model, harness): what verilated.mk passes."""
    t = int(trace)
    return ["-std=gnu++17", "-w", f"-I{obj}", f"-I{_include()}", f"-I{_include() / 'vltstd'}",
            "-DVERILATOR=1", "-DVM_SC=0", "-DVM_COVERAGE=0", "-DVM_TIMING=0", f"-DVM_TRACE={t}",
            f"-DVM_TRACE_FST={t}", "-DVM_TRACE_VCD=0", "-DVM_TRACE_SAIF=0"]


def _compile(build_dir: Path, top: str, params: list[str], trace: bool,
             out) -> tuple[bool, list[str]]:
    """Verilate, then compile in parallel the model's fast code with the harness at OPT_MODEL
    and its slow (construction, initial settle) code at OPT_SLOW. Return
    (success, the object files to link besides the runtime archive).

    Few translation units (:func:`_units`), not verilated.mk's one per generated file: every
    unit costs ~1.5 s of g++ time just parsing verilated.h, and the precompiled headers meant
    to save that cost 3-4 s each to build."""
    obj, src = build_dir / "obj", build_dir / "src"
    if not _run([str(verilator_bin()), "--cc", *BUILD_ARGS, "--top-module", _BENCH,
                 "--Mdir", str(obj), *(["--trace-fst"] if trace else []), *params,
                 str(src / "rtlsim_tb.v"), str(src / f"{top}.v")], out, env=tool_env()):
        return False, []
    if trace and not _has_lz4_header():  # FST needs <lz4.h>: the bundled stand-in
        (obj / "lz4.h").write_text(_data("rtlsim_lz4/lz4.h"))
    lists = _make_lists(obj / f"V{_BENCH}_classes.mk")
    flags = [*_cxx_flags(obj, trace), f"-I{src}"]
    fast = _units(obj, [*lists["VM_CLASSES_FAST"], *lists["VM_SUPPORT_FAST"]])
    slow = _units(obj, [*lists["VM_CLASSES_SLOW"], *lists["VM_SUPPORT_SLOW"]])
    fast[0].append(str(src / "rtlsim_main.cpp"))
    jobs, objects = [], []
    for kind, units, opt in (("fast", fast, list(OPT_MODEL)), ("slow", slow, [OPT_SLOW])):
        for k, unit in enumerate(units):
            name = f"rtlsim_{kind}{k}"
            (obj / f"{name}.cpp").write_text("".join(f'#include "{f}"\n' for f in unit))
            jobs.append([_cxx(), *opt, *flags, "-c", f"{name}.cpp", "-o", f"{name}.o"])
            objects.append(name)
    have = set(RUNTIME_SOURCES) | ({"verilated_fst_c"} if trace else set())
    extra = [r for r in [*lists["VM_GLOBAL_FAST"], *lists["VM_GLOBAL_SLOW"]] if r not in have]
    jobs += [[_cxx(), OPT_RUNTIME, *flags, "-c", str(_include() / f"{r}.cpp"), "-o", f"{r}.o"]
             for r in extra]
    objects += extra
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        codes = list(pool.map(lambda cmd: subprocess.run(
            cmd, cwd=obj, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            check=False, preexec_fn=die_with_parent).returncode, jobs))
    return all(c == 0 for c in codes), objects


def _units(obj: Path, classes: list[str], unit_bytes: int = 2_000_000) -> list[list[str]]:
    """Verilator's generated files grouped into translation units: one for a small design
    (verilated.h is parsed once per unit, ~1.5 s of g++ each), up to one per CPU for a large
    one (balanced by size), so that every core compiles."""
    files = sorted((obj / f"{c}.cpp" for c in classes), key=lambda f: -f.stat().st_size)
    total = sum(f.stat().st_size for f in files)
    n = max(1, min(len(files), os.cpu_count() or 1, -(-total // unit_bytes)))
    units: list[list[str]] = [[] for _ in range(n)]
    sizes = [0] * n
    for f in files:
        k = sizes.index(min(sizes))
        units[k].append(f.name)
        sizes[k] += f.stat().st_size
    return units


def _make_lists(path: Path) -> dict[str, list[str] | str]:
    """The variables of Verilator's ``*_classes.mk``: ``X = v`` as str, ``X += a b`` as list."""
    result: dict[str, list[str] | str] = {k: [] for k in (
        "VM_CLASSES_FAST", "VM_CLASSES_SLOW", "VM_SUPPORT_FAST", "VM_SUPPORT_SLOW",
        "VM_GLOBAL_FAST", "VM_GLOBAL_SLOW")}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"\s*(\w+)\s*(\+?=)\s*(.*)", line)
        if m:
            name, op, value = m.groups()
            result[name] = value.split() if op == "+=" else value.strip()
    return result


def _cxx() -> str:
    return os.environ.get("CXX") or "c++"


def require_cxx() -> None:
    """Raise UserError (exit 2, one line) when the C++ compiler Verilator builds need (``$CXX``,
    else ``c++``) is not on PATH: the commands that simulate call it before any work."""
    if shutil.which(_cxx()) is None:
        raise UserError(f"Verilator simulation needs a C++ compiler, and {_cxx()!r} is not on "
                        "PATH; install g++ (apt-get install g++) or set CXX")


def _run(cmd: list[str], out, env: dict[str, str] | None = None, cwd: Path | None = None) -> bool:
    out.write("$ " + " ".join(cmd) + "\n")
    out.flush()
    return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env, cwd=cwd, check=False,
                          preexec_fn=die_with_parent).returncode == 0
