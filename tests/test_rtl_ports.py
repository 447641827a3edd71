"""hetero.backends.rtl.ports: the port list of a generated design from its Amaranth signature,
equal to the ports Amaranth's Verilog has as Verilator and Yosys read them."""

from __future__ import annotations

import pytest
from amaranth.back import verilog
from conftest import model_path

from hetero import boards
from hetero.backends.rtl.ports import Port, ports
from hetero.backends.rtl.top import Fork, Top, top_verilog
from hetero.dataflow import TOP_NAME
from hetero.flows.common import compile_model


def test_ports_of_nested_stream_signature() -> None:
    fork = Fork(8, 2)
    got = ports(fork)
    assert got == [Port("clk", "input", 1), Port("rst", "input", 1),
                   Port("i__payload", "input", 8), Port("i__valid", "input", 1),
                   Port("i__ready", "output", 1),
                   Port("o0__payload", "output", 8), Port("o0__valid", "output", 1),
                   Port("o0__ready", "input", 1),
                   Port("o1__payload", "output", 8), Port("o1__valid", "output", 1),
                   Port("o1__ready", "input", 1)]
    verilog.convert(fork, name="fork", emit_src=False)  # elaborated: no "unused" warning
    assert ports(fork, domains=("sync", "fast"))[2:4] == [Port("fast_clk", "input", 1),
                                                          Port("fast_rst", "input", 1)]


@pytest.mark.verilator
def test_ports_are_what_amaranth_emits_verilator() -> None:
    from hetero.sim.verilator_tool import verilog_ports

    fork = Fork(5, 3)
    text = verilog.convert(fork, name="fork", emit_src=False)
    assert sorted(verilog_ports(text, "fork"), key=str) == sorted(ports(fork), key=str)
    board = boards.get("pynq-z2")
    top = Top(compile_model(model_path("two_layer"), board=board), probes=True)
    text = top_verilog(top)
    got = ports(top)
    assert sorted(verilog_ports(text, TOP_NAME), key=str) == sorted(got, key=str)
    assert Port("s_axis_tdata", "input", top.in_width) in got
    assert Port("probe_valid", "output", len(top.stream_names)) in got


@pytest.mark.yosys
def test_ports_are_what_amaranth_emits_yosys() -> None:
    from hetero.synthesis.timing import top_ports

    fork = Fork(5, 3)
    text = verilog.convert(fork, name="fork", emit_src=False)
    assert sorted(top_ports(text, "fork"), key=str) == sorted(ports(fork), key=str)


@pytest.mark.verilator
def test_verilator_reads_ports_of_verilog_text() -> None:
    from hetero.errors import ToolError
    from hetero.sim.verilator_tool import verilog_ports

    text = ("module t(a, clk, y);\n  input clk;\n  input [0:15] a;\n  output [2:0] y;\n"
            "  wire [3:0] w;\nendmodule\n"
            "module p #(parameter W = 4) (input logic [1:0][W-1:0] a, output y);\nendmodule\n")
    assert verilog_ports(text, "t") == [Port("a", "input", 16), Port("clk", "input", 1),
                                        Port("y", "output", 3)]
    assert verilog_ports(text, "p") == [Port("a", "input", 8), Port("y", "output", 1)]
    with pytest.raises(ValueError, match="no module 'u' in the Verilog text"):
        verilog_ports(text, "u")
    with pytest.raises(ToolError, match="Verilator cannot read the Verilog of 'q'.*syntax error"):
        verilog_ports("module q(input [3:0] a, output y;\nendmodule\n", "q")
