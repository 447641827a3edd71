"""CPU/GPU baselines (real onnxruntime), the QONNX float lowering against hetero's float
reference, the energy figures and the report sections built from them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import model_path

from hetero.report import baselines as compare, energy
from hetero.boards import get as get_board
from hetero.errors import UserError
from hetero.frontend.onnx import import_onnx
from hetero.frontend.onnxrt import run_float
from hetero.passes.pipeline import simplify
from hetero.reference import predict


@pytest.mark.parametrize("name", ["finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx",
                                  "finn_tfc_1w1a_qonnxzoo.qonnx.onnx",
                                  "hls4ml_qkeras_jettagging_qonnxzoo.qonnx.onnx"])
def test_qonnx_lowering_computes_the_float_definition(name):
    """onnxruntime cannot run QONNX; the lowered graph it times computes what hetero's float
    reference computes (Quant as its definition, BipolarQuant as a sign, opset 9 converted)."""
    path = model_path(name)
    model = onnx.load(path)
    with pytest.raises(UserError):
        run_float(model, np.zeros((1,) + tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])))
    lowered, note = compare.runnable_model(model)
    assert lowered is not None, note
    assert "lowering" in note
    assert not compare._custom_nodes(lowered)
    graph = simplify(import_onnx(path))
    x = np.random.default_rng(1).standard_normal((16,) + graph.tensors[graph.inputs[0]].shape)
    want = predict(graph, x)
    got = np.concatenate([run_float(lowered, x[i:i + 1]) for i in range(len(x))]).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_cpu_sweep_measures_batch_one_to_1024():
    model = onnx.load(model_path("three_layer"))
    graph, note = compare.runnable_model(model)
    assert note == "the model as given"
    cpu = compare.cpu_baseline(graph, budget_s=0.6)
    batches = [r["batch"] for r in cpu["throughput"]]
    assert batches[0] == 1 and batches == sorted(batches) and set(batches) <= set(compare.BATCHES)
    assert cpu["batch1_latency_us"] == pytest.approx(cpu["throughput"][0]["run_us"])
    assert cpu["best_throughput_per_s"] == max(r["per_s"] for r in cpu["throughput"])
    assert cpu["batch1_latency_us"] > 0 and cpu["threads"] == 1
    assert energy.cpu_model_name() in cpu["device"]
    en = cpu["energy"]
    assert en["method"] and en["measured"] == bool(energy.cpu_meter())
    assert en["throughput_uj"] <= en["batch1_uj"] * 1.0001 or en["measured"]


def test_gpu_skipped_with_a_note_without_cuda():
    import onnxruntime as ort

    model = onnx.load(model_path("two_layer"))
    gpu, note = compare.gpu_baseline(model, budget_s=0.3)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert gpu is None or gpu["device"]
    else:
        assert gpu is None and "CUDAExecutionProvider" in note


def test_tdp_estimate_and_rapl_counter(tmp_path):
    p = energy.cpu_tdp_power(2, "AMD EPYC 7763 64-Core Processor")
    assert p.watts == pytest.approx(2 * 280 / 64) and not p.measured and "TDP" in p.method
    assert energy.cpu_tdp_power(1, "Some Unknown CPU").watts == pytest.approx(65 / 8)
    # a RAPL domain as the kernel lays it out: the counter wraps at max_energy_range_uj
    dom = tmp_path / "intel-rapl:0"
    dom.mkdir()
    (dom / "name").write_text("package-0\n")
    (dom / "max_energy_range_uj").write_text("1000000\n")
    (dom / "energy_uj").write_text("900000\n")
    meter = energy.RaplMeter([dom / "energy_uj"])
    with meter.measure():
        (dom / "energy_uj").write_text("100000\n")  # wrapped: 0.1 J + 0.1 J
    assert meter.joules == pytest.approx(0.2)
    assert "measured" in meter.method


def test_fpga_power_model():
    b = get_board("pynq-z2")
    static = energy.fpga_power(b, None)
    assert static["total_w"] == b.power_w_rough and static["dynamic_w"] == 0 and not static["measured"]
    res = {"lut": 10000, "ff": 20000, "dsp": 100, "bram36": 10}
    p100 = energy.fpga_power(b, res, 100)
    c = energy.DYNAMIC_UW_PER_MHZ
    want = 100 * (10000 * c["lut"] + 20000 * c["ff"] + 100 * c["dsp"] + 10 * c["bram36"]) * 1e-6
    assert p100["dynamic_w"] == pytest.approx(want, rel=1e-3)
    assert energy.fpga_power(b, res, 200)["dynamic_w"] == pytest.approx(2 * want, rel=1e-3)
    report = {"clock_mhz": 100, "latency_cycles": 50, "interval_cycles": 10,
              "simulation": {"simulator": "verilator"}, "resources": {"synth": None, "estimate": res}}
    f = compare.fpga_baseline(report, b)
    assert f["batch1_latency_us"] == pytest.approx(0.5) and f["best_throughput_per_s"] == pytest.approx(1e7)
    assert f["energy"]["throughput_uj"] == pytest.approx(p100["total_w"] * 1e-7 * 1e6, rel=1e-3)
    assert "resources.estimate" in f["energy"]["method"] and not f["energy"]["measured"]


def test_labels_and_accuracy(tmp_path):
    path = tmp_path / "y.npy"
    np.save(path, np.eye(3)[[0, 2, 1, 2]])  # one-hot rows -> classes
    assert compare.load_labels(path, 4).tolist() == [0, 2, 1, 2]
    with pytest.raises(UserError, match="3 labels for 5"):
        np.save(path, np.array([0, 1, 2]))
        compare.load_labels(path, 5)
    with pytest.raises(UserError, match="not found"):
        compare.load_labels(tmp_path / "none.npy", 1)
    labels = np.array([0, 2, 1, 2])
    acc = compare.accuracy(labels, scores=np.eye(3)[[0, 2, 2, 2]], indices=np.array([0, 2, 1, 2]), none=None)
    assert acc == {"scores": 0.75, "indices": 1.0, "none": None}


def test_fixed_point_errors_match_the_calibration_report():
    from hetero.passes.calibrate import calibration_report, float_graph
    from hetero.ir.config import Config
    from hetero.flows.common import compile_model
    from hetero.reference import execute

    path = model_path("two_layer")
    fixed = compile_model(path, Config())
    fg = float_graph(import_onnx(path), Config())
    x = np.random.default_rng(0).standard_normal((64,) + fixed.tensors[fixed.inputs[0]].shape)
    fixed_values = execute(fixed, x)
    rows = compare.fixed_point_errors(execute(fg, x), fixed, fixed_values)
    ref = {r["layer"]: r for r in calibration_report(fg, fixed, x)}
    outputs = {n.name: n.outputs[0] for n in fixed.nodes}
    assert rows
    for r in rows:
        assert r["max_abs_error"] == pytest.approx(ref[r["layer"]]["max_abs_error"])
        assert sum(r["hist"]["counts"]) == fixed_values[outputs[r["layer"]]].size


def test_cli_labels_errors_before_any_tool_runs(tmp_path):
    from click.testing import CliRunner

    from hetero.cli import main

    model = str(model_path("two_layer"))
    runner = CliRunner()
    r = runner.invoke(main, ["synth", model, "-b", "pynq-z2", "-o", str(tmp_path / "o"), "--labels", "y.npy"])
    assert r.exit_code == 2 and "--labels needs --inputs" in r.output
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((5, 10)))
    np.save(tmp_path / "y.npy", np.zeros(3, dtype=np.int64))
    r = runner.invoke(main, ["compare", model, "-b", "pynq-z2", "--inputs", str(x), "--labels", str(tmp_path / "y.npy")])
    assert r.exit_code == 2 and "y.npy: 3 labels for 5 inputs" in r.output
    assert not (tmp_path / "o").exists()
