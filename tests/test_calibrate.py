"""Automatic precision from calibration data (``--calibrate X.npy``, config precision ``auto``).

The accuracy checks train small MLPs here, with numpy, on a deterministic digits-like set
(8x8 images of values 0..16 like scikit-learn's load_digits, which is not installed and would
need the network), export them to ONNX with onnx.helper and compare the calibrated fixed-point
reference with the float model on a held-out split.
"""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from conftest import model_path
from hetero.passes import calibrate as cal
from hetero.passes.calibrate import Range, type_for
from hetero.cli import main
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize, to_float
from hetero.flows.common import compile_model, predict
from hetero.frontend.onnx import import_onnx
from hetero.frontend.onnxrt import run_float


# -- a digits-like data set and an MLP trained on it -------------------------------------------

def digits_like(n: int, seed: int, noise: float = 5.0):
    """``n`` 8x8 images (flattened, integers 0..16) of 10 classes: each class a fixed pattern of
    three strokes, shifted by up to a pixel, dimmed and noisy."""
    proto_rng = np.random.default_rng(1234)
    protos = np.zeros((10, 8, 8))
    for c in range(10):
        for _ in range(3):
            r0, c0 = proto_rng.integers(1, 7, 2)
            dr, dc = proto_rng.integers(-1, 2, 2)
            for k in range(5):
                r, cc = r0 + k * dr, c0 + k * dc
                if 0 <= r < 8 and 0 <= cc < 8:
                    protos[c, r, cc] = 16
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    imgs = protos[y] * rng.uniform(0.6, 1.0, (n, 1, 1))
    shifts = rng.integers(-1, 2, (n, 2))
    imgs = np.stack([np.roll(im, tuple(s), (0, 1)) for im, s in zip(imgs, shifts)])
    imgs = imgs + rng.normal(0, noise, imgs.shape)
    return np.clip(np.round(imgs), 0, 16).reshape(n, 64), y


