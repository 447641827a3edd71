"""Native RTL simulation (hetero.sim.verilator) and `hetero sim`: bit-exact outputs, multi-beat wide
streams, backpressure, exact cycle counts, stall naming with and without probes, protocol
errors, waves, the build cache and the command's exit codes."""

import subprocess
import sys

import numpy as np
import pytest

import tiny_models
from hetero.errors import SimulationError
from hetero.sim.verilator import pack_words, simulate_beats, unpack_words


def two_stage(width: int, limit: int = 2**31, probes: bool = True, tlast: str = "b_last") -> str:
    """A two-register stream pipeline giving ~tdata (bitwise NOT), tlast passed through. After
    ``limit`` beats its second stage is never ready again: a deadlock on purpose. Probe bit 0 is
    the stream between the stages, bit 1 the output."""
    ports = ", probe_valid, probe_ready" if probes else ""
    probe_decl = ("output [1:0] probe_valid; output [1:0] probe_ready;\n"
                  "  assign probe_valid = {b_valid, a_valid};\n"
                  "  assign probe_ready = {m_axis_tready, b_in_ready};") if probes else ""
    return f"""
module two_stage(clk, rst, s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast,
                 m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast{ports});
  input clk; input rst;
  input [{width - 1}:0] s_axis_tdata; input s_axis_tvalid; output s_axis_tready;
  input s_axis_tlast;
  output [{width - 1}:0] m_axis_tdata; output m_axis_tvalid; input m_axis_tready;
  output m_axis_tlast;
  reg [{width - 1}:0] a_data, b_data; reg a_valid, b_valid, a_last, b_last; reg [31:0] count;
  wire b_in_ready = (count < {limit}) && (!b_valid || m_axis_tready);
  wire b_take = a_valid && b_in_ready;
  wire a_in_ready = !a_valid || b_in_ready;
  {probe_decl}
  assign s_axis_tready = a_in_ready;
  assign m_axis_tdata = b_data; assign m_axis_tvalid = b_valid; assign m_axis_tlast = {tlast};
  always @(posedge clk) begin
    if (rst) begin a_valid <= 0; b_valid <= 0; count <= 0; end
    else begin
      if (a_in_ready) begin
        a_valid <= s_axis_tvalid; a_data <= ~s_axis_tdata; a_last <= s_axis_tlast;
      end
      if (b_valid && m_axis_tready) b_valid <= 0;
      if (b_take) begin b_valid <= 1; b_data <= a_data; b_last <= a_last; count <= count + 1; end
    end
  end
endmodule
"""


STREAMS = ["stage_a.o -> stage_b.i", "stage_b.o -> output"]


def run_two_stage(tmp_path, x, verilog, **kw):
    return simulate_beats(verilog, "two_stage", x, in_width=8, in_signed=True,
                          out_beats=x.shape[1], out_lanes=x.shape[2], out_width=8,
                          out_signed=True, work_dir=tmp_path / "sim", **kw)


@pytest.mark.parametrize("width,signed", [(1, False), (3, True), (8, True), (16, False),
                                          (33, True), (64, True), (64, False)])
