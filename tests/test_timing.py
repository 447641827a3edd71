"""Timing: nextpnr's Fmax for an ECP5 part (cached by content), the Xilinx estimate."""

from __future__ import annotations

import pytest
from conftest import model_path

from hetero import boards
from hetero.flow import compile_model
from hetero.timing import place_and_route, xilinx_fmax

COUNTER = """
module cnt (input clk, input en, output reg [15:0] q);
  always @(posedge clk) if (en) q <= q + 16'd1;
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
