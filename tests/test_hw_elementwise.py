"""Hardware of the elementwise, merge and data-movement ops against their references (bit-exact)
and their cycle models (exact), in Amaranth's simulator, on single-op graphs imported from tiny
ONNX models: 1-beat vectors and multi-beat images, plain fixed point and model-quantized
tensors, and one run under random backpressure per op."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.hw.lanes import stream_layout
from hetero.hw.stream import from_beats, tensor_layouts, to_beats
from hetero.ir.graph import Graph
from hetero.frontend.onnx import import_onnx
from hetero.ops import op_of
from hetero.passes.pipeline import pipeline, run_pipeline

from conftest import parse_model
from stream_harness import run_beats


def build(text: str, cfg=None, opset: int = 13, **consts) -> Graph:
    """A typed graph from onnx.parser text (``consts`` become initializers)."""
    model = parse_model(text, opset, **consts)
    return run_pipeline(import_onnx(model), pipeline(Config.from_dict(cfg or {}), None))


def random_raw(t, shape, n, rng):
    """``n`` random raw values of tensor ``t``'s type (its extremes included)."""
    lo, hi = t.dtype.min_raw, t.dtype.max_raw
    x = rng.integers(lo, hi, size=(n,) + tuple(shape), endpoint=True)
    x.reshape(n, -1)[0, 0], x.reshape(n, -1)[-1, -1] = lo, hi
    return x


def check(graph: Graph, op: str, n: int = 5, seed: int = 0, backpressure: float = 0.3, inputs=None):
    """Run the last ``op`` node of ``graph`` on random raw inputs: bit-exact against its reference, its
    cycle model exact, then again under random backpressure. Returns (inputs, outputs)."""
    node = [nd for nd in graph.nodes if nd.op == op][-1]  # the last one: after any input quantizer
    o = op_of(node)
    rng = np.random.default_rng(seed)
    ts = [graph.tensors[i] for i in node.inputs]
    xs = inputs if inputs is not None else [random_raw(t, t.shape, n, rng) for t in ts]
    expected = o.reference(node, graph, xs)[0]
    t_out = graph.tensors[node.outputs[0]]
    layouts = tensor_layouts(graph)  # as the top level streams them
    lay_out = layouts[node.outputs[0]]
    beats = [to_beats(x, t.shape, layouts[t.name]) for x, t in zip(xs, ts)]
    feed = beats if len(beats) > 1 else beats[0]
    for bp in (0.0, backpressure):
        r = run_beats(o.hardware(node, graph), feed, lay_out.beats, lay_out.lanes, backpressure=bp, seed=seed)
        got = from_beats(r.outputs, t_out.shape, lay_out)
        np.testing.assert_array_equal(got, expected)
        if bp == 0.0:
            c = o.cycles(node, graph)
            assert r.latency == c.latency
            assert r.intervals == {c.interval}
    return xs, expected


VEC = "g (float[N, 6] x) => (float[N, 6] y) {{ {body} }}"
IMG = "g (float[N, 3, 2, 3] x) => (float[N, 3, 2, 3] y) {{ {body} }}"
# the same op after a model quantizer (scale 0.05, zero point -3) on an image
QIMG = """g (float[N, 3, 2, 3] x) => (float[N, 3, 2, 3] y) {{
    q = QuantizeLinear(x, s, z)
    d = DequantizeLinear(q, s, z)
    {body}
}}"""
QC = {"s": np.float32(0.05), "z": np.int8(-3)}


# -- Relu ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("prec", ["fixed<8,3>", "fixed<16,6,RND,SAT>"])
def test_relu_vector(prec):
    g = build(VEC.format(body="y = Relu(x)"),
              {"Model": {"Precision": {"default": prec, "result": "ufixed<5,2,RND,SAT>"}}})
    check(g, "Relu")


def test_relu_image_and_model_scale():
    check(build(IMG.format(body="y = Relu(x)")), "Relu")
    g = build(QIMG.format(body="y = Relu(d)"), **QC)
    assert g.tensors["y"].zero_point == -3
    x, y = check(g, "Relu")
    np.testing.assert_array_equal(y, np.maximum(x[0], -3))


