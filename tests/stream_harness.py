"""Drive one stream component (ports ``i`` and ``o`` carrying vectors) in Amaranth's own
simulator: feed vectors, collect outputs with optional random backpressure, record the cycle of
every accepted beat. For unit tests of single ops before Verilator."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator


def run_stream(dut, vectors: np.ndarray, n_out: int, backpressure: float = 0.0, seed: int = 0,
               max_cycles: int = 100_000):
    rng = np.random.default_rng(seed)
    outputs, in_cycles, out_cycles = [], [], []

    async def bench(ctx):
        cycle, sent = 0, 0
        while len(outputs) < len(vectors):
            if sent < len(vectors):
                for k, v in enumerate(vectors[sent]):
                    ctx.set(dut.i.payload[k], int(v))
                ctx.set(dut.i.valid, 1)
            else:
                ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            # sample handshakes just before the clock edge
            await ctx.delay(1e-9)
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                in_cycles.append(cycle)
                sent += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outputs.append([ctx.get(dut.o.payload[k]) for k in range(n_out)])
                out_cycles.append(cycle)
            await ctx.tick()
            cycle += 1
            assert cycle < max_cycles, "stalled"

    top = Module()  # gives purely combinational components a clock domain to tick
    top.submodules.dut = dut
    toggle = Signal()
    top.d.sync += toggle.eq(~toggle)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outputs, dtype=np.int64), np.array(in_cycles), np.array(out_cycles)
