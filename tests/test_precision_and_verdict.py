"""Issue 15 items 5-6: precision is never lost silently (saturation per layer in report.json and
on stderr; calibration with headroom), and a design that does not fit its board is never
recommended (the report says what to do and shows the nearest fitting design)."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

# the keys report.json had before these sections, in their order (a public contract)
STABLE_PREFIX = ["model", "board", "part", "clock_mhz", "latency_cycles", "interval_cycles",
                 "latency_us", "throughput_per_s", "cycle_model", "layers", "io", "notes",
                 "simulation", "stages_s", "fmax_mhz", "timing", "clock_source", "resources",
                 "utilization", "fits", "estimate", "bram_blocks"]


def gemm_model(path, w, name="fc1"):
    """One Gemm node ``name``: x [1, n_in] @ w, zero bias."""
    w = np.asarray(w, dtype=np.float32)
    n_in, n_out = w.shape
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], name=name)], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros(n_out, np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def hetero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


# -- item 5: saturation ---------------------------------------------------------------------------

def test_saturation_counts_the_values_the_type_clipped(tmp_path):
    """fc1 = 8 * x: inputs within fixed<16,6>, outputs beyond +-32 exactly where |8x| > 32."""
    from hetero.flows.common import compile_model
    from hetero.ir.config import Config
    from hetero.reference import execute, saturation

    path = gemm_model(tmp_path / "m.onnx", 8 * np.eye(4))
    graph = compile_model(path, Config())
    x = np.random.default_rng(0).uniform(-8, 8, (50, 4)).round(2)
    before = {k: v.copy() for k, v in execute(graph, x).items()}
    rows = {r["layer"]: r for r in saturation(graph, x)}
    expected = int(np.count_nonzero((8 * x < -32) | (8 * x > 32 - 2 ** -10)))
    assert expected > 0
    assert rows["fc1"]["saturated"] == expected and rows["fc1"]["total"] == x.size
    assert rows["fc1"]["share"] == pytest.approx(expected / x.size)
    assert (rows["fc1"]["min"], rows["fc1"]["max"]) == (-32.0, 32 - 2 ** -10)
    assert rows["x"]["saturated"] == 0
    after = execute(graph, x)  # counting changes nothing the reference computes
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_predict_warns_which_layer_saturates(tmp_path):
    """The issue's case: logits beyond -32 are clipped by the default fixed<16,6>; predict says
    so on stderr, one line naming the layer, the share and the type's range."""
    path = gemm_model(tmp_path / "m.onnx", [[8.0, -12.0]], name="fc3")
    x = np.linspace(-4, 4, 40).reshape(40, 1)  # fc3 = (8x, -12x): up to +-48
    np.save(tmp_path / "x.npy", x)
    r = hetero("predict", path, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    y = np.c_[8 * x, -12 * x]
    share = 100 * np.count_nonzero((y < -32) | (y > 32 - 2 ** -10)) / y.size
    line = (f"warning: layer 'fc3' saturates {share:.1f} % of its outputs (fixed<16,6> spans "
            "-32..31.99); widen its result type or use --calibrate")
    assert line in r.stderr.splitlines(), r.stderr
    assert "layer 'x'" not in r.stderr  # the inputs fit


def test_synth_report_json_has_saturation_and_calibration_headroom(tmp_path):
    path = gemm_model(tmp_path / "m.onnx", [[8.0, -12.0]], name="fc3")
    x = np.linspace(-4, 4, 8).reshape(8, 1)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    r = hetero("synth", path, "--board", "pynq", "-o", out, "--no-synth", "--no-compare", "-q",
               "--inputs", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    # fc3 = (8x, -12x) at x = -4, -2.86, ..., 4: 8 * 4 = 32 and -12x beyond +-32 four times
    assert "warning: layer 'fc3' saturates 31.2 % of its outputs" in r.stderr
    report = json.loads((out / "report.json").read_text())
    assert list(report)[:len(STABLE_PREFIX)] == STABLE_PREFIX
    rows = {row["layer"]: row for row in report["saturation"]}
    assert rows["fc3"]["tensor"] == "y" and rows["fc3"]["saturated"] == 5
    assert rows["fc3"]["total"] == 16 and rows["fc3"]["share"] == 5 / 16
    assert rows["x"]["saturated"] == 0
    # calibrated on the same data: no layer saturates, and the report says what headroom it has
    out2 = tmp_path / "out2"
    r = hetero("synth", path, "--board", "pynq", "-o", out2, "--no-synth", "--no-compare", "-q",
               "--inputs", tmp_path / "x.npy", "--calibrate", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    assert "saturates" not in r.stderr
    report = json.loads((out2 / "report.json").read_text())
    assert report["calibration"]["headroom_bits"] == 1
    assert "integer bit" in report["calibration"]["headroom"]
    assert all(row["saturated"] == 0 for row in report["saturation"])


def test_calibration_leaves_headroom_beyond_the_data(tmp_path):
    """Calibrated on x in [-0.5, 0.5] (fc1 = 7.9 x reaches 3.95: 3 integer bits hold it), a test
    value 12 % beyond (fc1 = 4.42) still fits: one integer bit of headroom, printed."""
    path = gemm_model(tmp_path / "m.onnx", [[7.9]])
    np.save(tmp_path / "cal.npy", np.linspace(-0.5, 0.5, 11).reshape(11, 1))
    np.save(tmp_path / "x.npy", np.array([[0.56], [-0.56]]))
    r = hetero("predict", path, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
               "--calibrate", tmp_path / "cal.npy")
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    assert y[:, 0] == pytest.approx([0.56 * 7.9, -0.56 * 7.9], abs=0.01)
    assert "saturates" not in r.stderr
    assert ("headroom: every layer's result type has 1 integer bit(s) beyond the calibration "
            "data's range") in r.stderr


# -- item 6: the verdict --------------------------------------------------------------------------

def _fast_fpga_report(fits: bool) -> dict:
    entry = {"batch1_latency_us": 0.1, "best_throughput_per_s": 1e7,
             "energy": {"throughput_uj": 0.001, "measured": False}}
    cpu = {"batch1_latency_us": 10.0, "best_throughput_per_s": 1e5,
           "energy": {"throughput_uj": 50.0, "measured": False}}
    return {"board": "icebreaker", "fits": None,
            "estimate": {"fits": fits, "over": [] if fits else [
                {"resource": "lut", "needed": 7650.66, "available": 5280, "over_by_percent": 44.9}]},
            "baselines": {"fpga": entry, "cpu": cpu}}


def test_verdict_never_recommends_a_design_that_does_not_fit():
    from hetero.report.verdict import verdict

    assert "<b>the FPGA</b>" in verdict(_fast_fpga_report(True))
    text = verdict(_fast_fpga_report(False))
    assert "the FPGA</b>" not in text and "not recommended" in text
    assert "LUT 7650.66 of 5280 (+44.9 %)" in text


def test_synth_report_says_what_to_do_when_the_design_does_not_fit(tmp_path):
    """8x8 Gemm fully parallel (--target-interval 1) on the icebreaker: 45 % over its LUTs. The
    report recommends nothing on the FPGA, computes no power from LUTs the board lacks, and
    names the fastest fitting folding (--target-interval 12)."""
    path = gemm_model(tmp_path / "m.onnx", np.random.default_rng(0).normal(0, 0.5, (8, 8)))
    out = tmp_path / "out"
    r = hetero("synth", path, "--board", "icebreaker", "-o", out, "--no-synth", "-n", "3", "-q",
               "--target-interval", "1")
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert list(report)[:len(STABLE_PREFIX)] == STABLE_PREFIX
    assert report["estimate"]["fits"] is False
    advice = report["fit_advice"]
    assert advice["nearest"]["fits"] is True
    n = advice["nearest"]["interval_cycles"]
    assert n > 1 and f"--target-interval {n}" in advice["advice"]
    assert "does not fit icebreaker" in advice["advice"]
    fpga = report["baselines"]["fpga"]
    assert fpga["fits"] is False and fpga["energy"]["power_w"] is None
    md = (out / "report.md").read_text()
    assert "not recommended" in md and "**the FPGA**" not in md
    assert "not recommended" in (out / "report.html").read_text()
    assert f"warning: the design does not fit icebreaker" in r.stderr
    # the advice works: the nearest design fits
    r = hetero("estimate", path, "--board", "icebreaker", "--json", "--target-interval", n)
    assert r.returncode == 0 and json.loads(r.stdout)["fits"] is True


def test_advice_when_no_folding_fits_names_the_resource(tmp_path):
    """A 128x128 Gemm's weights exceed the icebreaker's block RAM even fully folded: the advice
    names the resource and by how much at the smallest design."""
    from hetero import boards
    from hetero.frontend.onnx import import_onnx
    from hetero.ir.config import Config
    from hetero.report.verdict import fit_advice

    path = gemm_model(tmp_path / "m.onnx", np.random.default_rng(0).normal(0, 0.5, (128, 128)))
    report = {"fits": None, "estimate": {"fits": False, "over": []}}
    advice = fit_advice(import_onnx(path), Config(), boards.get("icebreaker"), report)
    assert advice["nearest"]["fits"] is False
    assert "even the smallest design (most folded) needs BRAM36" in advice["advice"]
    assert "(+" in advice["advice"] and "use a board that holds its smallest design" in advice["advice"]