# -- Clip, LeakyRelu ----------------------------------------------------------------------------

def test_clip():
    check(build(VEC.format(body="y = Clip(x, lo, hi)"), lo=np.float32(-1.3), hi=np.float32(2.6)), "Clip")
    check(build(QIMG.format(body="y = Clip(d, lo, hi)"), lo=np.float32(-0.2), hi=np.float32(1.0), **QC),
          "Clip", backpressure=0.5)


@pytest.mark.parametrize("alpha", [0.25, 0.1])
def test_leaky_relu(alpha):
    cfg = {"Model": {"Precision": {"default": "fixed<10,4,RND,SAT>", "result": "fixed<8,3,RND_CONV,SAT>"}}}
    check(build(VEC.format(body=f"y = LeakyRelu<alpha = {alpha}>(x)"), cfg), "LeakyRelu")
    check(build(QIMG.format(body=f"y = LeakyRelu<alpha = {alpha}>(d)"), cfg, **QC), "LeakyRelu")


# -- ScaleShift (BatchNormalization, Mul/Div/Sub by constants) ---------------------------------

def test_batchnorm_per_channel_on_an_image():
    rng = np.random.default_rng(3)
    consts = {"g": rng.normal(size=3), "b": rng.normal(size=3), "m": rng.normal(size=3),
              "v": rng.uniform(0.5, 2, size=3)}
    g = build(IMG.format(body="y = BatchNormalization(x, g, b, m, v)"), **consts)
    check(g, "ScaleShift")
    # few output levels: comparators (thresholds) instead of multipliers
    cfg = {"Model": {"Precision": {"default": "fixed<8,3,RND,SAT>", "result": "fixed<4,2,RND,SAT>"}}}
    check(build(QIMG.format(body="y = BatchNormalization(d, g, b, m, v)"), cfg, **consts, **QC), "ScaleShift")


@pytest.mark.parametrize("body", ["y = Mul(x, k)", "y = Div(x, k)", "y = Sub(x, k)"])
def test_mul_div_sub_by_constants(body):
    g = build(VEC.format(body=body), k=np.array([0.3, -1.7, 2.0, 0.5, -0.01, 3.3]))
    check(g, "ScaleShift")


def test_scale_varying_along_space_is_refused():
    g = build(IMG.format(body="y = Mul(x, k)"), k=np.arange(18.0).reshape(3, 2, 3) / 7)
    node = g.nodes[0]
    with pytest.raises(UserError, match="varies along the spatial axes"):
        op_of(node).hardware(node, g)


# -- Quantize / Dequantize / Threshold of computed tensors -------------------------------------

def test_quantize_linear_of_a_computed_tensor():
    g = build(IMG.format(body="""r = Relu(x)
        q = QuantizeLinear(r, s, z)
        y = DequantizeLinear(q, s, z)"""), s=np.float32(0.037), z=np.uint8(5))
    check(g, "Quantize")
    check(g, "Dequantize")


def test_requantize_between_model_scales_and_few_levels():
    g = build(QIMG.format(body="""q2 = QuantizeLinear(d, s2, z2)
        y = DequantizeLinear(q2, s2, z2)"""), s2=np.float32(0.11), z2=np.int8(4), **QC)
    check(g, "Quantize")
    # a 3-bit quantizer (QCDQ: a Clip of the integers) after a model scale: comparators
    g = build(QIMG.format(body="""q2 = QuantizeLinear(d, s2, z2)
        c = Clip(q2, lo, hi)
        y = DequantizeLinear(c, s2, z2)"""), s2=np.float32(0.2), z2=np.int8(0), lo=np.int8(-4),
              hi=np.int8(3), **QC)
    assert g.tensors["y"].dtype.width == 3
    check(g, "Quantize")


def test_bipolar_threshold():
    g = build(VEC.format(body="""r = Tanh(x)
        c = GreaterOrEqual(r, t)
        y = Where(c, a, na)"""), t=np.float32(0), a=np.float32(0.5), na=np.float32(-0.5))
    x, y = check(g, "Quantize")
    np.testing.assert_array_equal(y, np.where(x[0] >= 0, 1, -1))


