"""Model quantizers (QONNX, QDQ) and exact integer requantization, on fixtures and real models."""

import csv

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import SHARED, model_path
from hetero.ir.config import Config
from hetero.ir.fixed import FixedType, requantize
from hetero.frontend.onnx import import_onnx, load_model
from hetero.frontend.onnxrt import run_float
from hetero.passes.pipeline import assign_precision, simplify
from hetero.ir.quant import AP_ROUNDING, QuantSpec, make_requant, requant_to_fixed, round_float, round_shift
from hetero.reference import execute, predict


@pytest.mark.parametrize("mode", ["HALF_EVEN", "HALF_UP", "HALF_DOWN", "HALF_AWAY", "HALF_ZERO",
                                  "FLOOR", "CEIL", "TO_ZERO"])
def test_round_shift_equals_float_rounding(mode):
    v = np.arange(-4096, 4097, dtype=np.int64)
    for shift in (0, 1, 3, 7):
        assert np.array_equal(round_shift(v, shift, mode), round_float(v / 2.0 ** shift, mode))


@pytest.mark.parametrize("rounding", sorted(AP_ROUNDING))
@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "SAT_ZERO", "SAT_SYM"])
def test_requant_to_fixed_equals_ap_fixed_assignment(rounding, overflow):
    """A power-of-two requantization is exactly ap_fixed's (fixed.requantize is proven
    against g++ in test_fixed.py)."""
    t = FixedType(6, 2, True, rounding, overflow)
    x = np.arange(-3000, 3000, dtype=np.int64)
    rq = requant_to_fixed(2.0 ** -7 / t.lsb, 0.0, t, in_bits=13)
    assert np.array_equal(rq(x), requantize(x, 7, t))


def test_requant_non_power_of_two_is_exact_rounding():
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 20), 1 << 20, size=20000)
    for ratio in (0.1234567, 3.3, 1 / 3, 0.0009765):
        rq = make_requant(ratio, 0.25, -128, 127, "HALF_EVEN", in_bits=21)
        want = np.clip(np.round(x * ratio + 0.25), -128, 127)
        assert np.mean(rq(x) == want) > 0.9999


def test_quantize_linear_matches_onnxruntime_on_ties():
    """QuantizeLinear rounds half to even, then adds the zero point (ties included)."""
    x = (np.arange(-300, 300) * 0.5).astype(np.float32)  # every .5 is a tie at scale 1
    spec = QuantSpec("linear", np.asarray(1.0), np.asarray(3.0), -128, 127)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 600])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT8, [1, 600])],
                              [numpy_helper.from_array(np.float32(1.0), "s"), numpy_helper.from_array(np.int8(3), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    import onnxruntime as ort
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x[None]})[0][0]
    assert np.array_equal(spec.integers(x), got)
    # and the imported graph, float and typed, gives the same integers
    g = import_onnx(model)
    assert np.array_equal(predict(g, x[None]), got[None])
    assert np.array_equal(predict(assign_precision(g, Config()), x[None]), got[None])


