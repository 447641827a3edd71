"""Drive one stream component in Amaranth's own simulator: feed inferences, collect outputs
with optional random backpressure, record cycles. For unit tests of single ops (see the
stream convention in :mod:`hetero.hw.stream`).

Ports: ``i`` (or ``i0``, ``i1``, ... when ``inputs`` is a list) and ``o``. Every input beat is
offered as soon as the previous one on that port was accepted (no gaps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator


@dataclass
class StreamRun:
    outputs: np.ndarray  #: [N, out_beats, out_lanes]
    first_in: np.ndarray  #: [N] cycle the first input beat (of port 0) was accepted
    last_in: np.ndarray  #: [N] cycle the last input beat (of port 0) was accepted
    first_out: np.ndarray  #: [N] cycle the first output beat was accepted
    last_out: np.ndarray  #: [N] cycle the last output beat was accepted

    @property
    def latency(self) -> int:
        """Cycle model's latency: first input beat to last output beat, first inference."""
        return int(self.last_out[0] - self.first_in[0])

    @property
    def intervals(self) -> set[int]:
        return set(int(d) for d in np.diff(self.first_in))


def run_beats(dut, inputs, out_beats: int, out_lanes: int, backpressure: float = 0.0,
              seed: int = 0, max_cycles: int = 200_000) -> StreamRun:
    """``inputs``: an int array [N, beats, lanes] for port ``i``, or a list of them for ports
    ``i0``, ``i1``, ..."""
    multi = isinstance(inputs, (list, tuple))
    ins = [np.asarray(a) for a in (inputs if multi else [inputs])]
    ports = [getattr(dut, f"i{k}") for k in range(len(ins))] if multi else [dut.i]
    n = len(ins[0])
    rng = np.random.default_rng(seed)
    outputs: list[list[int]] = []
    first_in, last_in, first_out, last_out = [], [], [], []

    async def bench(ctx):
        cycle = 0
        sent = [0] * len(ins)  # beats sent per port (flat over inferences)
        totals = [len(a) * a.shape[1] for a in ins]
        while len(outputs) < n * out_beats:
            for p, a in enumerate(ins):
                if sent[p] < totals[p]:
                    beat = a[sent[p] // a.shape[1], sent[p] % a.shape[1]]
                    for k, v in enumerate(beat):
                        ctx.set(ports[p].payload[k], int(v))
                    ctx.set(ports[p].valid, 1)
                else:
                    ctx.set(ports[p].valid, 0)
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            await ctx.delay(1e-9)  # sample the handshakes just before the edge
            for p, a in enumerate(ins):
                if ctx.get(ports[p].valid) and ctx.get(ports[p].ready):
                    if p == 0:
                        b = sent[0] % a.shape[1]
                        if b == 0:
                            first_in.append(cycle)
                        if b == a.shape[1] - 1:
                            last_in.append(cycle)
                    sent[p] += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                b = len(outputs) % out_beats
                outputs.append([ctx.get(dut.o.payload[k]) for k in range(out_lanes)])
                if b == 0:
                    first_out.append(cycle)
                if b == out_beats - 1:
                    last_out.append(cycle)
            await ctx.tick()
            cycle += 1
            assert cycle < max_cycles, f"stalled: {len(outputs)} of {n * out_beats} output beats"

    top = Module()  # gives purely combinational components a clock domain to tick
    top.submodules.dut = dut
    toggle = Signal()
    top.d.sync += toggle.eq(~toggle)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return StreamRun(np.array(outputs, dtype=np.int64).reshape(n, out_beats, out_lanes),
                     np.array(first_in), np.array(last_in), np.array(first_out), np.array(last_out))


def run_stream(dut, vectors: np.ndarray, n_out: int, backpressure: float = 0.0, seed: int = 0,
               max_cycles: int = 100_000):
    """One beat per inference: ``vectors`` [N, n_in] in, (outputs [N, n_out], input cycles,
    output cycles) out."""
    r = run_beats(dut, np.asarray(vectors)[:, None, :], 1, n_out, backpressure, seed, max_cycles)
    return r.outputs[:, 0, :], r.first_in, r.last_out