# -- Sigmoid and the other table activations ----------------------------------------------------

def test_sigmoid_binned_table_vector_and_image():
    g = build(VEC.format(body="y = Sigmoid(x)"), {"Model": {"TableSize": 64}})
    node = g.nodes[0]
    t = g.tensors["x"]
    x = np.concatenate([random_raw(t, (6,), 5, np.random.default_rng(7)),
                        [[-20 * 1024, 20 * 1024, 0, -1, 1, 8 * 1024]]])
    check(g, "Sigmoid", inputs=[x])
    check(build(IMG.format(body="y = Sigmoid(x)")), "Sigmoid")


@pytest.mark.parametrize("size,bound", [(1024, 0.00244), (256, 0.00831)])
def test_sigmoid_table_error_over_the_whole_input_type(size, bound):
    """The docstring's figures: max |table - sigmoid| over every fixed<16,6> value."""
    g = build(VEC.format(body="y = Sigmoid(x)"), {"Model": {"TableSize": size}})
    node, t_in, t_out = g.nodes[0], g.tensors["x"], g.tensors["y"]
    raw = np.arange(t_in.dtype.min_raw, t_in.dtype.max_raw + 1)[:, None]
    got = op_of(node).reference(node, g, [raw])[0] * t_out.dtype.lsb
    err = np.abs(got - 1 / (1 + np.exp(-raw * t_in.dtype.lsb))).max()
    assert 16 / size / 8 - 2**-9 < err <= min(bound, 16 / size / 8 + t_out.dtype.lsb / 2)


FUNCTIONS = {"Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh,
             "Elu<alpha = 0.3>": lambda x: np.where(x < 0, 0.3 * np.expm1(np.minimum(x, 0)), x),
             "Softplus": lambda x: np.logaddexp(0, x),
             "HardSigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
             "Selu": lambda x: np.float32(1.0507009873554805) * np.where(
                 x > 0, x, np.float32(1.6732632423543772) * np.expm1(np.minimum(x, 0)))}


@pytest.mark.parametrize("fn", list(FUNCTIONS))
def test_full_tables_on_model_integers(fn):
    body = f"y = {fn}(d)"
    g = build(QIMG.format(body=body), **QC)
    op = g.nodes[-1].op
    check(g, op, n=3)
    # the table's error over every input value: the output's rounding alone (half an LSB)
    node, t_in, t_out = g.nodes[-1], g.tensors["d"], g.tensors["y"]
    raw = np.arange(t_in.dtype.min_raw, t_in.dtype.max_raw + 1)[:, None]
    got = op_of(node).reference(node, g, [raw])[0] * t_out.dtype.lsb
    assert np.abs(got - FUNCTIONS[fn](t_in.to_real(raw))).max() <= t_out.dtype.lsb / 2 + 1e-12


# table span and largest slope over it (hetero/ops/sigmoid.py); HardSigmoid: no table
BINNED = {"Sigmoid": (16, 0.25), "Tanh": (8, 1.0), "Elu<alpha = 0.3>": (8, 0.3), "Softplus": (16, 1.0),
          "HardSigmoid": (0, 0.2), "Selu": (8, 1.0507009873554805 * 1.6732632423543772)}
# the docstring's measured errors (TableSize 1024, fixed<16,6> into fixed<16,6>)
MEASURED = {"Sigmoid": 0.00239, "Tanh": 0.00435, "Elu<alpha = 0.3>": 0.00158, "Softplus": 0.00830,
            "HardSigmoid": 0.00040, "Selu": 0.00691}


