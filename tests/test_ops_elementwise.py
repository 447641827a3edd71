"""Data-movement and elementwise ops (Transpose, Squeeze/Unsqueeze/Flatten, Concat, Pad,
Resize/Upsample, Clip, LeakyRelu, table activations, Add/Sub/Mul of two tensors, Softmax and
LogSoftmax): import and shape inference, the float reference against onnxruntime, and the typed
reference against the float one (within the quantization error) and against hand computations."""

from fractions import Fraction

import numpy as np
import onnx
import pytest

import hetero.ops  # noqa: F401  (registers the ops of hetero/ops/__init__.py)
from hetero.ops import add, clip, concat, leaky_relu, pad, reshape, resize, sigmoid, softmax, transpose
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize
from hetero.ops import ONNX_TO_OP, REGISTRY, op_of
from hetero.frontend.onnx import import_onnx
from hetero.frontend.onnxrt import batch_free, run_float
from hetero.passes.pipeline import assign_precision
from hetero.reference import execute, predict

from conftest import parse_model



def check_float(model, x, rtol=1e-5, atol=1e-6):
    """Import, compare the float reference with onnxruntime; return the graph and the result."""
    g = import_onnx(model)
    got = predict(g, x)
    np.testing.assert_allclose(got, run_float(model, x), rtol=rtol, atol=atol)
    return g, got


def typed(g, cfg=None):
    return assign_precision(g, Config.from_dict(cfg or {}))


def rng_x(*shape, seed=0, scale=2.0):
    """Random inputs that float32 (onnxruntime) holds exactly."""
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32).astype(np.float64)


DEFAULT = FixedType.parse("fixed<16,6,RND,SAT>")  # Config()'s precision


def q(x, t=DEFAULT):
    """Real values of ``x`` quantized to ``t``."""
    return quantize(x, t) * t.lsb


# -- Transpose ----------------------------------------------------------------------------------

def test_transpose_float_typed_and_refused_batch_move():
    m = parse_model("g (float[N, 2, 3, 4] x) => (float[N, 3, 4, 2] y) { y = Transpose<perm = [0, 2, 3, 1]>(x) }")
    x = rng_x(5, 2, 3, 4)
    g, _ = check_float(m, x)
    assert g.nodes[0].op == "Transpose" and g.nodes[0].attrs["perm"] == (1, 2, 0)
    assert g.tensors["y"].shape == (3, 4, 2)
    gt = typed(g)
    assert gt.tensors["y"].dtype == DEFAULT
    np.testing.assert_array_equal(predict(gt, x), np.transpose(q(x), (0, 2, 3, 1)))  # bit-exact
    # its hardware (a regrouping of the beats): tests/test_hw_elementwise.py
    # identity permutation vanishes
    m = parse_model("g (float[N, 2, 3] x) => (float[N, 2, 3] y) { t = Transpose<perm = [0, 1, 2]>(x) \n y = Relu(t) }")
    assert [n.op for n in import_onnx(m).nodes] == ["Relu"]
    with pytest.raises(UserError, match="Transpose node 'y'.*batch axis"):
        import_onnx(parse_model("g (float[N, 2, 3] x) => (float[2, N, 3] y) { y = Transpose<perm = [1, 0, 2]>(x) }"))
    with pytest.raises(UserError, match="Transpose node 'y'"):
        import_onnx(parse_model("g (float[N, 2, 3] x) => (float[3, 2, N] y) { y = Transpose(x) }"))


def test_transpose_of_integers_keeps_them_integer():
    m = parse_model("""g (float[N, 2, 3] x) => (uint8[N, 3, 2] y) {
        q = QuantizeLinear(x, s, z)
        y = Transpose<perm = [0, 2, 1]>(q)
    }""", s=np.float32(0.05), z=np.uint8(100))
    x = rng_x(4, 2, 3)
    g, ref = check_float(m, x)
    assert g.tensors["y"].integer
    got = predict(typed(g), x)
    assert np.abs(got - ref).max() <= 1  # integers again, within one quantization step


