"""Timing: nextpnr's Fmax for ECP5 and iCE40 parts (the design inside the timing wrapper, cached by
content), Yosys' reading of a module's ports, the timing wrapper, the Xilinx estimate."""

from __future__ import annotations

import pytest
from conftest import model_path

from hetero import boards
from hetero.flows.common import compile_model
from hetero.errors import UserError
from hetero.backends.rtl.ports import Port
from hetero.backends.rtl.ports import ports as rtl_ports
from hetero.backends.rtl.timing_wrapper import TimingWrapper, wrapper_verilog
from hetero.synthesis.timing import place_and_route, timing_wrapper, top_ports, xilinx_fmax

COUNTER = """
module cnt (input clk, input en, output reg [15:0] q);
  always @(posedge clk) if (en) q <= q + 16'd1;
endmodule
"""

# 145 input and 137 output bits: far more than the 39 IOs of the iCE40UP5K SG48 package. The
# input-to-register path (k and a through the 8x8 multiply and the accumulate) is the slowest.
WIDE = """
module wide (input clk, input rst, input [127:0] a, input [7:0] k, output reg [135:0] y, output reg v);
  integer i;
  always @(posedge clk) begin
    v <= rst ? 1'b0 : ^a;
    for (i = 0; i < 16; i = i + 1)
      y[i*8 +: 8] <= a[i*8 +: 8] * k + y[i*8 +: 8];
    y[135:128] <= a[7:0] + a[15:8];
  end
endmodule
"""


@pytest.mark.yosys
def test_ecp5_place_and_route_gives_fmax_and_caches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache"))
    board = boards.get("ulx3s-85f")
    synth, timing = place_and_route(COUNTER, "cnt", board, tmp_path / "w")
    assert timing.fmax_mhz is not None and 50 < timing.fmax_mhz < 1000
    assert "nextpnr-ecp5" in timing.tool and "place and route" in timing.method
    assert synth.ff == 16 and synth.lut > 0 and not timing.cached
    again_synth, again = place_and_route(COUNTER, "cnt", board, tmp_path / "w2")
    assert again.cached and again.fmax_mhz == timing.fmax_mhz and again_synth.ff == 16
    assert not (tmp_path / "w2").exists()  # a cache hit runs no tool


def test_xilinx_estimate_names_its_method() -> None:
    board = boards.get("pynq-z2")
    t = xilinx_fmax(compile_model(model_path("two_layer"), board=board), board)
    assert 20 < t.fmax_mhz < 700
    assert t.method.startswith("analytic estimate") and t.note.startswith("limited by")


@pytest.mark.yosys
def test_top_ports_reads_ansi_and_amaranth_style_headers() -> None:
    assert top_ports(WIDE, "wide") == [
        Port("clk", "input", 1), Port("rst", "input", 1), Port("a", "input", 128),
        Port("k", "input", 8), Port("y", "output", 136), Port("v", "output", 1)]
    amaranth = ("module t(a, clk, y);\n  wire [3:0] w;\n  input clk;\n  wire clk;\n"
                "  input [15:0] a;\n  wire [15:0] a;\n  output [2:0] y;\n  wire [2:0] y;\nendmodule\n")
    assert top_ports(amaranth, "t") == [Port("a", "input", 16), Port("clk", "input", 1),
                                        Port("y", "output", 3)]
    with pytest.raises(UserError, match="no module 'u'"):
        top_ports(amaranth, "u")
    # Yosys reads what a regex could not: a range from a parameter (its default value)
    assert top_ports("module p #(parameter W = 4) (input [W-1:0] a, output y);\nendmodule\n",
                     "p") == [Port("a", "input", 4), Port("y", "output", 1)]
    with pytest.raises(UserError, match="cannot read the Verilog of module 'p'"):
        top_ports("module p (input [3:0] a, output y;\nendmodule\n", "p")


def test_timing_wrapper_registers_inputs_and_reduces_outputs_to_one_pin() -> None:
    ports = [Port("clk", "input", 1), Port("rst", "input", 1), Port("a", "input", 128),
             Port("k", "input", 8), Port("y", "output", 136), Port("v", "output", 1)]
    wrapper = TimingWrapper(ports, "wide")
    assert rtl_ports(wrapper, domains=()) == [Port("clk", "input", 1), Port("sin", "input", 1),
                                              Port("sout", "output", 1)]
    # rst 1 + a 64 (128 bits: each register drives two) + k 8 registers
    assert wrapper.n_registers == 73 and wrapper.inputs["k"] == list(range(65, 73))
    assert wrapper.inputs["rst"] == [0] and wrapper.inputs["a"] == 2 * list(range(1, 65))
    assert wrapper.outputs == {"y": (0, 136), "v": (136, 1)}
    # 137 -> 35 -> 9 -> 3 -> 1: registered 4-input XOR stages, the last drives the pin
    assert wrapper.stages == [35, 9, 3, 1]
    text = wrapper_verilog(wrapper)
    assert text == timing_wrapper(ports, "wide")
    assert "module hetero_timing_wrapper(" in text and "wide dut (" in text
    assert "reg [72:0] hetero_wrap_in" in text and "reg [34:0] hetero_wrap_x1" in text
    assert "hetero_wrap_in <= { hetero_wrap_in[71:0], sin };" in text
    assert "  output sout;\n  reg sout" in text  # the last stage's register drives the pin
    odd = TimingWrapper([Port("a", "input", 70), Port("y", "output", 1)], "t", share=64)
    assert odd.inputs["a"] == list(range(64)) + list(range(6))  # bit j from j mod 64
    assert odd.stages == [1]  # one output: still registered
    assert not odd.has_clock and "sout <=" in wrapper_verilog(odd)
    with pytest.raises(UserError, match="no outputs"):
        timing_wrapper([Port("clk", "input", 1), Port("a", "input", 4)], "t")
    with pytest.raises(UserError, match="inout ports"):
        TimingWrapper([Port("a", "inout", 4), Port("y", "output", 1)], "t")


@pytest.mark.yosys
@pytest.mark.slow
def test_ice40_places_design_wider_than_package_in_wrapper(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache"))
    board = boards.get("icebreaker")  # iCE40UP5K-SG48: 39 IOs, the design has 283 port bits
    synth, timing = place_and_route(WIDE, "wide", board, tmp_path / "w")
    assert "nextpnr-ice40" in timing.tool and "timing wrapper" in timing.method
    assert timing.fmax_mhz is not None and 10 < timing.fmax_mhz < 300, timing
    assert "wrapper's own" not in timing.note  # the critical path runs through the design
    # the counts are the design's alone (137 FFs), none of its logic optimised away
    assert synth.ff == 137 and synth.cells.get("SB_CARRY", 0) > 0 and synth.lut > 500


@pytest.mark.yosys
def test_ecp5_note_says_when_the_wrapper_limits(tmp_path, monkeypatch) -> None:
    # a bare 200-bit register: every reg-to-reg path with logic is the wrapper's XOR stages
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache"))
    reg = "module r (input clk, input [199:0] a, output reg [199:0] y);\n always @(posedge clk) y <= a;\nendmodule\n"
    synth, timing = place_and_route(reg, "r", boards.get("ulx3s-85f"), tmp_path / "w")
    assert synth.ff == 200 and "out of context" in timing.method
    assert timing.fmax_mhz > 150 and "wrapper's own" in timing.note