@pytest.mark.parametrize("fn", list(BINNED))
def test_binned_tables_in_plain_fixed_point(fn):
    """The default fixed<16,6> (every value would need a table of 8000+ entries): a binned
    table of TableSize entries, plus the line beyond it where the function is one; bit-exact
    across the table's ends, the line's start and the type's extremes."""
    g = build(VEC.format(body=f"y = {fn}(x)"))
    node = g.nodes[0]
    op = node.op
    assert node.attrs.get("table_size") == (None if op == "HardSigmoid" else 1024)
    t = g.tensors["x"]
    edges = np.array([-8, -4, 0, 4, 8, 2.5, -2.5, -1 / 64, 1 / 1024]) * 1024
    edges = np.concatenate([edges - 1, edges, edges + 1, [-2**15, 2**15 - 1, -1]]).astype(np.int64)
    x = np.concatenate([random_raw(t, (6,), 4, np.random.default_rng(11)), edges.reshape(-1, 6)])
    check(g, op, inputs=[x])
    # narrow types and a small table, on an image, under more backpressure
    cfg = {"Model": {"TableSize": 64, "Precision": {"default": "fixed<10,4,RND,SAT>",
                                                    "result": "fixed<8,2,RND,SAT>"}}}
    check(build(IMG.format(body=f"y = {fn}(x)"), cfg), op, backpressure=0.5)


@pytest.mark.parametrize("size", [1024, 256])
@pytest.mark.parametrize("fn", list(BINNED))
def test_binned_table_error_over_the_whole_input_type(fn, size):
    """The docstring's figures: max |reference - function| over every fixed<16,6> value whose
    image the output type holds is half a bin times the largest slope (the table is binned:
    within an LSB of it) plus half an output LSB, plus a quarter LSB on the lines (their
    coefficient's rounding)."""
    g = build(VEC.format(body=f"y = {fn}(x)"), {"Model": {"TableSize": size}})
    node, t_in, t_out = g.nodes[0], g.tensors["x"], g.tensors["y"]
    raw = np.arange(t_in.dtype.min_raw, t_in.dtype.max_raw + 1)[:, None]
    got = op_of(node).reference(node, g, [raw])[0] * t_out.dtype.lsb
    exact = FUNCTIONS[fn](raw * t_in.dtype.lsb)
    err = np.abs(got - exact)[np.abs(exact) < 31.9].max()  # the output type holds +-32
    span, slope = BINNED[fn]
    half_bin = span / size / 2 * slope
    coef = t_out.dtype.lsb / 4 if fn in ("Selu", "HardSigmoid") else 0  # the line's coefficient
    assert half_bin - t_out.dtype.lsb <= err <= half_bin + t_out.dtype.lsb / 2 + coef
    if size == 1024:
        assert err <= MEASURED[fn]


def test_full_table_of_a_wide_input_is_refused():
    g = build("""g (float[N, 6] x) => (float[N, 6] y) {
        q = QuantizeLinear(x, s, z)
        d = DequantizeLinear(q, s, z)
        y = Tanh(d)
    }""", opset=21, s=np.float32(0.001), z=np.int16(0))  # int16 at scale 0.001: 8000+ entries
    with pytest.raises(UserError, match="Tanh node 'y'.*more than 4096 entries"):
        op_of(g.nodes[-1]).hardware(g.nodes[-1], g)


# -- Add, Sub, Mul of two streams; bias Add ----------------------------------------------------

TWO = """g (float[N, 3, 2, 3] x) => (float[N, 3, 2, 3] y) {{
    r = Relu(x)
    y = {op}(r, x)
}}"""


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_two_streams_plain_fixed_point_image(op):
    cfg = {"Model": {"Precision": "fixed<10,4,RND,SAT>"},
           "LayerName": {"r": {"Precision": {"result": "ufixed<6,2,TRN,SAT>"}},
                         "y": {"Precision": {"result": "fixed<9,4,RND_CONV,SAT>"}}}}
    g = build(TWO.format(op=op), cfg)
    assert g.nodes[-1].inputs == ("r", "x")
    check(g, op)


def test_sub_and_mul_port_order():
    """i0 is the node's first input: Sub(x, r) differs from Sub(r, x)."""
    g = build(VEC.format(body="r = Relu(x) \n y = Sub(x, r)"))
    assert g.nodes[-1].inputs == ("x", "r")
    (x, r), y = check(g, "Sub", backpressure=0.6)
    np.testing.assert_array_equal(y, np.clip(x - r, -2**15, 2**15 - 1))  # same types: x - r, saturated


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_residual_of_two_model_scales_requantizes(op):
    g = build(f"""g (float[N, 3, 2, 3] x) => (float[N, 3, 2, 3] y) {{
        a = QuantizeLinear(x, sa, za)
        da = DequantizeLinear(a, sa, za)
        b = QuantizeLinear(x, sb)
        db = DequantizeLinear(b, sb)
        y = {op}(da, db)
    }}""", sa=np.float32(0.07), za=np.int8(3), sb=np.float32(0.011))
    check(g, op)