# -- Squeeze, Unsqueeze, Flatten, Reshape --------------------------------------------------------

@pytest.mark.parametrize("opset,text,shape", [
    (13, "y = Squeeze(x, axes)", (3,)),
    (11, "y = Squeeze<axes = [1, -1]>(x)", (3,)),
    (13, "y = Squeeze(x)", (3,)),
    (13, "y = Unsqueeze(x, axes2)", (1, 3, 1, 1)),
    (11, "y = Unsqueeze<axes = [1, -1]>(x)", (1, 1, 3, 1, 1)),
    (13, "y = Flatten<axis = 2>(x)", (3,)),
    (13, "y = Flatten<axis = -3>(x)", (3,)),
])
def test_squeeze_unsqueeze_flatten(opset, text, shape):
    consts = {"axes": np.array([1, -1]), "axes2": np.array([-1])}
    consts = {k: v for k, v in consts.items() if f"{k})" in text}
    m = parse_model(f"g (float[N, 1, 3, 1] x) => (float y) {{ {text} }}", opset=opset, **consts)
    x = rng_x(4, 1, 3, 1)
    g, _ = check_float(m, x)
    assert g.tensors[g.outputs[0]].shape == shape
    np.testing.assert_array_equal(predict(typed(g), x).reshape(-1), q(x).reshape(-1))


@pytest.mark.parametrize("text,match", [
    ("y = Flatten<axis = 2>(x)", "axis=2 would merge the batch axis"),
    ("y = Flatten<axis = 0>(x)", "axis=0 would merge the batch axis"),
    ("y = Squeeze(x, axes)", "batch axis"),
    ("y = Unsqueeze(x, axes)", "batch axis"),
])
def test_reshapes_across_the_batch_axis_are_refused(text, match):
    m = parse_model(f"g (float[N, 2, 3] x) => (float y) {{ {text} }}", axes=np.array([0]))
    with pytest.raises(UserError, match=f"node 'y'.*{match}"):
        import_onnx(m)


def test_squeeze_of_a_dimension_not_one_is_refused():
    m = parse_model("g (float[N, 2, 3] x) => (float y) { y = Squeeze(x, axes) }", axes=np.array([1]))
    with pytest.raises(UserError, match="Squeeze node 'y': cannot squeeze axis 1 of size 2"):
        import_onnx(m)


def test_reshape_passes_a_model_scale_through():
    m = parse_model("""g (float[N, 2, 3] x) => (float[N, 6] y) {
        q = QuantizeLinear(x, s, z)
        d = DequantizeLinear(q, s, z)
        y = Reshape(d, shape)
    }""", s=np.float32(0.1), z=np.int8(3), shape=np.array([-1, 6]))
    x = rng_x(3, 2, 3)
    g, ref = check_float(m, x)
    gt = typed(g)
    y = gt.tensors["y"]
    assert y.scale == pytest.approx(0.1) and y.zero_point == 3
    assert np.abs(predict(gt, x) - ref).max() <= 0.1 + 1e-6


# -- Concat -------------------------------------------------------------------------------------

CONCAT = """g (float[N, 3] x) => (float[N, 6] y) {
    r = Relu(x)
    y = Concat<axis = 1>(x, r)
}"""


def test_concat_float_and_same_type_passes_through():
    x = rng_x(6, 3)
    g, ref = check_float(parse_model(CONCAT), x)
    assert g.nodes[1].attrs["axis"] == 0 and g.tensors["y"].shape == (6,)
    gt = typed(g)
    assert not gt.nodes[1].attrs["convert"] and gt.tensors["y"].dtype == DEFAULT
    np.testing.assert_array_equal(predict(gt, x), np.concatenate([q(x), np.maximum(q(x), 0)], axis=1))


