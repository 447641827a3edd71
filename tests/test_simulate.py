"""hetero.sim.cocotb on small hand-written designs that obey the AXI-Stream port contract, with
the user's own cocotb tests beside the bench, and run_bench on a model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hetero.errors import SimulationError, ToolError
from hetero.sim.cocotb import simulate

pytestmark = pytest.mark.verilator

PORTS = """
  input clk, input rst,
  input [{iw}:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready, input s_axis_tlast,
  output [{ow}:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready, output m_axis_tlast
"""

# Two register stages that stall together; s_axis_tready depends combinationally on
# m_axis_tready. Out: 4 x signed 9-bit (x + 1), so no overflow.
ADD1 = """
module add1 ({ports});
  reg v1, v2;
  reg [31:0] d1;
  reg [35:0] d2;
  wire adv = m_axis_tready || !v2;
  assign s_axis_tready = adv;
  assign m_axis_tvalid = v2;
  assign m_axis_tdata = d2;
  assign m_axis_tlast = 1'b1;
  function [8:0] inc(input [7:0] x);
    inc = {{x[7], x}} + 9'd1;
  endfunction
  always @(posedge clk) begin
    if (rst) begin
      v1 <= 1'b0; v2 <= 1'b0;
    end else if (adv) begin
      v1 <= s_axis_tvalid; d1 <= s_axis_tdata;
      v2 <= v1;
      d2 <= {{inc(d1[31:24]), inc(d1[23:16]), inc(d1[15:8]), inc(d1[7:0])}};
    end
  end
endmodule
""".format(ports=PORTS.format(iw=31, ow=35))

# Accepts one input every 3 cycles; out: 2 x unsigned 8-bit (x + 128), i.e. offset binary.
SLOW3 = """
module slow3 ({ports});
  reg [1:0] state;
  reg ov;
  reg [15:0] d, od;
  assign s_axis_tready = state == 2'd0 && (!ov || m_axis_tready);
  assign m_axis_tvalid = ov;
  assign m_axis_tdata = od;
  assign m_axis_tlast = 1'b1;
  always @(posedge clk) begin
    if (rst) begin
      state <= 2'd0; ov <= 1'b0;
    end else begin
      if (ov && m_axis_tready) ov <= 1'b0;
      case (state)
        2'd0: if (s_axis_tvalid && s_axis_tready) begin d <= s_axis_tdata; state <= 2'd1; end
        2'd1: state <= 2'd2;
        default: if (!ov || m_axis_tready) begin
            od <= d ^ 16'h8080; ov <= 1'b1; state <= 2'd0;
          end
      endcase
    end
  end
endmodule
""".format(ports=PORTS.format(iw=15, ow=15))

# Takes inputs but never answers.
MUTE = """
module mute ({ports});
  assign s_axis_tready = 1'b1;
  assign m_axis_tvalid = 1'b0;
  assign m_axis_tdata = 8'd0;
  assign m_axis_tlast = 1'b1;
endmodule
""".format(ports=PORTS.format(iw=7, ow=7))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build cache private to this pytest session, shared by its xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    monkeypatch.setenv("HETERO_CACHE_DIR", str(base / "hetero-cache"))


def _signed8(n: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, 4), dtype=np.int64)
    x[0] = [-128, -1, 0, 127]
    return x


def _add1(x: np.ndarray, tmp: Path, **kw: object):  # type: ignore[no-untyped-def]
    return simulate(ADD1, "add1", x, in_width=8, in_signed=True, n_out=4, out_width=9,
                    out_signed=True, work_dir=tmp, **kw)


def test_pipeline_bit_exact_latency_interval(tmp_path: Path) -> None:
    x = _signed8(100)
    r = _add1(x, tmp_path / "a")
    np.testing.assert_array_equal(r.outputs, x + 1)
    assert r.outputs.dtype == np.int64 and r.outputs.min() < 0
    assert r.latency_cycles == 2 and r.max_latency_cycles == 2
    assert r.interval_cycles == 1.0
    assert list(r.in_cycles[:3]) == [0, 1, 2] and list(r.out_cycles[:3]) == [2, 3, 4]
    assert r.total_cycles == 102
    assert r.simulator.startswith("verilator 5.") and "cocotb 2." in r.simulator

    r2 = _add1(x, tmp_path / "b", backpressure=0.5, input_gaps=0.3, seed=7)
    np.testing.assert_array_equal(r2.outputs, x + 1)
    assert r2.build_cached
    assert r2.latency_cycles >= 2 and r2.total_cycles > 150
    assert np.all(np.diff(r2.in_cycles) > 0) and np.all(np.diff(r2.out_cycles) > 0)
    assert np.all(r2.out_cycles - r2.in_cycles >= 2)


def test_interval_three_unsigned_out(tmp_path: Path) -> None:
    x = np.random.default_rng(3).integers(-128, 128, size=(40, 2), dtype=np.int64)
    x[0] = [-128, 127]
    r = simulate(SLOW3, "slow3", x, in_width=8, in_signed=True, n_out=2, out_width=8,
                 out_signed=False, work_dir=tmp_path)
    np.testing.assert_array_equal(r.outputs, x + 128)
    assert r.outputs.max() > 127  # unsigned, not sign-extended
    assert r.interval_cycles == 3.0
    assert r.latency_cycles == 3
    r2 = simulate(SLOW3, "slow3", x, in_width=8, in_signed=True, n_out=2, out_width=8,
                  out_signed=False, work_dir=tmp_path / "bp", backpressure=0.4, seed=2)
    np.testing.assert_array_equal(r2.outputs, x + 128)


def test_stall_names_m_axis(tmp_path: Path) -> None:
    x = np.zeros((5, 1), dtype=np.int64)
    with pytest.raises(SimulationError, match=r"^m_axis: no output for 200 cycles after 0 of 5"):
        simulate(MUTE, "mute", x, in_width=8, in_signed=False, n_out=1, out_width=8,
                 out_signed=False, work_dir=tmp_path, stall_timeout=200)
    assert (tmp_path / "sim.log").exists()


def test_stall_names_s_axis(tmp_path: Path) -> None:
    deaf = MUTE.replace("module mute", "module deaf").replace(
        "s_axis_tready = 1'b1", "s_axis_tready = 1'b0")
    with pytest.raises(SimulationError, match=r"^s_axis: no input accepted for 50 cycles after "
                                              r"0 of 2 inferences; s_axis_tready low since cycle 0"):
        simulate(deaf, "deaf", np.zeros((2, 1), np.int64), in_width=8, in_signed=False, n_out=1,
                 out_width=8, out_signed=False, work_dir=tmp_path, stall_timeout=50)


def test_backpressure_stall_and_port_check(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match=r"^m_axis: .*after 0 of 3 .*held low by backpressure"):
        _add1(_signed8(3), tmp_path / "bp", backpressure=1.0, stall_timeout=30)
    with pytest.raises(SimulationError, match=r"^s_axis_tdata is 32 bits wide, expected 16"):
        simulate(ADD1, "add1", np.zeros((1, 2), np.int64), in_width=8, in_signed=True, n_out=4,
                 out_width=9, out_signed=True, work_dir=tmp_path / "w")


def test_build_cache_hit(tmp_path: Path) -> None:
    verilog = ADD1 + f"// {tmp_path.name}\n"  # new text: not built before in this session
    x = _signed8(10, seed=5)
    kw = dict(in_width=8, in_signed=True, n_out=4, out_width=9, out_signed=True)
    first = simulate(verilog, "add1", x, work_dir=tmp_path / "1", **kw)  # type: ignore[arg-type]
    second = simulate(verilog, "add1", x, work_dir=tmp_path / "2", **kw)  # type: ignore[arg-type]
    assert not first.build_cached and first.build_seconds > 0.0
    assert second.build_cached and second.build_seconds == 0.0
    np.testing.assert_array_equal(first.outputs, second.outputs)
    np.testing.assert_array_equal(second.outputs, x + 1)


@pytest.mark.slow
def test_waves(tmp_path: Path) -> None:
    r = _add1(_signed8(3), tmp_path, waves=True)
    assert r.waves_path is not None and "m_axis_tvalid" in r.waves_path.read_text()


def test_build_failure_is_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"build of 'broken' failed.*see .*build\.log"):
        simulate("module broken(input clk; endmodule\n", "broken", np.zeros((1, 1), np.int64),
                 in_width=8, in_signed=False, n_out=1, out_width=8, out_signed=False,
                 work_dir=tmp_path)
    assert (tmp_path / "build.log").exists()


def test_input_range_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="out of range for 8-bit signed"):
        _add1(np.full((1, 4), 128, np.int64), tmp_path)


USER_TESTS = '''
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, ReadOnly
from hetero_sim.axis_tb import pack, unpack


@cocotb.test()
async def adds_one(dut):
    Clock(dut.clk, 2, unit="step").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    dut.m_axis_tready.value = 1
    dut.s_axis_tdata.value = pack([-128, -1, 0, 126], 8)
    dut.s_axis_tvalid.value = 1
    for _ in range(10):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.m_axis_tvalid.value:
            assert unpack(int(dut.m_axis_tdata.value), 4, 9, True) == [-127, 0, 1, 127]
            return
        await RisingEdge(dut.clk)
    assert False, "no output"


@cocotb.test()
async def fails(dut):
    assert False, "on purpose"
'''


def test_user_cocotb_tests_run_after_the_bench(tmp_path: Path) -> None:
    (tmp_path / "my_checks.py").write_text(USER_TESTS)
    x = _signed8(5)
    r = _add1(x, tmp_path / "w", tests=[tmp_path / "my_checks.py"])
    np.testing.assert_array_equal(r.outputs, x + 1)
    assert r.tests == {"hetero_sim.axis_tb.axis_run": True, "my_checks.adds_one": True,
                       "my_checks.fails": False}
    assert r.failed == ["my_checks.fails"]
    with pytest.raises(ValueError, match="is no Python file"):
        _add1(x, tmp_path / "w2", tests=[tmp_path / "missing.py"])


@pytest.mark.slow
def test_run_bench_on_a_model_is_bit_exact(tmp_path: Path) -> None:
    from conftest import model_path

    from hetero import boards
    from hetero.flows.common import compile_model
    from hetero.sim.cocotb import run_bench

    graph = compile_model(model_path("two_layer"), board=boards.get("pynq-z2"))
    x = np.random.default_rng(0).standard_normal((20, *graph.tensors[graph.inputs[0]].shape))
    run = run_bench(graph, x.astype(np.float32), work_dir=tmp_path, backpressure=0.3, seed=1)
    assert run.bit_exact and run.inferences == 20 and run.backend == "cocotb"
    assert run.detail.tests == {"hetero_sim.axis_tb.axis_run": True}
    assert run.latency_cycles > 0 and "cocotb" in run.simulator
