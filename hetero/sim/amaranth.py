"""Amaranth's own simulator (``amaranth.sim``) driving a design's AXI4-Stream ports, with the
same stimulus, backpressure draw and cycle numbering as the native Verilator harness
(``hetero/data/rtlsim_main.cpp``): no tool to install, no build, for small designs and tests.

Contract of :func:`simulate_component`: every input beat is offered as soon as the previous one
was taken (``s_axis_tlast`` high on each inference's last beat); ``m_axis_tready`` is low in a
cycle when a seeded xorshift64* draw (the harness's generator, one draw per cycle) is below
``backpressure * 2**32``. Cycle 0 is the first simulated rising edge; a beat's cycle is the
edge at which ``tvalid & tready`` is sampled high. So latency, interval and, for equal
``backpressure`` and ``seed``, every cycle number equal Verilator's for the same design.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hetero.errors import SimulationError
from hetero.ir.graph import Graph
from hetero.sim.run import BackendRun

__all__ = ["AmaranthSim", "AmaranthSimResult", "simulate_component", "XorShift"]

_MASK64 = (1 << 64) - 1


class XorShift:
    """The Verilator harness's xorshift64* generator (same seeding, same 32-bit draws)."""

    def __init__(self, seed: int):
        s = ((seed & _MASK64) * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & _MASK64
        self.s = s or 1

    def next(self) -> int:
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & _MASK64
        s ^= s >> 27
        self.s = s
        return ((s * 0x2545F4914F6CDD1D) & _MASK64) >> 32


@dataclass(frozen=True)
class AmaranthSimResult:
    """What :func:`simulate_component` observed (fields as in
    :class:`hetero.sim.verilator.RtlSimResult`)."""

    outputs: np.ndarray  #: int64 [N, B_out, L_out] raw values, sign-extended when out_signed
    in_cycles: np.ndarray  #: int64 [N], cycle of each inference's first input beat
    out_cycles: np.ndarray  #: int64 [N], cycle of each inference's last output beat
    latency_cycles: int
    max_latency_cycles: int
    interval_cycles: float
    total_cycles: int
    simulator: str
    run_seconds: float


def _pack(lanes: np.ndarray, width: int) -> int:
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (k * width) for k, v in enumerate(lanes))