def test_concat_of_different_types_converts_exactly_to_the_result_type():
    cfg = {"Model": {"Precision": "fixed<10,4,RND,SAT>"},
           "LayerName": {"r": {"Precision": {"result": "ufixed<8,4,TRN,SAT>"}},
                         "y": {"Precision": {"result": "fixed<8,3,RND,SAT>"}}}}
    x = np.array([[65 / 64, -3 / 64, 7.5]])
    g = typed(import_onnx(parse_model(CONCAT)), cfg)
    assert g.nodes[1].attrs["convert"] and str(g.tensors["y"].dtype) == "fixed<8,3,RND,SAT>"
    # x part: 6 -> 5 fraction bits, RND (half up), SAT at 127/32; relu part: 4 fraction bits
    # (65/64 truncated to 1.0), shifted to 5, SAT
    expected = [[33 / 32, -1 / 32, 127 / 32, 1.0, 0.0, 127 / 32]]
    np.testing.assert_array_equal(predict(g, x), expected)


def test_concat_of_model_scales_converts_with_integer_multipliers():
    m = parse_model("""g (float[N, 2, 2] x) => (float[N, 2, 4] y) {
        a = QuantizeLinear(x, sa, za)
        da = DequantizeLinear(a, sa, za)
        y = Concat<axis = -1>(da, x)
    }""", sa=np.float32(0.3), za=np.int8(-5))
    x = rng_x(5, 2, 2)
    g, ref = check_float(m, x)
    got = predict(typed(g), x)
    assert np.abs(got - ref).max() <= 0.3 + 2.0**-11 + 1e-6  # the quantizer may flip one step
    assert np.mean(np.abs(got - ref) <= 2.0**-11 + 1e-6) > 0.9


def test_concat_refusals():
    with pytest.raises(UserError, match="Concat node 'y'.*batch axis"):
        import_onnx(parse_model("g (float[N, 3] x) => (float y) { r = Relu(x) \n y = Concat<axis = 0>(x, r) }"))
    with pytest.raises(UserError, match="Concat node 'y': input 'c' is a constant"):
        import_onnx(parse_model("g (float[N, 3] x) => (float y) { y = Concat<axis = 1>(x, c) }", c=np.ones((1, 3))))


# -- Pad ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset,text,consts", [
    (13, 'y = Pad<mode = "constant">(x, pads, v)', {"pads": [0, 1, 0, 2, 0, 0, 3, 1], "v": np.float32(0.75)}),
    (13, "y = Pad(x, pads)", {"pads": [0, 0, 1, 1, 0, 1, 1, 0]}),
    (13, 'y = Pad<mode = "reflect">(x, pads)', {"pads": [0, 0, 2, 1, 0, 0, 1, 2]}),
    (13, 'y = Pad<mode = "edge">(x, pads)', {"pads": [0, 1, 2, 0, 0, 2, 0, 3]}),
    (13, "y = Pad(x, pads)", {"pads": [0, 0, -1, 2, 0, 1, 1, -2]}),
    (19, 'y = Pad<mode = "wrap">(x, pads)', {"pads": [0, 0, 1, 2, 0, 0, 2, 1]}),
    (2, 'y = Pad<pads = [0, 0, 1, 0, 0, 1, 0, 2], value = -1.5>(x)', {}),
    (18, "y = Pad(x, pads, v, axes)", {"pads": [1, 0, 0, 2], "v": np.float32(2.0), "axes": [-1, 1]}),
])
def test_pad(opset, text, consts):
    consts = {k: (np.array(v) if isinstance(v, list) else v) for k, v in consts.items()}
    m = parse_model(f"g (float[N, 2, 3, 4] x) => (float y) {{ {text} }}", opset=opset, **consts)
    x = rng_x(3, 2, 3, 4)
    g, ref = check_float(m, x)
    got = predict(typed(g), x)
    assert np.abs(got - ref).max() <= 2.0**-11  # values and pad constants all are input values