def test_pack_unpack_round_trip(width, signed):
    rng = np.random.default_rng(width)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1))) if signed else (0, 1 << width)
    x = rng.integers(lo, hi, (5, 3, 7), dtype=np.int64) if width < 64 else \
        rng.integers(-2**63, 2**63 - 1, (5, 3, 7), dtype=np.int64)
    words = pack_words(x, width, -(-7 * width // 32))
    back = unpack_words(words, 7, width, signed)
    assert (back == x).all()  # 64-bit unsigned: the same bits, read back as int64
    # lane k sits at payload bits [k*width +: width]
    bits = np.unpackbits(words[0, 0].view(np.uint8), bitorder="little")
    lane1 = sum(int(b) << i for i, b in enumerate(bits[width:2 * width]))
    assert lane1 == int(x[0, 0, 1]) & ((1 << width) - 1)


@pytest.mark.verilator
def test_wide_multi_beat_stream_exact_cycles(tmp_path):
    x = np.random.default_rng(0).integers(-128, 128, (40, 3, 25))  # 200-bit beats (VlWide)
    r = run_two_stage(tmp_path, x, two_stage(200))
    assert r.outputs.shape == (40, 3, 25)
    assert (r.outputs == ~x).all()
    # two registers: a beat accepted at edge t leaves at t + 2; input beats every cycle
    assert list(r.in_cycles[:3]) == [0, 3, 6]
    assert list(r.out_cycles[:3]) == [4, 7, 10]
    assert r.latency_cycles == 4 and r.interval_cycles == 3.0
    assert r.total_cycles == r.out_cycles[-1] + 1


@pytest.mark.verilator
def test_backpressure_keeps_outputs_and_slows_down(tmp_path):
    x = np.random.default_rng(1).integers(-128, 128, (200, 2, 25))
    r = run_two_stage(tmp_path, x, two_stage(200), backpressure=0.6, seed=7)
    assert (r.outputs == ~x).all()
    assert r.interval_cycles > 3.0  # 2 beats per inference, output ready 40 % of cycles
    again = run_two_stage(tmp_path, x, two_stage(200), backpressure=0.6, seed=7)
    assert (again.out_cycles == r.out_cycles).all()  # seeded: reproducible
    other = run_two_stage(tmp_path, x, two_stage(200), backpressure=0.6, seed=8)
    assert (other.out_cycles != r.out_cycles).any()
    assert again.build_cached and again.build_seconds == 0.0  # the cache hit


@pytest.mark.verilator
def test_stall_names_the_stream_that_waits(tmp_path):
    x = np.zeros((20, 1, 4), dtype=np.int64)
    with pytest.raises(SimulationError, match=r"stalled at stage_a.o -> stage_b.i: data waits, "
                                              r"consumer never ready"):
        run_two_stage(tmp_path, x, two_stage(32, limit=5), stall_timeout=40, probe_names=STREAMS)


@pytest.mark.verilator
def test_stall_without_probes_names_the_port(tmp_path):
    x = np.zeros((20, 1, 4), dtype=np.int64)
    with pytest.raises(SimulationError, match=r"stalled: no beat moved for 40 cycles.*"
                                              r"s_axis: the design takes no input"):
        run_two_stage(tmp_path, x, two_stage(32, limit=5, probes=False), stall_timeout=40)


@pytest.mark.verilator
def test_tlast_on_the_wrong_beat_is_an_error(tmp_path):
    x = np.zeros((3, 2, 4), dtype=np.int64)
    with pytest.raises(SimulationError, match="tlast wrong on output beat 0 of inference 0"):
        run_two_stage(tmp_path, x, two_stage(32, probes=False, tlast="1'b1"))


@pytest.mark.verilator
def test_waves_written_where_asked(tmp_path):
    x = np.random.default_rng(2).integers(-128, 128, (4, 2, 4))
    wave = tmp_path / "deep" / "trace.fst"
    r = run_two_stage(tmp_path, x, two_stage(32, probes=False), waves=wave)
    assert (r.outputs == ~x).all()
    assert r.waves_path == wave and wave.stat().st_size > 200
    assert wave.read_bytes()[0] == 0  # FST header block


def test_bad_beats_are_refused(tmp_path):
    with pytest.raises(ValueError, match="out of range for 8-bit signed"):
        run_two_stage(tmp_path, np.full((1, 1, 4), 200), two_stage(32))
    with pytest.raises(ValueError, match="s_axis_tdata is 32 bits wide, the beats need 40"):
        run_two_stage(tmp_path, np.zeros((1, 1, 5), dtype=np.int64), two_stage(32))


# --- hetero sim on a tiny MLP -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_mlp(tmp_path_factory):
    """Gemm 6 -> 5, Relu, Gemm 5 -> 3: small enough to build in seconds."""
    return tiny_models.tiny_mlp(tmp_path_factory.mktemp("tiny") / "tiny_mlp.onnx")


def hetero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.verilator
def test_sim_flow_bit_exact_with_backpressure(tiny_mlp):
    from hetero.flows.sim import simulate_model

    report = simulate_model(tiny_mlp, n=300, backpressure=0.3, seed=1)
    assert report.bit_exact and report.inferences == 300
    assert report.sim.outputs.shape == (300, 1, 3)


@pytest.mark.verilator
def test_sim_flow_mismatch_writes_npz_and_raises(tiny_mlp, tmp_path, monkeypatch):
    import hetero.flows.sim as flow
    from hetero.reference import execute

    def off_by_one(graph, x):  # a wrong "reference" on inference 5
        values = execute(graph, x)
        values[graph.outputs[0]][5] += 1
        return values

    monkeypatch.setattr(flow, "execute", off_by_one)
    with pytest.raises(flow.MismatchError, match="on 1 of 20 inferences .first: inference 5"):
        flow.simulate_model(tiny_mlp, n=20, out=tmp_path / "out")
    with np.load(tmp_path / "out" / "mismatches.npz") as m:
        assert list(m["index"]) == [5]
        assert (m["got"] == m["expected"] - 1).all()


@pytest.mark.verilator
def test_cli_sim_exit_codes(tiny_mlp, tmp_path):
    ok = hetero("sim", tiny_mlp, "-n", "50", "--waves", "-o", tmp_path / "out")
    assert ok.returncode == 0, ok.stderr
    assert "bit-exact: yes" in ok.stdout and (tmp_path / "out" / "waves.fst").exists()
    assert not (tmp_path / "out" / "mismatches.npz").exists()

    (tmp_path / "bad.npy").write_text("not numpy")
    for args, needle in ((("--inputs", tmp_path / "bad.npy"), "bad.npy"),
                         (("--inputs", tmp_path / "missing.npy"), "missing.npy"),
                         (("--backpressure", "1.5"), "--backpressure"),
                         (("-n", "0"), "-n"),
                         (("-b", "no-such-board"), "no-such-board")):
        r = hetero("sim", tiny_mlp, *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
