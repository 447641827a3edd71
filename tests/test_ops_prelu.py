"""PRelu (hetero/ops/prelu.py), every facet on tiny models: the float reference against
onnxruntime (scalar, per-channel and per-element slopes), the typed reference's arithmetic, the
Amaranth hardware bit-exact against the reference with its cycle model exact (and under
backpressure), the limits named, the resource facet, and the whole design bit-exact in Verilator
(marker ``verilator``) and in HLS C-simulation (marker ``gxx``), as LeakyRelu is tested."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetero.errors import UserError
from hetero.frontend.onnx import import_onnx
from hetero.frontend.onnxrt import run_float
from hetero.hw.stream import from_beats, tensor_layouts, to_beats
from hetero.ir.config import Config
from hetero.ops import ONNX_TO_OP, op_of
from hetero.passes.pipeline import assign_precision, pipeline, run_pipeline
from hetero.reference import predict

from stream_harness import run_beats

CHANNEL_SLOPE = np.array([0.1, -0.5, 2.0], dtype=np.float32).reshape(3, 1, 1)


def prelu_model(shape, slope) -> onnx.ModelProto:
    """``y = PRelu(x, slope)`` with ``slope`` an initializer; ``shape`` per inference."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *shape])
    s = numpy_helper.from_array(np.asarray(slope, dtype=np.float32), "slope")
    graph = helper.make_graph([helper.make_node("PRelu", ["x", "slope"], ["y"], name="act")], "g",
                              [x], [y], [s])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def rng_x(*shape, seed=0, scale=2.0):
    """Random inputs that float32 (onnxruntime) holds exactly."""
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32).astype(np.float64)


def typed(model, cfg=None):
    return run_pipeline(import_onnx(model), pipeline(Config.from_dict(cfg or {}), None))


@pytest.mark.parametrize("shape,slope", [
    ((6,), np.float32(0.25)),                                   # one slope (a LeakyRelu)
    ((6,), np.linspace(-1, 1, 6)),                              # one per element of a vector
    ((3, 4, 5), CHANNEL_SLOPE),                                 # one per channel of an image
    ((3, 4, 5), np.linspace(0, 1, 5)),                          # one per column (ONNX broadcast)
    ((3, 4, 5), np.full((1, 3, 1, 1), 0.3)),                    # a leading batch axis of 1
])
def test_float_reference_equals_onnxruntime(shape, slope):
    m = prelu_model(shape, slope)
    x = rng_x(7, *shape)
    np.testing.assert_allclose(predict(import_onnx(m), x), run_float(m, x), rtol=1e-6, atol=1e-7)


def test_registered_and_refusals_name_the_node():
    assert ONNX_TO_OP["PRelu"].name == "PRelu"
    with pytest.raises(UserError, match=r"PRelu node 'act'.*batch axis"):
        import_onnx(prelu_model((4, 5), np.ones((3, 4, 5))))  # onnx's test_prelu_example
    with pytest.raises(UserError, match=r"PRelu node 'act'.*does not broadcast"):
        import_onnx(prelu_model((4, 5), np.ones(3)))


def test_typed_reference_is_exact_for_power_of_two_slopes():
    # raw input LSB 1/64, output LSB 1/16 (RND): y = x / 4 or slope * x / 4 in output LSBs
    m = prelu_model((4,), [0.25, 0.5, 1.0, 2.0])
    g = typed(m, {"Model": {"Precision": "fixed<10,4,RND,SAT>"},
                  "LayerName": {"act": {"Precision": {"result": "fixed<8,4,RND,SAT>"}}}})
    x = np.array([[-1.0, -0.15625, -0.5, 2.046875], [0.5, 0.5, 0.5, -0.25]])
    # -64*0.25/4 = -4; -10*0.5/4 = -1.25 -> -1; -32/4 = -8; 131/4 = 32.75 -> 33
    # positives: 32/4 = 8 each; -16*2/4 = -8
    np.testing.assert_array_equal(predict(g, x), [[-0.25, -1 / 16, -0.5, 33 / 16],
                                                  [0.5, 0.5, 0.5, -0.5]])