def test_pad_typed_constant_is_the_nearest_raw_value():
    m = parse_model("g (float[N, 2] x) => (float[N, 4] y) { y = Pad(x, pads, v) }",
              pads=np.array([0, 1, 0, 1]), v=np.float32(0.3))
    g = typed(import_onnx(m), {"Model": {"Precision": "fixed<8,4,RND,SAT>"}})
    assert g.nodes[0].attrs["raw_value"] == 5  # 0.3 * 16 = 4.8 -> 5
    np.testing.assert_array_equal(predict(g, np.array([[1.0, -0.5]])), [[0.3125, 1.0, -0.5, 0.3125]])


def test_pad_of_the_batch_axis_is_refused():
    m = parse_model("g (float[N, 2] x) => (float y) { y = Pad(x, pads) }", pads=np.array([1, 0, 0, 0]))
    with pytest.raises(UserError, match="Pad node 'y'.*batch axis"):
        import_onnx(m)


# -- Resize / Upsample --------------------------------------------------------------------------

def reference_evaluator(model, x):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(batch_free(model)).run(None, {"x": x.astype(np.float32)})[0]


RESIZE_CASES = [
    ("asymmetric", "floor", [1, 1, 2, 2], None),
    ("asymmetric", "floor", [1, 1, 1.5, 2.5], None),
    ("half_pixel", "round_prefer_floor", [1, 1, 2, 3], None),
    ("half_pixel", "round_prefer_floor", [1, 1, 0.5, 0.5], None),
    ("half_pixel", "round_prefer_ceil", [1, 1, 0.5, 1.75], None),
    ("pytorch_half_pixel", "round_prefer_floor", [1, 1, 1.6, 0.6], None),
    ("align_corners", "round_prefer_floor", None, [3, 2, 7, 3]),
    ("asymmetric", "ceil", None, [3, 2, 5, 9]),
    ("half_pixel", "floor", None, [3, 2, 2, 5]),  # sizes[0]: the batch, ignored
    ("half_pixel_symmetric", "round_prefer_ceil", [1, 1, 1.7, 2.2], None),
]


@pytest.mark.parametrize("coord,nearest,scales,sizes", RESIZE_CASES)
def test_resize_nearest_matches_onnxruntime_and_onnx_reference(coord, nearest, scales, sizes):
    attrs = f'<mode = "nearest", coordinate_transformation_mode = "{coord}", nearest_mode = "{nearest}">'
    if scales is not None:
        m = parse_model(f"g (float[N, 2, 4, 4] x) => (float y) {{ y = Resize{attrs}(x, , s) }}", s=np.array(scales, dtype=np.float32))
    else:
        m = parse_model(f"g (float[N, 2, 4, 4] x) => (float y) {{ y = Resize{attrs}(x, , , s) }}", s=np.array(sizes))
    x = rng_x(3, 2, 4, 4)
    g, ref = check_float(m, x, rtol=0, atol=0)
    np.testing.assert_array_equal(ref, reference_evaluator(m, x))
    np.testing.assert_array_equal(predict(typed(g), x), q(ref))  # a gather of quantized inputs


@pytest.mark.parametrize("opset,text,consts", [
    (9, 'y = Upsample<mode = "nearest">(x, s)', {"s": np.array([1, 1, 2, 3], dtype=np.float32)}),
    (7, 'y = Upsample<mode = "nearest", scales = [1.0, 1.0, 3.0, 2.0]>(x)', {}),
    (10, 'y = Resize<mode = "nearest">(x, s)', {"s": np.array([1, 1, 2, 1.5], dtype=np.float32)}),
    (10, 'y = Resize<mode = "nearest">(x, s)', {"s": np.array([1, 1, 0.6, 0.5], dtype=np.float32)}),
    (13, 'y = Resize<mode = "nearest">(x, , s)', {"s": np.array([1, 1, 2, 2], dtype=np.float32)}),
    (18, 'y = Resize<mode = "nearest", axes = [3, 2], keep_aspect_ratio_policy = "not_larger">(x, , , s)',
     {"s": np.array([7, 9])}),
])
def test_upsample_and_old_resize(opset, text, consts):
    m = parse_model(f"g (float[N, 2, 4, 4] x) => (float y) {{ {text} }}", opset=opset, **consts)
    x = rng_x(3, 2, 4, 4)
    check_float(m, x, rtol=0, atol=0)


