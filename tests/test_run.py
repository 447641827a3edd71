"""hetero.sim.run: one batch through each backend (Amaranth's simulator, Verilator, g++ C
simulation) on a tiny MLP, bit-exact against the reference; the Amaranth backend takes the same
cycles as Verilator, backpressure included; the one mismatches.npz writer."""

import numpy as np
import pytest

from hetero.flows.common import compile_model, random_inputs
from hetero.reference import execute
from hetero.sim.amaranth import AmaranthSim, XorShift
from hetero.sim.run import Backend, Run, run, write_mismatches
from tiny_models import tiny_mlp


@pytest.fixture(scope="module", params=[None, 3], ids=["parallel", "reuse3"])
def graph(request, tmp_path_factory):
    """The tiny MLP fully parallel, and folded (ReuseFactor 3: several cycles per inference)."""
    folder = tmp_path_factory.mktemp("run")
    config = None
    if request.param:
        config = folder / "c.yml"
        config.write_text(f"Model:\n  ReuseFactor: {request.param}\n")
    return compile_model(tiny_mlp(folder / "tiny.onnx"), config)


def test_amaranth_backend_is_bit_exact(graph):
    x = random_inputs(graph, 12, seed=1) * 2
    r = run(graph, x, AmaranthSim())
    assert isinstance(AmaranthSim(), Backend) and r.backend == "amaranth"
    assert r.bit_exact and r.mismatches == 0 and r.inferences == 12
    np.testing.assert_array_equal(r.raw, r.expected)
    ref = execute(graph, x)[graph.outputs[0]]
    np.testing.assert_array_equal(r.expected, ref)
    np.testing.assert_allclose(r.outputs, graph.tensors[graph.outputs[0]].onnx_value(ref))
    assert r.latency_cycles >= 1 and r.interval_cycles >= 1 and r.total_cycles > r.latency_cycles
    j = r.to_json()
    assert j["bit_exact"] is True and j["inferences"] == 12 and j["latency_cycles"] == r.latency_cycles


def test_a_wrong_reference_is_counted_not_raised(graph, tmp_path):
    x = random_inputs(graph, 8, seed=2)
    values = execute(graph, x)
    values[graph.outputs[0]] = values[graph.outputs[0]].copy()
    values[graph.outputs[0]][5] += 1
    r = run(graph, x, AmaranthSim(), values=values)
    assert r.mismatches == 1 and not r.bit_exact and list(np.flatnonzero(r.wrong)) == [5]
    path = write_mismatches(tmp_path / "out", r)
    with np.load(path) as m:
        assert list(m["index"]) == [5]
        assert (m["got"] == m["expected"] - 1).all()
        np.testing.assert_array_equal(m["inputs"], x[[5]])
    assert not list((tmp_path / "out").glob(".*"))  # no partial file left


def test_xorshift_matches_the_harness():
    """The first draws of the C++ harness's xorshift64* for seed 0 and 7 (rtlsim_main.cpp)."""
    def reference(seed, k):  # the C++ code, step by step, in 64-bit arithmetic
        m = (1 << 64) - 1
        s = (seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & m or 1
        out = []
        for _ in range(k):
            s ^= s >> 12
            s = (s ^ (s << 25)) & m
            s ^= s >> 27
            out.append(((s * 0x2545F4914F6CDD1D) & m) >> 32)
        return out

    for seed in (0, 7):
        rng = XorShift(seed)
        assert [rng.next() for _ in range(5)] == reference(seed, 5)


@pytest.mark.verilator
@pytest.mark.parametrize("backpressure", [0.0, 0.4])
def test_amaranth_cycles_equal_verilator(graph, backpressure):
    from hetero.sim.verilator import Verilator

    x = random_inputs(graph, 16, seed=4) * 2
    a = run(graph, x, AmaranthSim(backpressure=backpressure, seed=9))
    v = run(graph, x, Verilator(backpressure=backpressure, seed=9))
    assert a.bit_exact and v.bit_exact
    np.testing.assert_array_equal(a.raw, v.raw)
    assert (a.latency_cycles, a.interval_cycles, a.max_latency_cycles, a.total_cycles) == \
        (v.latency_cycles, v.interval_cycles, v.max_latency_cycles, v.total_cycles)
    np.testing.assert_array_equal(a.detail.in_cycles, v.detail.in_cycles)
    np.testing.assert_array_equal(a.detail.out_cycles, v.detail.out_cycles)


@pytest.mark.gxx
def test_csim_backend_is_bit_exact(graph):
    from hetero.sim.csim import Csim, CsimResult

    x = random_inputs(graph, 10, seed=5) * 2
    r = run(graph, x, Csim())
    assert isinstance(r, Run) and r.backend == "csim" and r.bit_exact
    assert r.latency_cycles is None and r.to_json()["interval_cycles"] is None
    c = CsimResult.from_run(r)
    assert c.bit_exact and c.to_json()["inferences"] == 10 and c.compiler == r.simulator


def test_amaranth_stall_names_the_stream_where_data_waits():
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hetero.errors import SimulationError
    from hetero.sim.amaranth import simulate_component

    class Stuck(wiring.Component):  # never ready: the input waits forever
        s_axis_tdata: In(8)
        s_axis_tvalid: In(1)
        s_axis_tready: Out(1)
        s_axis_tlast: In(1)
        m_axis_tdata: Out(8)
        m_axis_tvalid: Out(1)
        m_axis_tready: In(1)
        m_axis_tlast: Out(1)
        probe_valid: Out(1)
        probe_ready: Out(1)
        stream_names = ["input -> layer0.i"]

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.probe_valid.eq(self.s_axis_tvalid)
            seen = Signal()  # a clock domain to simulate
            m.d.sync += seen.eq(self.s_axis_tvalid)
            return m

    with pytest.raises(SimulationError, match="no beat moved for 20 cycles.*data waits on "
                                              "input -> layer0.i"):
        simulate_component(Stuck(), np.zeros((2, 1, 1), dtype=np.int64), in_width=8,
                           out_beats=1, out_lanes=1, out_width=8, out_signed=False,
                           stall_timeout=20)