def test_typed_reference_within_half_an_lsb_of_the_float_model():
    m = prelu_model((3, 4, 5), CHANNEL_SLOPE)
    x = rng_x(8, 3, 4, 5)
    g = typed(m)
    t_in = g.tensors["x"].dtype
    ref = run_float(m, np.round(x / t_in.lsb) * t_in.lsb)  # the model on the quantized input
    # the output's rounding (half an LSB) and the slope's multiplier (24 significant bits)
    assert np.abs(predict(g, x) - ref).max() <= g.tensors["y"].dtype.lsb / 2 + 1e-6


def check_hardware(graph, n=6, seed=0):
    """The PRelu node's component bit-exact against its reference on random raw inputs, its
    cycle model exact, then again under backpressure."""
    node = next(nd for nd in graph.nodes if nd.op == "PRelu")
    op = op_of(node)
    t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    rng = np.random.default_rng(seed)
    x = rng.integers(t_in.dtype.min_raw, t_in.dtype.max_raw, size=(n,) + t_in.shape, endpoint=True)
    x.reshape(n, -1)[0, 0], x.reshape(n, -1)[-1, -1] = t_in.dtype.min_raw, t_in.dtype.max_raw
    expected = op.reference(node, graph, [x])[0]
    layouts = tensor_layouts(graph)
    lay_out = layouts[node.outputs[0]]
    for bp in (0.0, 0.3):
        r = run_beats(op.hardware(node, graph), to_beats(x, t_in.shape, layouts[t_in.name]),
                      lay_out.beats, lay_out.lanes, backpressure=bp, seed=seed)
        np.testing.assert_array_equal(from_beats(r.outputs, t_out.shape, lay_out), expected)
        if bp == 0.0:
            c = op.cycles(node, graph)
            assert r.latency == c.latency and r.intervals == {c.interval}


@pytest.mark.parametrize("shape,slope,cfg", [
    ((6,), np.linspace(-1, 1, 6), None),
    ((6,), np.float32(0.1), {"Model": {"Precision": {"default": "fixed<8,3>", "result": "fixed<6,2,RND,SAT>"}}}),
    ((3, 2, 3), CHANNEL_SLOPE, None),
])
def test_hardware_bit_exact_and_cycles_exact(shape, slope, cfg):
    check_hardware(typed(prelu_model(shape, slope), cfg))


def test_hardware_after_a_model_quantizer():
    """On a QuantizeLinear's integers (scale 0.05, zero point -3): the centred input."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 2, 3])
    inits = [numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.int8(-3), "z"),
             numpy_helper.from_array(CHANNEL_SLOPE, "slope")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("PRelu", ["d", "slope"], ["y"], name="act")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    g = typed(m)
    assert g.tensors[g.node("act").inputs[0]].zero_point == -3
    check_hardware(g)


def test_slope_varying_along_an_image_has_no_hardware():
    g = typed(prelu_model((3, 2, 3), np.linspace(0, 1, 3)))  # one per column, not per channel
    node = g.node("act")
    with pytest.raises(UserError, match="PRelu node 'act'.*spatial axes"):
        op_of(node).hardware(node, g)


def test_resources_and_macs():
    g = typed(prelu_model((3, 4, 5), CHANNEL_SLOPE))
    node = g.node("act")
    r = op_of(node).resources(node, g, "xc7")
    assert r.lut > 0 and r.ff >= 3 * 16 and r.dsp == 0  # one beat of 3 lanes of 16 bits
    assert op_of(node).macs(node, g) == 60


@pytest.mark.verilator
def test_design_bit_exact_in_verilator(tmp_path):
    from hetero.flows.sim import simulate_model

    path = tmp_path / "prelu.onnx"
    onnx.save(prelu_model((3, 4, 5), CHANNEL_SLOPE), path)
    report = simulate_model(path, n=20, backpressure=0.3, seed=1)
    assert report.bit_exact and report.inferences == 20


@pytest.mark.gxx
def test_hls_csim_bit_exact(tmp_path):
    from hetero.flows.common import compile_model, random_inputs
    from hetero.sim.csim import csim_graph

    path = tmp_path / "prelu.onnx"
    onnx.save(prelu_model((3, 4, 5), CHANNEL_SLOPE), path)
    g = compile_model(path)
    node = g.node("act")
    call = op_of(node).hls(node, g)
    assert call.kernel == "leaky_relu" and call.nested["neg"]["n_mult"] == 60
    r = csim_graph(g, random_inputs(g, 16, seed=3) * 2.0)
    np.testing.assert_array_equal(r.got, r.expected)