def test_resize_refusals():
    with pytest.raises(UserError, match="Resize node 'y': mode 'linear' not supported; only nearest"):
        import_onnx(parse_model('g (float[N, 2, 4] x) => (float y) { y = Resize<mode = "linear">(x, , s) }',
                          s=np.array([1, 1, 2], dtype=np.float32)))
    with pytest.raises(UserError, match="Resize node 'y': scale 2.0 on the batch axis"):
        import_onnx(parse_model('g (float[N, 2, 4] x) => (float y) { y = Resize(x, , s) }',
                          s=np.array([2, 1, 2], dtype=np.float32)))
    with pytest.raises(UserError, match="tf_crop_and_resize"):
        import_onnx(parse_model('g (float[N, 2, 4] x) => (float y) { y = Resize<coordinate_transformation_mode '
                          '= "tf_crop_and_resize">(x, r, s) }', s=np.array([1, 1, 2], dtype=np.float32),
                          r=np.array([0, 0, 0, 1, 1, 1], dtype=np.float32)))


# -- Clip ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset,text,consts", [
    (13, "y = Clip(x, lo, hi)", {"lo": np.float32(-0.5), "hi": np.float32(1.25)}),
    (13, "y = Clip(x, , hi)", {"hi": np.float32(0.7)}),
    (13, "y = Clip(x, lo)", {"lo": np.float32(0.2)}),
    (6, "y = Clip<min = 0.0, max = 6.0>(x)", {}),
    (6, "y = Clip<max = 1.0>(x)", {}),
    (13, "y = Clip(x, lo, hi)", {"lo": np.float32(1.0), "hi": np.float32(-1.0)}),
])
def test_clip(opset, text, consts):
    m = parse_model(f"g (float[N, 5] x) => (float[N, 5] y) {{ {text} }}", opset=opset, **consts)
    x = rng_x(8, 5, scale=4)
    g, ref = check_float(m, x)
    got = predict(typed(g), x)
    assert np.abs(got - ref).max() <= 2.0**-11 + 1e-7


def test_clip_typed_saturates_in_the_raw_domain():
    m = parse_model("g (float[N, 4] x) => (float[N, 4] y) { y = Clip(x, lo, hi) }", lo=np.float32(0.3), hi=np.float32(2.0))
    g = typed(import_onnx(m), {"Model": {"Precision": "fixed<8,4,RND,SAT>"}})
    assert (g.nodes[0].attrs["raw_min"], g.nodes[0].attrs["raw_max"]) == (5, 32)  # 0.3 * 16 = 4.8 -> 5
    assert g.tensors["y"].dtype == g.tensors["x"].dtype
    np.testing.assert_array_equal(predict(g, np.array([[0.25, 0.3125, 1.0, 3.0]])), [[0.3125, 0.3125, 1.0, 2.0]])
    # huge bounds (ONNX's defaults are float max) never wrap
    m = parse_model("g (float[N, 4] x) => (float[N, 4] y) { y = Clip(x, lo, hi) }", lo=np.float32(-3e38), hi=np.float32(3e38))
    g = typed(import_onnx(m), {"Model": {"Precision": "fixed<8,4>"}})
    assert (g.nodes[0].attrs["raw_min"], g.nodes[0].attrs["raw_max"]) == (-128, 127)


# -- LeakyRelu ----------------------------------------------------------------------------------