def test_bias_add_per_channel():
    g = build(IMG.format(body="y = Add(x, bias)"), bias=np.array([0.5, -1.25, 3.0]).reshape(3, 1, 1))
    assert "B" in g.nodes[0].params
    check(g, "Add")
    check(build(VEC.format(body="y = Add(x, bias)"), bias=np.linspace(-2, 2, 6)), "Add")


def test_broadcasting_add_is_refused():
    g = build("""g (float[N, 3, 1] x) => (float[N, 3, 3] y) {
        t = Transpose<perm = [0, 2, 1]>(x)
        y = Add(x, t)
    }""")
    with pytest.raises(UserError, match="broadcasting"):
        op_of(g.nodes[-1]).hardware(g.nodes[-1], g)


# -- Concat ------------------------------------------------------------------------------------

def test_concat_channels_of_images_and_vectors():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 9, 2, 3] y) {
        r = Relu(x)
        y = Concat<axis = 1>(x, r, x)
    }""", {"LayerName": {"r": {"Precision": {"result": "ufixed<6,2,TRN,SAT>"}}}})
    assert g.nodes[-1].attrs["convert"]
    check(g, "Concat")
    g = build("""g (float[N, 6] x) => (float[N, 12] y) {
        r = Relu(x)
        y = Concat<axis = 1>(r, x)
    }""")
    assert not g.nodes[-1].attrs["convert"]
    check(g, "Concat", backpressure=0.5)


def test_concat_of_model_scales_converts_each_input():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 6, 2, 3] y) {
        a = QuantizeLinear(x, sa, za)
        da = DequantizeLinear(a, sa, za)
        y = Concat<axis = 1>(da, x)
    }""", sa=np.float32(0.07), za=np.int8(3))
    check(g, "Concat")


CL_DOMAIN = "qonnx.custom_op.channels_last"


def channels_last_concat(axis: int, cfg=None) -> Graph:
    """x [H=2, W=3, C=3] channels-last (a QONNX channels-last 1x1 MaxPool reads it):
    y = Concat(p, r, p) of the pool's output p and r = Relu(p), along ONNX ``axis``."""
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], domain=CL_DOMAIN, kernel_shape=[1, 1]),
             helper.make_node("Relu", ["p"], ["r"]),
             helper.make_node("Concat", ["p", "r", "p"], ["y"], axis=axis)]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(CL_DOMAIN, 1)])
    return run_pipeline(import_onnx(model), pipeline(Config.from_dict(cfg or {}), None))


def test_concat_channels_of_channels_last_images():
    g = channels_last_concat(3)
    lay = tensor_layouts(g)["y"]
    assert g.tensors["y"].shape == (2, 3, 9) and lay.channels_last and (lay.beats, lay.lanes) == (6, 9)
    assert not g.nodes[-1].attrs["convert"]
    xs, y = check(g, "Concat", backpressure=0.5)  # (random values for each of the three ports)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=3))  # channels: the last axis
    # different input types: each converted to the result type
    g = channels_last_concat(3, {"LayerName": {"r": {"Precision": {"result": "ufixed<6,2,TRN,SAT>"}}}})
    assert g.nodes[-1].attrs["convert"]
    check(g, "Concat", seed=2)


def test_concat_of_channels_last_images_along_space_is_refused():
    g = channels_last_concat(2)
    with pytest.raises(UserError, match="along the channels \\(stream lanes, axis 3\\) only, not axis 2"):
        op_of(g.nodes[-1]).hardware(g.nodes[-1], g)