def _unpack(word: int, lanes: int, width: int, signed: bool) -> list[int]:
    mask, out = (1 << width) - 1, []
    for k in range(lanes):
        v = (word >> (k * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def _waiting(ctx, top) -> str:
    """Where data waits (valid high, ready low), from the optional probe ports."""
    if not hasattr(top, "probe_valid"):
        return ""
    valid, ready = ctx.get(top.probe_valid), ctx.get(top.probe_ready)
    names = getattr(top, "stream_names", None) or [f"stream {k}" for k in range(len(top.probe_valid))]
    waiting = [name for k, name in enumerate(names) if valid >> k & 1 and not ready >> k & 1]
    return f"; data waits on {', '.join(waiting)}" if waiting else ""


def simulate_component(top, in_beats: np.ndarray, *, in_width: int, out_beats: int,
                       out_lanes: int, out_width: int, out_signed: bool,
                       backpressure: float = 0.0, seed: int = 0,
                       stall_timeout: int = 100_000) -> AmaranthSimResult:
    """Simulate the Amaranth component ``top`` (``s_axis_*``/``m_axis_*`` ports, as
    :class:`hetero.backends.rtl.top.Top`) on raw input beats [N, B_in, L_in]; see the module
    docstring. Where ``top`` has ``probe_valid``/``probe_ready`` ports, a stall names the
    streams where data waits (``stream_names``).

    Raises:
        ValueError: bad shapes or backpressure.
        SimulationError: no beat moved for ``stall_timeout`` cycles, an output before its
            inference's input, or ``m_axis_tlast`` not exactly on each inference's last beat.
    """
    from amaranth.sim import Simulator

    import amaranth

    beats = np.asarray(in_beats)
    if beats.ndim != 3 or 0 in beats.shape:
        raise ValueError(f"in_beats must be a non-empty [N, beats, lanes] array, got {beats.shape}")
    if not (0.0 <= backpressure < 1.0 and stall_timeout >= 1):
        raise ValueError(f"need 0 <= backpressure < 1 and stall_timeout >= 1; got "
                         f"{backpressure}, {stall_timeout}")
    n, b_in, _ = beats.shape
    words = [_pack(beats[i, b], in_width) for i in range(n) for b in range(b_in)]
    threshold = min(int(round(backpressure * 2**32)), 2**32 - 1)
    rng = XorShift(seed)
    first_in = np.full(n, -1, dtype=np.int64)
    last_out = np.full(n, -1, dtype=np.int64)
    out = np.zeros((n, out_beats, out_lanes), dtype=np.int64)
    state = {"cycle": -1, "error": None}

    async def bench(ctx):
        in_beat = out_beat = last_move = 0
        cycle = -1
        while True:
            s_valid = in_beat < n * b_in
            ctx.set(top.s_axis_tvalid, s_valid)
            ctx.set(top.s_axis_tdata, words[in_beat] if s_valid else 0)
            ctx.set(top.s_axis_tlast, s_valid and in_beat % b_in == b_in - 1)
            m_ready = threshold == 0 or rng.next() >= threshold
            ctx.set(top.m_axis_tready, m_ready)
            _, _, s_ready, m_valid, m_last, m_data = await ctx.tick().sample(
                top.s_axis_tready, top.m_axis_tvalid, top.m_axis_tlast, top.m_axis_tdata)
            cycle += 1
            state["cycle"] = cycle
            s_fire = s_valid and s_ready
            if s_fire:
                if in_beat % b_in == 0:
                    first_in[in_beat // b_in] = cycle
                in_beat += 1
            if m_ready and m_valid:
                inf = out_beat // out_beats
                want_last = out_beat % out_beats == out_beats - 1
                if inf >= (in_beat + b_in - 1) // b_in:
                    state["error"] = (f"an output beat at cycle {cycle} before inference {inf}'s "
                                      "input was sent")
                    return
                if bool(m_last) != want_last:
                    state["error"] = (f"m_axis_tlast {'high' if m_last else 'low'} on output beat "
                                      f"{out_beat % out_beats} of {out_beats} of inference {inf} "
                                      f"at cycle {cycle}")
                    return
                out[inf, out_beat % out_beats] = _unpack(m_data, out_lanes, out_width, out_signed)
                if want_last:
                    last_out[inf] = cycle
                out_beat += 1
                if out_beat == n * out_beats:
                    return
            if s_fire or m_valid:
                last_move = cycle
            if cycle - last_move >= stall_timeout:
                state["error"] = (f"stalled: no beat moved for {stall_timeout} cycles at cycle "
                                  f"{cycle} ({in_beat} of {n * b_in} input beats taken, "
                                  f"{out_beat} of {n * out_beats} output beats given)"
                                  + _waiting(ctx, top))
                return

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    if state["error"]:
        raise SimulationError(f"Amaranth simulation: {state['error']}")
    lat = last_out - first_in
    half = first_in[n // 2:] if n >= 4 else first_in
    interval = float(np.diff(half).mean()) if len(half) >= 2 else float("nan")
    return AmaranthSimResult(
        outputs=out, in_cycles=first_in, out_cycles=last_out, latency_cycles=int(lat[0]),
        max_latency_cycles=int(lat.max()), interval_cycles=interval,
        total_cycles=state["cycle"] + 1, simulator=f"amaranth.sim {amaranth.__version__}",
        run_seconds=seconds)


@dataclass
class AmaranthSim:
    """The RTL (:class:`hetero.backends.rtl.top.Top`) in Amaranth's simulator; same stimulus,
    backpressure draw and cycle numbers as :class:`Verilator` (:mod:`hetero.sim.amaranth`).
    Python in the cycle loop: for small designs and tests."""

    backpressure: float = 0.0
    seed: int = 0
    stall_timeout: int = 100_000
    name: str = "amaranth"

    def simulate(self, graph: Graph, in_beats: np.ndarray) -> BackendRun:
        from hetero.backends.rtl.top import Top

        top = Top(graph, probes=True)
        s = simulate_component(
            top, in_beats, in_width=top.in_type.width, out_beats=top.out_layout.beats,
            out_lanes=top.out_layout.lanes, out_width=top.out_type.width,
            out_signed=top.out_type.signed, backpressure=self.backpressure, seed=self.seed,
            stall_timeout=self.stall_timeout)
        return BackendRun(s.outputs, s.simulator, s.latency_cycles, s.interval_cycles,
                          s.max_latency_cycles, s.total_cycles, s)