def test_leaky_relu():
    m = parse_model("g (float[N, 6] x) => (float[N, 6] y) { y = LeakyRelu<alpha = 0.1>(x) }")
    x = rng_x(10, 6)
    g, ref = check_float(m, x)
    gt = typed(g)
    # input quantization (half an LSB, scaled by at most 1) plus the output rounding
    assert np.abs(predict(gt, x) - ref).max() <= 2.0**-10 + 1e-9
    assert op_of(gt.nodes[0]).macs(gt.nodes[0], gt) == 6
    # alpha a power of two: exact shifts; 6 -> 4 fraction bits with RND
    m = parse_model("g (float[N, 4] x) => (float[N, 4] y) { y = LeakyRelu<alpha = 0.25>(x) }")
    g = typed(import_onnx(m), {"Model": {"Precision": "fixed<10,4,RND,SAT>"},
                               "LayerName": {"y": {"Precision": {"result": "fixed<8,4,RND,SAT>"}}}})
    x = np.array([[-1.0, -0.15625, 0.5, 2.046875]])  # raw -64, -10, 32, 131 (LSB 1/64)
    # in output LSBs (1/16): -64 * 0.25 / 4 = -4; -10 * 0.25 / 4 = -0.625 -> -1 (RND);
    # 32 / 4 = 8; 131 / 4 = 32.75 -> 33
    np.testing.assert_array_equal(predict(g, x), [[-0.25, -1 / 16, 0.5, 33 / 16]])


# -- table activations --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Tanh(x)", "Selu(x)", "Selu<alpha = 1.5, gamma = 0.5>(x)", "Elu(x)",
                                  "Elu<alpha = 0.3>(x)", "Softplus(x)", "HardSigmoid(x)",
                                  "HardSigmoid<alpha = 0.3, beta = 0.4>(x)"])
def test_table_activations(text):
    m = parse_model(f"g (float[N, 7] x) => (float[N, 7] y) {{ y = {text} }}")
    x = np.concatenate([rng_x(6, 7, scale=3), [[-40, -1e-3, 0, 1e-3, 40, 2.5, -2.5]]])
    g, ref = check_float(m, x)
    cfg = {"Model": {"Precision": {"default": "fixed<16,6,RND,SAT>", "result": "fixed<12,3,RND,SAT>"}}}
    gt = typed(g, cfg)
    t_out = gt.tensors["y"].dtype
    got = predict(gt, x)
    # plain fixed point, as hls4ml: a binned table of TableSize (1024) entries (HardSigmoid: an
    # exact line); the table adds half a bin times the largest slope (hetero/ops/sigmoid.py)
    node = gt.nodes[0]
    assert node.attrs.get("table_size") == (None if node.op == "HardSigmoid" else 1024)
    span, slope = {"Tanh": (8, 1.0), "Softplus": (16, 1.0), "HardSigmoid": (0, 0.0),
                   "Elu": (8, node.attrs.get("alpha")), "Selu": (8, np.prod([node.attrs.get(k, 1) for k in ("alpha", "gamma")]))}[node.op]
    in_range = (np.abs(x) < 3.9) & (np.abs(ref) < 3.9)  # the input and output types hold +-4
    # within: slope (< 2) times half an input LSB, plus half an output LSB (both 2**-9), plus the table's
    assert np.abs(got - ref)[in_range].max() <= 2.0 * 2.0**-10 + 2.0**-10 + span / 1024 / 2 * slope + 2.0**-13


def test_sigmoid_keeps_its_table():
    m = parse_model("g (float[N, 4] x) => (float[N, 4] y) { y = Sigmoid(x) }")
    x = rng_x(5, 4)
    g, ref = check_float(m, x)
    gt = typed(g, {"Model": {"TableSize": 256}})
    assert gt.nodes[0].attrs["table_size"] == 256 and "table" in gt.nodes[0].params
    assert np.abs(predict(gt, x) - ref).max() < 16 / 256 / 4 + 2**-10


# -- Add, Sub, Mul of two computed tensors -------------------------------------------------------

@pytest.fixture
def two_tensor_sub_mul(monkeypatch):
    """ONNX Sub and Mul of two computed tensors as ScaleShift hands them over."""
    monkeypatch.setitem(ONNX_TO_OP, "Sub", REGISTRY["Sub"])
    monkeypatch.setitem(ONNX_TO_OP, "Mul", REGISTRY["Mul"])