def test_concat_along_space_is_refused():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 3, 4, 3] y) { y = Concat<axis = 2>(x, x) }""")
    with pytest.raises(UserError, match="along the channels"):
        op_of(g.nodes[-1]).hardware(g.nodes[-1], g)


# -- Reshape / Flatten, Transpose ----------------------------------------------------------------

def test_flatten_image_to_vector_in_ir_order():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 18] y) { r = Relu(x) \n y = Flatten(r) }""")
    x, y = check(g, "Reshape", backpressure=0.5)
    node = g.nodes[-1]
    assert op_of(node).cycles(node, g).latency == 6  # 6 pixel beats in, one vector beat out
    np.testing.assert_array_equal(y, x[0].reshape(len(x[0]), -1))  # c*H*W + p


def test_reshape_keeping_beats_is_a_wire_and_vector_to_image():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 3, 6] y) {
        r = Relu(x)
        y = Reshape(r, shape)
    }""", shape=np.array([-1, 3, 6]))
    from hetero.hw.lanes import Passthrough
    node = g.nodes[-1]
    hw = op_of(node).hardware(node, g)
    hw._MustUse__silence = True  # only inspected
    assert isinstance(hw, Passthrough)
    check(g, "Reshape")
    g = build("""g (float[N, 18] x) => (float[N, 3, 2, 3] y) { y = Reshape(x, shape) }""",
              shape=np.array([-1, 3, 2, 3]))
    check(g, "Reshape")


def test_transpose_between_beats():
    g = build("""g (float[N, 3, 2, 3] x) => (float[N, 3, 3, 2] y) {
        r = Relu(x)
        y = Transpose<perm = [0, 1, 3, 2]>(r)
    }""")
    check(g, "Transpose")


# -- Softmax: argmax, and quantized probabilities by tables --------------------------------------

def test_softmax_is_argmax_with_first_index_on_ties():
    g = build("g (float[N, 4] x) => (float[N, 4] y) { y = Softmax(x) }")
    x = np.array([[1, 3, 3, 0], [0, 0, 0, 0], [-1, -2, -0.5, -3], [5, 1, 2, 5]]) * 1024
    _, y = check(g, "Softmax", inputs=[x.astype(np.int64)])
    assert y[:, 0].tolist() == [1, 0, 2, 0]


PROBS = """g (float[N, 10] x) => (float[N, 10] y) {
    q = QuantizeLinear(x, s, z)
    d = DequantizeLinear(q, s, z)
    p = Softmax(d)
    qp = QuantizeLinear(p, so, zo)
    y = DequantizeLinear(qp, so, zo)
}"""


@pytest.mark.parametrize("s_in", [0.1, 0.02])
def test_softmax_probabilities_integer_form(s_in):
    g = build(PROBS, s=np.float32(s_in), z=np.int8(2), so=np.float32(1 / 256), zo=np.uint8(0))
    node = g.nodes[-2] if g.nodes[-1].op == "Dequantize" else g.nodes[-1]
    assert node.op == "Softmax" and node.attrs["strategy"] == "table"
    x, y = check(g, "Softmax", n=4, backpressure=0.5)
    # error against the float softmax of the same inputs: half an output step plus the tables'
    rng = np.random.default_rng(5)
    t_in = g.tensors["d"]
    raw = rng.integers(-128, 128, size=(2000, 10))
    raw[:200] = rng.integers(-128, -100, size=(200, 10))  # near-uniform rows too
    probs = op_of(node).reference(node, g, [raw])[0] / 256
    real = t_in.to_real(raw)
    exact = np.exp(real - real.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    err = np.abs(probs - np.minimum(exact, 255 / 256)).max()  # (the quantizer clips 1.0 to 255/256)
    assert err <= 1 / 512 + 11 * 2.0**-17 + 2.0**-16, err


def test_log_softmax_probabilities_have_no_hardware():
    g = build(PROBS.replace("Softmax", "LogSoftmax"), s=np.float32(0.1), z=np.int8(0),
              so=np.float32(0.1), zo=np.int8(0))
    node = next(nd for nd in g.nodes if nd.op == "Softmax")
    with pytest.raises(UserError, match="no hardware for these softmax probabilities"):
        op_of(node).hardware(node, g)