def train_mlp(x, y, sizes, epochs=15, batch=100, lr=0.01, seed=0):
    """Weights and biases of a ReLU MLP trained with mini-batch Adam on softmax cross-entropy
    (small batches: fast even when the BLAS threads compete); the input standardization is
    folded into the first layer, so the model takes raw ``x``."""
    rng = np.random.default_rng(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-3
    xs = (x - mu) / sd
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0, np.sqrt(2 / a), (a, b)), np.zeros(b)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(sizes[-1])[y]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            t += 1
            hs = [xs[idx]]
            for i in range(0, len(params), 2):
                z = hs[-1] @ params[i] + params[i + 1]
                hs.append(np.maximum(z, 0) if i < len(params) - 2 else z)
            p = np.exp(hs[-1] - hs[-1].max(1, keepdims=True))
            g = (p / p.sum(1, keepdims=True) - onehot[idx]) / len(idx)
            grads = [None] * len(params)
            for i in range(len(params) - 2, -1, -2):
                grads[i], grads[i + 1] = hs[i // 2].T @ g, g.sum(0)
                if i:
                    g = (g @ params[i].T) * (hs[i // 2] > 0)
            for k, (pk, gk) in enumerate(zip(params, grads)):
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                pk -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    params[1] = params[1] - (mu / sd) @ params[0]
    params[0] = params[0] / sd[:, None]
    return params


def forward(params, x):
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = np.maximum(h, 0)
    return h


def export_onnx(params, path):
    """MatMul + Add (+ Relu) per layer, then Softmax; layer names fc1, relu1, ..."""
    nodes, inits, cur = [], [], "x"
    n_layers = len(params) // 2
    for k in range(n_layers):
        w, b = params[2 * k], params[2 * k + 1]
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(b.astype(np.float32), f"B{k}")]
        nodes.append(helper.make_node("MatMul", [cur, f"W{k}"], [f"mm{k}"], name=f"fc{k + 1}"))
        nodes.append(helper.make_node("Add", [f"mm{k}", f"B{k}"], [f"z{k}"], name=f"fc{k + 1}_bias"))
        cur = f"z{k}"
        if k < n_layers - 1:
            nodes.append(helper.make_node("Relu", [cur], [f"h{k}"], name=f"relu{k + 1}"))
            cur = f"h{k}"
    nodes.append(helper.make_node("Softmax", [cur], ["y"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "digits_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", params[0].shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", params[-1].shape[0]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A 64-32-16-10 MLP trained on 2000 digits-like images; 2000 more held out."""
    x, y = digits_like(4000, seed=0)
    x_train, y_train, x_test, y_test = x[:2000], y[:2000], x[2000:], y[2000:]
    params = train_mlp(x_train, y_train, [64, 32, 16, 10])
    path = export_onnx(params, tmp_path_factory.mktemp("digits") / "mlp.onnx")
    return {"path": path, "params": params, "x_train": x_train, "y_train": y_train,
            "x_test": x_test, "y_test": y_test}


def accuracy(classes, y):
    return float((np.asarray(classes).reshape(-1) == y).mean())


# -- acceptance: at most one point of accuracy lost against float --------------------------------

def cal_graph(path, x, width, config=None):
    """The typed graph for ``path`` calibrated on ``x`` with ``width``-bit types."""
    from hetero.passes.pipeline import pipeline, run_pipeline

    g = import_onnx(path)
    return run_pipeline(g, pipeline(cal.calibrated_config(g, x, config, width=width), None))


@pytest.mark.parametrize("width", [16, 8])
def test_calibrated_accuracy_within_one_point_of_float(digits, width):
    from hetero.reference import predict as ref_predict

    d = digits
    acc_float = accuracy(run_float(d["path"], d["x_test"]).argmax(1), d["y_test"])
    assert acc_float > 0.7  # a task where precision could matter, not a solved one
    acc_fixed = accuracy(ref_predict(cal_graph(d["path"], d["x_train"], width), d["x_test"]), d["y_test"])
    assert acc_fixed >= acc_float - 0.01, (acc_fixed, acc_float)


def test_calibration_beats_the_default_where_the_range_is_large(digits, tmp_path):
    """Inputs scaled by 1000 (first-layer weights by 1/1000: the same float model): the default
    fixed<16,6> saturates the inputs and rounds the weights away; 8-bit calibrated types keep the
    float accuracy."""
    from hetero.reference import predict as ref_predict

    d = digits
    params = [d["params"][0] / 1000] + list(d["params"][1:])
    path = export_onnx(params, tmp_path / "mlp1000.onnx")
    x_train, x_test = d["x_train"] * 1000, d["x_test"] * 1000
    acc_float = accuracy(run_float(path, x_test).argmax(1), d["y_test"])
    acc_default = accuracy(predict(path, x_test), d["y_test"])
    graph = cal_graph(path, x_train, 8)
    acc_cal = accuracy(ref_predict(graph, x_test), d["y_test"])
    assert acc_default < acc_float - 0.3, (acc_default, acc_float)
    assert acc_cal >= acc_float - 0.01, (acc_cal, acc_float)
    # every type is 8 bits; the input needs 14 integer bits (values up to 16000), unsigned
    t_in = graph.tensors["x"].dtype
    assert t_in == FixedType(8, 14, False, "RND", "SAT")
    assert all(n.types["weight"].width == 8 for n in graph.nodes if n.op == "Dense")
    assert graph.node("fc1").types["weight"].int_bits < -5  # weights ~1e-3: fraction bits only


def test_shared_three_layer_agrees_with_float_after_calibration():
    path = model_path("three_layer")
    rng = np.random.default_rng(0)
    x_cal, x_test = rng.standard_normal((2000, 16)), rng.standard_normal((3000, 16))
    y = predict(path, x_test, calibrate=x_cal)
    agreement = (y[:, 0] == run_float(path, x_test).argmax(1)).mean()
    assert agreement >= 0.99, agreement


# -- profile and choose_types ------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi, width, expected", [
    (-3.0, 2.5, 8, FixedType(8, 3)),            # |x| < 4: two integer bits and the sign
    (0.0, 5.0, 8, FixedType(8, 3, False)),      # never negative: unsigned
    (-0.5, 0.999, 8, FixedType(8, 2)),          # 0.999 rounds to 1.0, beyond fixed<8,1>
    (-1.0, 0.99, 8, FixedType(8, 1)),           # -1 itself fits a signed fixed<8,1>
    (-0.001, 0.001, 8, FixedType(8, -8)),       # tiny: negative integer bits, all fraction
    (0.0, 16000.0, 8, FixedType(8, 14, False)),  # huge: more integer bits than the width
    (0.0, 0.0, 16, FixedType(16, 0, False)),
])
def test_type_for_holds_the_range_without_overflow(lo, hi, width, expected):
    t = type_for(Range(lo, hi, max(abs(lo), abs(hi)), 0.0, 1), width)
    assert t == FixedType(expected.width, expected.int_bits, expected.signed, "RND", "SAT")
    v = np.array([lo, hi])
    assert np.abs(to_float(quantize(v, t), t) - v).max() <= t.lsb / 2  # rounded, never saturated
    if hi:  # and not an integer bit to spare
        smaller = FixedType(width, t.int_bits - 1, t.signed, "RND", "SAT")
        assert np.abs(to_float(quantize(v, smaller), smaller) - v).max() > smaller.lsb / 2


def test_profile_records_every_tensor_and_param(digits, monkeypatch):
    d = digits
    graph = cal.float_graph(import_onnx(d["path"]))
    x = d["x_train"][:300]
    prof = cal.profile(graph, x)
    assert prof.samples == 300
    assert set(prof) == set(graph.tensors)
    r = prof["x"]
    assert (r.min, r.max, r.max_abs) == (x.min(), x.max(), np.abs(x).max())
    assert r.rms == pytest.approx(np.sqrt(np.mean(x ** 2)))
    assert prof["h0"].min == 0 and not prof["h0"].negative  # after ReLU
    assert prof["z0"].negative
    w = graph.node("fc1").params["W"]
    assert prof.params["fc1"]["W"].max_abs == pytest.approx(np.abs(w).max())
    assert set(prof.params["fc1"]) == {"W", "b"}
    # profiling in small batches gives the same ranges
    monkeypatch.setattr(cal, "_BATCH", 7)
    chunked = cal.profile(graph, x)
    for name, r in prof.items():
        c = chunked[name]
        assert (c.min, c.max, c.max_abs, c.count) == (r.min, r.max, r.max_abs, r.count)
        assert c.rms == pytest.approx(r.rms)


def test_profile_needs_the_float_graph(digits):
    with pytest.raises(ValueError, match="float"):
        cal.profile(compile_model(digits["path"]), digits["x_train"][:5])


def test_choose_types_per_layer(digits):
    graph = cal.float_graph(import_onnx(digits["path"]))
    prof = cal.profile(graph, digits["x_train"])
    cfg = cal.choose_types(graph, prof, width=10)
    names = {"x", "fc1", "relu1", "fc2", "relu2", "fc3", "softmax"}
    assert names <= set(cfg.layer_name)
    relu = cfg.for_layer("relu1", ("Relu",)).type_of("result")
    assert not relu.signed and relu.width == 10
    fc1 = cfg.for_layer("fc1", ("Dense",))
    assert fc1.type_of("result").signed
    for key in ("result", "weight", "bias"):
        t = fc1.type_of(key)
        assert (t.width, t.rounding, t.overflow) == (10, "RND", "SAT")
    # integer bits follow the largest magnitude seen: 2**(I-1) > max |W|
    w_max = prof.params["fc1"]["W"].max_abs
    t_w = fc1.type_of("weight")
    assert 2.0 ** (t_w.int_bits - 1) > w_max >= 2.0 ** (t_w.int_bits - 3)
    # default width: the default precision's (16)
    assert cal.choose_types(graph, prof).for_layer("fc2", ("Dense",)).type_of("weight").width == 16


# -- merging with the user's config --------------------------------------------------------------

def _types(graph):
    out = {name: graph.tensors[name].dtype for name in graph.inputs}
    for n in graph.nodes:
        out[n.name] = graph.tensors[n.outputs[0]].dtype
        out.update({f"{n.name}.{k}": t for k, t in n.types.items() if k in ("weight", "bias", "accum")})
    return out


def test_no_config_with_calibration_is_all_auto(digits):
    x = digits["x_train"]
    plain = _types(compile_model(digits["path"], calibrate=x))
    auto = _types(compile_model(digits["path"], Config.from_dict({"Model": {"Precision": "auto"}}), calibrate=x))
    assert plain == auto
    assert plain["x"] == FixedType(16, 5, False, "RND", "SAT")  # pixels 0..16
    assert not plain["relu1"].signed and plain["fc1"].signed


def test_types_the_user_wrote_win(digits):
    x = digits["x_train"]
    default16 = FixedType.parse("fixed<16,6,RND,SAT>")
    auto = _types(compile_model(digits["path"], calibrate=x))
    # a LayerType weight type: kept; everything else calibrated
    g = _types(compile_model(digits["path"], Config.from_dict(
        {"LayerType": {"Dense": {"Precision": {"weight": "fixed<12,4>"}}}}), calibrate=x))
    assert g["fc1.weight"] == g["fc2.weight"] == FixedType(12, 4)
    assert g["relu1"] == auto["relu1"] != default16
    # an explicit model type everywhere: calibration changes nothing
    cfg = Config.from_dict({"Model": {"Precision": "fixed<10,4>"}})
    assert _types(compile_model(digits["path"], cfg, calibrate=x)) == _types(compile_model(digits["path"], cfg))
    # a LayerName auto under an explicit model type: only that layer is calibrated
    g = _types(compile_model(digits["path"], Config.from_dict(
        {"Model": {"Precision": "fixed<16,6,RND,SAT>"}, "LayerName": {"relu1": {"Precision": "auto"}}}),
        calibrate=x))
    assert g["fc1"] == g["fc1.weight"] == g["relu2"] == default16
    assert g["relu1"] == auto["relu1"] != default16
    # only the results auto: the weights keep the explicit default
    g = _types(compile_model(digits["path"], Config.from_dict(
        {"Model": {"Precision": {"default": "fixed<16,6,RND,SAT>", "result": "auto"}}}), calibrate=x))
    assert g["fc2.weight"] == g["fc2.bias"] == default16
    assert g["relu2"] == auto["relu2"] and g["x"] == auto["x"] and not g["relu2"].signed


def test_auto_accumulator_is_the_exact_one(digits):
    x = digits["x_train"]
    exact = _types(compile_model(digits["path"], calibrate=x))
    auto_acc = _types(compile_model(digits["path"], Config.from_dict(
        {"Model": {"Precision": {"default": "auto", "accum": "auto"}}}), calibrate=x))
    assert auto_acc == exact


def test_other_settings_survive_calibration(digits):
    cfg = Config.from_dict({"Model": {"ReuseFactor": 4}, "LayerName": {"fc1": {"PE": 2, "SIMD": 8}}})
    plain = compile_model(digits["path"], cfg)
    calibrated = compile_model(digits["path"], cfg, calibrate=digits["x_train"])
    for a, b in zip(plain.nodes, calibrated.nodes):
        assert (a.attrs.get("pe"), a.attrs.get("simd")) == (b.attrs.get("pe"), b.attrs.get("simd"))
    assert calibrated.node("fc1").attrs["pe"] == 2


def test_auto_without_calibration_data_is_a_user_error(digits):
    with pytest.raises(UserError, match="auto.*--calibrate"):
        compile_model(digits["path"], Config.from_dict({"LayerName": {"fc2": {"Precision": {"weight": "auto"}}}}))


def test_unknown_layer_name_still_rejected_with_calibration(digits):
    with pytest.raises(UserError, match="fc9"):
        compile_model(digits["path"], Config.from_dict({"LayerName": {"fc9": {"Precision": "auto"}}}),
                      calibrate=digits["x_train"][:10])


# -- report ----------------------------------------------------------------------------------------

def test_calibration_report_per_layer(digits):
    x = digits["x_train"][:500]
    fixed = compile_model(digits["path"], calibrate=x)
    rows = cal.calibration_report(import_onnx(digits["path"]), fixed, x)
    assert [r["layer"] for r in rows] == ["x", "fc1", "relu1", "fc2", "relu2", "fc3", "softmax"]
    by = {r["layer"]: r for r in rows}
    assert by["x"]["max_abs_error"] == 0 and by["x"]["snr_db"] is None  # integers 0..16: exact
    assert by["fc1"]["weight_type"] == str(fixed.node("fc1").types["weight"])
    assert by["relu1"]["result_type"].startswith("ufixed<16,")
    for name in ("fc1", "relu1", "fc2", "relu2", "fc3"):
        assert by[name]["snr_db"] > 50, by[name]
        assert 0 < by[name]["mean_abs_error"] <= by[name]["max_abs_error"] < 0.05
    assert by["softmax"]["class_agreement"] >= 0.99
    json.dumps(cal.summary(import_onnx(digits["path"]), fixed, x))  # JSON-clean (no inf/NaN)


# -- command line ----------------------------------------------------------------------------------

def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_predict_with_calibration_prints_the_table(digits, tmp_path):
    x_cal, x = digits["x_train"][:500], digits["x_test"][:200]
    np.save(tmp_path / "cal.npy", x_cal)
    np.save(tmp_path / "x.npy", x)
    r = run_cli("predict", digits["path"], "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                "--calibrate", tmp_path / "cal.npy")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), predict(digits["path"], x, calibrate=x_cal))
    assert "calibration on 500 samples" in r.stderr
    for name in ("fc1", "relu2", "SNR dB", "ufixed<16,"):
        assert name in r.stderr
    assert r.stdout == ""


def test_cli_predict_auto_config_with_calibration(digits, tmp_path):
    np.save(tmp_path / "cal.npy", digits["x_train"][:500])
    np.save(tmp_path / "x.npy", digits["x_test"][:50])
    (tmp_path / "c.yml").write_text("Model:\n  Precision: auto\nLayerType:\n  Dense:\n    Precision: {weight: \"fixed<8,1>\"}\n")
    args = ["predict", digits["path"], "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
            "-c", tmp_path / "c.yml"]
    r = run_cli(*args)
    assert r.exit_code == 2 and "auto" in r.stderr and "--calibrate" in r.stderr
    r = run_cli(*args, "--calibrate", tmp_path / "cal.npy")
    assert r.exit_code == 0, r.stderr
    assert "fixed<8,1>" in r.stderr


def _bad_files(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((4, 64), np.nan))
    np.save(tmp_path / "shape.npy", np.zeros((4, 63)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 64)))
    np.savez(tmp_path / "arch.npz", x=np.zeros((4, 64)))
    (tmp_path / "text.npy").write_text("0 1 2\n")
    return {"missing.npy": "not found", "nan.npy": "NaN", "shape.npy": "shape [4, 63]",
            "empty.npy": "no calibration samples", "arch.npz": ".npz", "text.npy": "not a numpy .npy"}


@pytest.mark.parametrize("command", ["predict", "synth"])
def test_cli_bad_calibration_file_is_one_line_naming_it(digits, tmp_path, command):
    np.save(tmp_path / "x.npy", digits["x_test"][:5])
    for name, what in _bad_files(tmp_path).items():
        if command == "predict":
            args = ["predict", digits["path"], "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]
        else:
            args = ["synth", digits["path"], "-b", "pynq", "-o", tmp_path / "out", "--no-synth", "-q"]
        r = run_cli(*args, "--calibrate", tmp_path / name)
        assert r.exit_code == 2, (name, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / name}: "), (name, r.stderr)
        assert what in lines[0], (name, lines[0])
        assert not (tmp_path / "y.npy").exists() and not (tmp_path / "out").exists()


def test_cli_calibrate_with_float_is_refused(digits, tmp_path):
    np.save(tmp_path / "x.npy", digits["x_test"][:5])
    r = run_cli("predict", digits["path"], "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                "--float", "--calibrate", tmp_path / "x.npy")
    assert r.exit_code == 2 and r.stderr.startswith("error: --calibrate")


# -- hardware: calibrated types (unsigned inputs, integer bits beyond the width or below zero) ------

@pytest.fixture(scope="module")
def wide_range_model(tmp_path_factory):
    """A 16-8-3 MLP on inputs in the thousands (up to 16000)."""
    x, y = digits_like(800, seed=3)
    x = x[:, :16] * 1000
    params = train_mlp(x[:600], y[:600] % 3, [16, 8, 3], epochs=10)
    return export_onnx(params, tmp_path_factory.mktemp("wide") / "small.onnx"), x[:600], x[600:]


@pytest.mark.parametrize("width", [8, 16])
def test_every_layer_with_calibrated_types_is_bit_exact_in_hardware(wide_range_model, width):
    """Each layer's Amaranth component against the reference, on the reference's own inputs."""
    from stream_harness import run_stream

    from hetero.ops import op_of
    from hetero.reference import execute

    path, x_cal, x = wide_range_model
    graph = cal_graph(path, x_cal, width)
    assert graph.tensors["x"].dtype == FixedType(width, 14, False, "RND", "SAT")
    assert graph.node("fc1").types["weight"].int_bits < 0
    values = execute(graph, x[:12])
    for node in graph.nodes:
        hw = op_of(node).hardware(node, graph)
        expected = values[node.outputs[0]].reshape(12, -1)
        got, _, _ = run_stream(hw, values[node.inputs[0]].reshape(12, -1), expected.shape[1])
        np.testing.assert_array_equal(got, expected, err_msg=node.name)


# -- synth: the report, and the whole design stays bit-exact with calibrated types ----------------

@pytest.mark.verilator
@pytest.mark.slow
def test_synth_report_has_calibration_and_stays_bit_exact(wide_range_model, tmp_path):
    from hetero.flows.synth import synth

    path, x_cal, x = wide_range_model
    np.save(tmp_path / "cal.npy", x_cal)
    report = synth(path, "pynq", tmp_path / "out", inputs=x[:40], calibrate=tmp_path / "cal.npy",
                   synthesize=False)
    assert report["simulation"]["bit_exact"], report["simulation"]
    c = json.loads((tmp_path / "out" / "report.json").read_text())["calibration"]
    assert c["samples"] == 600
    assert [r["layer"] for r in c["layers"]] == ["x", "fc1", "relu1", "fc2", "softmax"]
    assert c["layers"][0]["result_type"] == "ufixed<16,14,RND,SAT>"
    assert report["float_agreement"]["class_agreement"] >= 0.95