def test_residual_add_is_exact_on_power_of_two_types():
    m = parse_model("g (float[N, 4] x) => (float[N, 4] y) { r = Relu(x) \n y = Add(r, x) }")
    x = rng_x(8, 4)
    g, ref = check_float(m, x)
    assert g.nodes[1].op == "Add" and g.nodes[1].inputs == ("r", "x") and not g.nodes[1].params
    cfg = {"Model": {"Precision": "fixed<10,4,RND,SAT>"},
           "LayerName": {"r": {"Precision": {"result": "ufixed<6,2,TRN,SAT>"}},
                         "y": {"Precision": {"result": "fixed<8,4,RND,SAT>"}}}}
    gt = typed(g, cfg)
    x = np.array([[1.015625, -0.328125, 3.96875, -8.0]])  # raw (6 fraction bits) 65, -21, 254, -512
    # relu: ufixed<6,2> (4 fraction bits, TRN, max 63/16): 1.0, 0, 3.9375, 0
    # sums at 6 fraction bits: 129, -21, 506, -512 -> 4 fraction bits, RND: 32.25 -> 32,
    # -5.25 -> -5, 126.5 -> 127 (SAT at 127), -128
    np.testing.assert_array_equal(predict(gt, x), [[2.0, -5 / 16, 127 / 16, -8.0]])
    assert not hasattr(op_of(gt.nodes[1]), "macs")


def test_add_broadcasts_per_inference_shapes():
    m = parse_model("""g (float[N, 3, 1] x) => (float[N, 3, 3] y) {
        t = Transpose<perm = [0, 2, 1]>(x)
        y = Add(x, t)
    }""")
    x = rng_x(4, 3, 1)
    g, ref = check_float(m, x)
    assert g.tensors["y"].shape == (3, 3)
    np.testing.assert_array_equal(predict(typed(g), x), q(q(x) + np.transpose(q(x), (0, 2, 1))))


def test_add_of_model_scales_uses_integer_multipliers():
    m = parse_model("""g (float[N, 6] x) => (float[N, 6] y) {
        a = QuantizeLinear(x, sa, za)
        da = DequantizeLinear(a, sa, za)
        b = QuantizeLinear(x, sb)
        db = DequantizeLinear(b, sb)
        y = Add(da, db)
    }""", sa=np.float32(0.07), za=np.int8(3), sb=np.float32(0.011))
    x = rng_x(50, 6)
    g, ref = check_float(m, x)
    gt = typed(g)
    got = predict(gt, x)
    assert np.abs(got - ref).max() <= 0.07 + 0.011 + 2.0**-11 + 1e-6  # a quantizer may flip one step
    assert np.mean(np.abs(got - ref) <= 2.0**-11 + 1e-6) > 0.9
    # against exact rational arithmetic on the integers the quantizers produced
    ints = {k: np.asarray(v, dtype=np.int64) for k, v in execute(gt, x).items()}
    sa, sb = Fraction(float(np.float32(0.07))), Fraction(float(np.float32(0.011)))
    for qa, qb, y in zip(ints["a"].reshape(-1), ints["b"].reshape(-1), ints["y"].reshape(-1)):
        exact = ((int(qa) - 3) * sa + int(qb) * sb) * 1024
        assert abs(int(y) - exact) <= Fraction(1, 2) + Fraction(1, 1000)


@pytest.mark.usefixtures("two_tensor_sub_mul")
@pytest.mark.parametrize("op", ["Sub", "Mul"])
def test_sub_and_mul_of_two_tensors(op):
    m = parse_model(f"""g (float[N, 2, 3] x) => (float[N, 2, 3] y) {{
        t = Tanh(x)
        y = {op}(x, t)
    }}""")
    x = rng_x(6, 2, 3)
    g, ref = check_float(m, x)
    assert g.nodes[1].op == op
    gt = typed(g)
    # hls4ml's binned tanh: 1024 bins over [-4, 4), each the tanh of its centre
    idx = np.clip(np.floor((q(x) + 4) * 128), 0, 1023)
    tanh = q(np.tanh(-4 + (idx + 0.5) / 128))
    expected = q(x) - tanh if op == "Sub" else q(q(x) * tanh)
    np.testing.assert_array_equal(predict(gt, x), expected)
    if op == "Mul":
        assert op_of(gt.nodes[1]).macs(gt.nodes[1], gt) == 6