def _qonnx_mlp(weight_bits=3, act_bits=3, scale=0.37):
    """x -> Quant(input) -> MatMul(Quant(W)) -> BatchNorm -> Relu -> Quant -> MatMul -> y"""
    rng = np.random.default_rng(1)
    dom = "qonnx.custom_op.general"
    inits = {
        "W1": rng.normal(size=(8, 6)).astype(np.float32), "W2": rng.normal(size=(6, 4)).astype(np.float32),
        "s_in": np.float32(0.25), "s_w": np.float32(0.3), "s_a": np.float32(scale), "z": np.float32(0.0),
        "bw": np.float32(weight_bits), "ba": np.float32(act_bits), "b8": np.float32(8),
        "g": rng.uniform(0.5, 2, 6).astype(np.float32), "be": rng.normal(size=6).astype(np.float32),
        "m": rng.normal(size=6).astype(np.float32), "v": rng.uniform(0.5, 2, 6).astype(np.float32),
    }
    nodes = [
        helper.make_node("Quant", ["x", "s_in", "z", "b8"], ["xq"], domain=dom, signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["W1", "s_w", "z", "bw"], ["w1q"], domain=dom, signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("MatMul", ["xq", "w1q"], ["h"]),
        helper.make_node("BatchNormalization", ["h", "g", "be", "m", "v"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["hr"]),
        helper.make_node("Quant", ["hr", "s_a", "z", "ba"], ["hq"], domain=dom, signed=0, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["W2", "s_w", "z", "bw"], ["w2q"], domain=dom, signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("MatMul", ["hq", "w2q"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "qmlp", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(dom, 1)]), inits


def test_qonnx_mlp_fuses_into_integer_layers_and_matches_its_definition():
    model, w = _qonnx_mlp()
    g = simplify(import_onnx(model))
    assert [n.op for n in g.nodes] == ["Quantize", "Dense", "Dense"]
    first = g.nodes[1]
    assert first.attrs["relu"] and first.attrs["out_spec"].qmax == 7
    assert np.abs(first.params["Wq"]).max() <= 3  # 3-bit narrow weights: -3..3
    # the QONNX definition by hand, in float32 like qonnx's executor
    x = np.random.default_rng(2).normal(size=(500, 8)).astype(np.float32) * 4

    def quant(v, s, bits, signed, narrow):
        lo = -(2 ** (bits - 1)) + narrow if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
        return np.round(np.clip(v / s, lo, hi)) * s

    xq = quant(x, w["s_in"], 8, 1, 0)
    h = xq @ quant(w["W1"], w["s_w"], 3, 1, 1)
    hb = (h - w["m"]) / np.sqrt(w["v"] + 1e-5) * w["g"] + w["be"]
    hq = quant(np.maximum(hb, 0), w["s_a"], 3, 0, 0)
    want = hq @ quant(w["W2"], w["s_w"], 3, 1, 1)
    np.testing.assert_allclose(predict(g, x), want, rtol=1e-4, atol=1e-4)
    typed = assign_precision(g, Config())
    vt, vf = execute(typed, x), execute(g, x)
    t_h = typed.tensors[typed.nodes[1].outputs[0]]
    assert (t_h.dtype.width, t_h.dtype.signed) == (3, False)
    # the hidden integers are those of the definition (up to float32 ties)
    assert np.mean(np.isclose(t_h.to_real(vt[t_h.name]), vf[t_h.name], rtol=1e-6)) > 0.999
    np.testing.assert_allclose(predict(typed, x), want, atol=2 ** -9)


KWS = SHARED / "data" / "kws_w3a3"


def kws_data():
    if not (KWS / "y_labels.csv").is_file():
        pytest.skip("KWS-W3A3 test data not present")
    rows = list(csv.reader(open(KWS / "y_labels.csv")))
    q = np.stack([np.fromfile(KWS / r[0].strip(), dtype=np.int8) for r in rows]).astype(np.float64)
    return q, np.array([int(r[2]) for r in rows])


@pytest.mark.parametrize("name", ["finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx",
                                  "finn_kws_mlp_w3a3_mlperftiny_v0.7_qcdq.onnx"])
def test_kws_w3a3_scores_as_published(name):
    """MLPerf Tiny v0.7 KWS-W3A3: 82.5 % top-1 on its 1000 test inputs (published, on hardware)."""
    q, labels = kws_data()
    g = simplify(import_onnx(model_path(name)))
    first = g.nodes[0]
    spec = first.attrs["spec"]
    x = ((q - float(spec.zero_point)) * float(spec.scale)).reshape(-1, 1, 10, 49)
    typed = assign_precision(g, Config())
    accuracy = np.mean(predict(typed, x).argmax(1) == labels)
    assert abs(accuracy - 0.825) <= 0.005, accuracy


def test_qdq_autoencoder_equals_onnxruntime():
    """MLPerf Tiny AD01 int8 (QDQ from TFLite): int8 in, int8 out, against onnxruntime."""
    path = model_path("mlperftiny_ad01_autoencoder_int8_qdq_tf2onnx.onnx")
    model = load_model(path)
    g = simplify(import_onnx(model))
    typed = assign_precision(g, Config())
    assert typed.tensors[typed.inputs[0]].dtype == FixedType(8, 8)
    assert typed.tensors[typed.outputs[0]].integer
    x = np.random.default_rng(0).integers(-128, 128, size=(200, 640)).astype(np.float64)
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString())
    name = sess.get_inputs()[0].name
    want = np.concatenate([sess.run(None, {name: x[k:k + 1].astype(np.int8)})[0] for k in range(len(x))])
    pf = predict(g, x)  # float mode: onnxruntime's arithmetic up to float32-vs-float64 ties
    assert np.abs(pf - want).max() <= 1 and np.mean(pf == want) > 0.9999
    got = predict(typed, x)
    assert np.abs(got - want).max() <= 1  # integer requantization: at most one LSB on float ties
    assert np.mean(got == want) > 0.99


@pytest.mark.parametrize("name", ["finn_tfc_1w1a_qonnxzoo.qonnx.onnx", "finn_tfc_1w1a_qonnxzoo_std.onnx",
                                  "finn_tfc_2w2a_qonnxzoo.qonnx.onnx", "finn_unsw_nb15_mlp_w2a2_qonnxzoo.qonnx.onnx",
                                  "hls4ml_examplemodels_bnn_model_fc_1layer.onnx"])
def test_quantized_mlps_typed_equal_their_float_definition(name):
    g = simplify(import_onnx(model_path(name)))
    typed = assign_precision(g, Config())
    shape = (300,) + g.tensors[g.inputs[0]].shape
    x = np.random.default_rng(3).normal(size=shape)
    vf, vt = execute(g, x), execute(typed, x)
    quantized = set()  # tensors a model quantizer made from quantized inputs (or the input)
    for n in typed.nodes:  # ... equal the model's own values
        t = typed.tensors[n.outputs[0]]
        if not (n.op == "Quantize" or n.attrs.get("out_spec")):
            continue
        if n.op == "Quantize" or all(i in quantized for i in n.inputs):
            quantized.add(n.outputs[0])
        if n.outputs[0] in quantized and n.outputs[0] not in typed.outputs:
            assert np.mean(np.isclose(t.to_real(vt[t.name]), vf[t.name], rtol=1e-6)) > 0.999, n.name
    out = typed.tensors[typed.outputs[0]]
    assert np.mean(out.to_real(vt[out.name]).argmax(-1) == vf[out.name].argmax(-1)) > 0.99