def test_two_tensor_add_of_different_ranks_is_refused():
    m = parse_model("""g (float[N, 4] x) => (float y) {
        u = Unsqueeze(x, axes)
        y = Add(u, x)
    }""", axes=np.array([1]))
    with pytest.raises(UserError, match="Add node 'y'.*different ranks"):
        import_onnx(m)


# -- Softmax, LogSoftmax ------------------------------------------------------------------------

@pytest.mark.parametrize("opset,text,axes", [
    (13, "Softmax<axis = 1>(x)", (0,)),
    (13, "Softmax(x)", (2,)),
    (13, "LogSoftmax<axis = -2>(x)", (1,)),
    (11, "Softmax<axis = 2>(x)", (1, 2)),
    (11, "LogSoftmax(x)", (0, 1, 2)),
])
def test_softmax_on_any_axis(opset, text, axes):
    m = parse_model(f"g (float[N, 2, 3, 4] x) => (float[N, 2, 3, 4] y) {{ y = {text} }}", opset=opset)
    x = rng_x(3, 2, 3, 4)
    g, _ = check_float(m, x)
    assert g.nodes[0].attrs["axes"] == axes


def test_softmax_typed_is_argmax_over_the_last_axis_only():
    m = parse_model("g (float[N, 2, 5] x) => (float[N, 2, 5] y) { y = Softmax(x) }")
    x = rng_x(4, 2, 5)
    g = typed(import_onnx(m))
    assert g.tensors["y"].shape == (2, 1)
    np.testing.assert_array_equal(predict(g, x), np.argmax(q(x), axis=-1)[..., None])
    m = parse_model("g (float[N, 2, 5] x) => (float[N, 2, 5] y) { y = Softmax<axis = 1>(x) }")
    with pytest.raises(UserError, match="argmax over the last axis only"):
        typed(import_onnx(m))
    with pytest.raises(UserError, match="Softmax node 'y'.*batch axis"):
        import_onnx(parse_model("g (float[N, 5] x) => (float[N, 5] y) { y = Softmax<axis = 0>(x) }"))


def test_dropout_in_training_mode_is_refused_unless_its_ratio_is_zero():
    text = "g (float[N, 3] x) => (float[N, 3] y) { y = Dropout(x, r, t) }"
    with pytest.raises(UserError, match="Dropout node 'y': training mode"):
        import_onnx(parse_model(text, r=np.float32(0.3), t=np.array(True)))
    x = rng_x(2, 3)
    check_float(parse_model(text, r=np.float32(0.0), t=np.array(True)), x)
    check_float(parse_model(text, r=np.float32(0.3), t=np.array(False)), x)


def test_sigmoid_of_a_model_scale_is_the_exact_function():
    m = parse_model("""g (float[N, 4] x) => (float[N, 4] y) {
        a = QuantizeLinear(x, s, z)
        d = DequantizeLinear(a, s, z)
        y = Sigmoid(d)
    }""", s=np.float32(0.03), z=np.int8(-4))
    x = rng_x(6, 4)
    g, ref = check_float(m, x)
    gt = typed(g)
    ints = execute(gt, x)["a"]  # the model quantizer's integers
    real = (ints + 4) * float(np.float32(0.03))
    np.testing.assert_array_equal(predict(gt, x), q(1 / (1 + np.exp(-real))))
    assert np.abs(predict(gt, x) - ref).max() <= 0.03 / 4 + 2.0**-11 + 1e-6  # a quantizer step may flip
    # its hardware is a table of these values: tests/test_hw_elementwise.py
