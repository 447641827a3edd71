"""Streaming window hardware (hetero/hw/window.py) and the ops built on it: Conv, MaxPool,
AveragePool, their global forms, Pad and Resize nearest. Each op runs alone, imported from a tiny
ONNX model through the pass pipeline, in Amaranth's simulator on multi-beat images: bit-exact
against its reference, cycle-exact against its ``cycles()``, and once under random
backpressure."""

import numpy as np
import pytest
from amaranth.hdl import signed
from onnx import TensorProto, helper, numpy_helper

from hetero.ir.config import Config
from hetero.hw.stream import from_beats, layout_of, to_beats
from hetero.hw.window import WindowGenerator, WindowGeometry
from hetero.ir.graph import Graph
from hetero.frontend.onnx import import_onnx
from hetero.ops import op_of
from hetero.ops.conv import windows
from hetero.passes.pipeline import pipeline, run_pipeline

from stream_harness import run_beats

CL_DOMAIN = "qonnx.custom_op.channels_last"
SMALL = {"Model": {"Precision": "fixed<8,3,RND,SAT>"}}


# -- helpers ----------------------------------------------------------------------------------
def build(nodes, x_shape, inits=None, cfg=None, opset=13) -> Graph:
    """A typed graph of ``nodes`` on a float input ``x`` [N, *x_shape] with output ``y``."""
    inits = inits or {}
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f"
                                            else np.asarray(v).dtype), k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                                helper.make_opsetid(CL_DOMAIN, 1)])
    return run_pipeline(import_onnx(model), pipeline(Config.from_dict(cfg or SMALL), None))


def random_raw(t, n, rng):
    """``n`` random raw values of tensor ``t``'s type, its extremes included."""
    lo, hi = t.dtype.min_raw, t.dtype.max_raw
    x = rng.integers(lo, hi, size=(n,) + tuple(t.shape), endpoint=True)
    x.reshape(n, -1)[0, :2] = lo, hi
    x.reshape(n, -1)[-1, -2:] = hi, lo
    return x


def channels_last(graph: Graph, node) -> bool:
    return bool(node.attrs.get("channels_last", False))


def check(graph: Graph, n: int = 3, seed: int = 0, backpressure: float = 0.0, x=None, op=None):
    """Run the graph's last node (the last ``op`` node if given) on ``n`` random images:
    bit-exact against its reference and, without backpressure, cycle-exact against
    ``cycles()``."""
    node = [nd for nd in graph.nodes if op is None or nd.op == op][-1]
    op_ = op_of(node)
    t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    cl = channels_last(graph, node)
    x = random_raw(t_in, n, np.random.default_rng(seed)) if x is None else x
    expected = op_.reference(node, graph, [x])[0]
    lay_in, lay_out = layout_of(t_in, cl), layout_of(t_out, cl)
    r = run_beats(op_.hardware(node, graph), to_beats(x, t_in.shape, lay_in), lay_out.beats,
                  lay_out.lanes, backpressure=backpressure, seed=seed)
    np.testing.assert_array_equal(from_beats(r.outputs, t_out.shape, lay_out), expected)
    if backpressure == 0.0:
        c = op_.cycles(node, graph)
        assert (r.latency, r.intervals) == (c.latency, {c.interval})
    return r


# -- the window generator alone ---------------------------------------------------------------
GEN_CASES = [  # channels, (H, W), kernel, strides, dilations, pads (top, left, bottom, right)
    (3, (5, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (3, (5, 7), (3, 2), (2, 1), (1, 2), (0, 2, 1, 0)),
    (2, (5, 7), (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    (2, (6, 5), (2, 2), (2, 2), (1, 1), (0, 0, 0, 0)),
    (4, (6, 6), (3, 3), (2, 2), (2, 2), (2, 1, 0, 3)),
    (2, (1, 9), (1, 3), (1, 2), (1, 1), (0, 1, 0, 2)),  # 1D
    (2, (6, 1), (3, 1), (1, 1), (2, 1), (2, 0, 1, 0)),  # one column: a register line buffer
]


@pytest.mark.parametrize("case", GEN_CASES)
def test_window_generator_against_sliding_window_view(case):
    ch, (h, w), k, s, d, pads = case
    out = [(size + pads[a] + pads[a + 2] - (k[a] - 1) * d[a] - 1) // s[a] + 1 for a, size in enumerate((h, w))]
    geo = WindowGeometry.from_attrs(ch, (h, w), k, s, d, pads, out)
    x = np.random.default_rng(1).integers(-128, 128, size=(3, ch, h, w))
    win = windows(x, k, s, d, pads, fill=-7)  # [N, C, OH, OW, kh, kw]
    want = win.transpose(0, 2, 3, 4, 5, 1).reshape(3, out[0] * out[1], -1)  # lanes (ky, kx, c)
    beats = x.transpose(0, 2, 3, 1).reshape(3, h * w, ch)
    for bp in (0.0, 0.5):
        r = run_beats(WindowGenerator(geo, signed(8), pad=-7), beats, out[0] * out[1],
                      geo.window_lanes, backpressure=bp, seed=2)
        np.testing.assert_array_equal(r.outputs, want)
        if bp == 0.0:
            lat, interval = geo.cycles()
            assert (r.latency, r.intervals) == (lat, {interval})


def test_window_cycle_model_closed_form_matches_schedule():
    geo = WindowGeometry.from_attrs(3, (5, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (5, 7))
    firsts, taken = geo.schedule(3, 1)
    assert geo.cycles() == (taken[34] - firsts[0], firsts[2] - firsts[1]) == (53, 63)


# -- Conv ---------------------------------------------------------------------------------------
def conv_graph(x_shape, w_shape, seed=0, cfg=None, channels_last_domain=False, bias=True, **attrs):
    rng = np.random.default_rng(seed)
    w = np.round(rng.normal(size=w_shape) * 8) / 16
    inits = {"W": np.moveaxis(w, 1, -1) if channels_last_domain else w}
    ins = ["x", "W"]
    if bias:
        inits["B"] = np.round(rng.normal(size=w_shape[0]) * 8) / 16
        ins.append("B")
    node = helper.make_node("Conv", ins, ["y"], domain=CL_DOMAIN if channels_last_domain else "", **attrs)
    return build([node], x_shape, inits, cfg)


CONV_CASES = {
    "k3_pad1": ((3, 5, 7), (4, 3, 3, 3), dict(pads=[1, 1, 1, 1])),
    "k1": ((5, 5, 7), (3, 5, 1, 1), {}),
    "k2_stride2": ((3, 6, 7), (4, 3, 2, 2), dict(strides=[2, 2])),
    "k3_stride2_asym": ((3, 5, 7), (2, 3, 3, 3), dict(strides=[2, 1], pads=[0, 2, 1, 0])),
    "dilation2": ((3, 7, 7), (3, 3, 3, 3), dict(dilations=[2, 2], pads=[2, 1, 2, 1])),
    "depthwise": ((4, 5, 7), (4, 1, 3, 3), dict(group=4, pads=[1, 1, 1, 1])),
    "groups2": ((4, 5, 6), (6, 2, 3, 2), dict(group=2, pads=[1, 0, 1, 1])),
    "1d": ((3, 11), (4, 3, 3), dict(pads=[1, 2], strides=[2])),
    "1d_dilation2": ((2, 12), (3, 2, 3), dict(dilations=[2])),
}


@pytest.mark.parametrize("key", list(CONV_CASES))
def test_conv(key):
    x_shape, w_shape, attrs = CONV_CASES[key]
    check(conv_graph(x_shape, w_shape, **attrs))


def test_conv_channels_last_and_backpressure():
    g = conv_graph((5, 6, 3), (4, 3, 3, 3), channels_last_domain=True, pads=[1, 0, 1, 2])
    assert g.nodes[0].attrs["channels_last"]
    check(g)
    check(g, seed=3, backpressure=0.5)


@pytest.mark.parametrize("pe,simd", [(1, 9), (2, 5), (4, 27)])
def test_conv_folded_mac_unit_is_cycle_exact(pe, simd):
    g = conv_graph((3, 5, 6), (4, 3, 3, 3), pads=[1, 1, 1, 1])
    node = g.nodes[0].evolve(attrs={"pe": pe, "simd": simd})
    g = g.with_nodes([node])
    check(g)
    assert op_of(node).parallelism(node)["multipliers"] == pe * simd
    check(g, seed=4, backpressure=0.4)


@pytest.mark.parametrize("key,pe,simd", [("depthwise", 1, 9), ("depthwise", 2, 4), ("groups2", 3, 5),
                                          ("depthwise_mult2", 4, 3)])
def test_grouped_conv_folds_over_its_own_taps(key, pe, simd):
    """A folded depthwise/grouped layer steps over the K*C_in/group inputs of each output,
    not over a block-diagonal matrix's zeros: bit-exact and cycle-exact, with backpressure."""
    cases = dict(CONV_CASES, depthwise_mult2=((3, 5, 6), (6, 1, 3, 3), dict(group=3, pads=[1, 1, 1, 1])))
    x_shape, w_shape, attrs = cases[key]
    g = conv_graph(x_shape, w_shape, **attrs)
    node = g.nodes[0].evolve(attrs={"pe": pe, "simd": simd})
    g = g.with_nodes([node])
    n_in = int(np.prod(w_shape[1:]))  # taps x input channels of one group
    assert op_of(node).mac_dims(node) == (n_in, w_shape[0])
    p = op_of(node).parallelism(node)
    assert p["folds"] == -(-w_shape[0] // pe) * -(-n_in // simd)
    check(g)
    check(g, seed=6, backpressure=0.4)


# -- pooling ------------------------------------------------------------------------------------
POOL_CASES = {
    "max_k2_s2": ("MaxPool", (3, 6, 7), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max_k3_pad_asym": ("MaxPool", (4, 5, 7), dict(kernel_shape=[3, 3], pads=[1, 0, 2, 1])),
    "max_dilation2_ceil": ("MaxPool", (3, 7, 7), dict(kernel_shape=[2, 3], strides=[2, 2],
                                                      dilations=[2, 1], ceil_mode=1)),
    "max_1d": ("MaxPool", (3, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    "avg_k2_s2": ("AveragePool", (3, 6, 7), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg_k3_pad_exclude": ("AveragePool", (3, 5, 7), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 2])),
    "avg_k3_pad_include": ("AveragePool", (3, 5, 7), dict(kernel_shape=[3, 2], pads=[1, 0, 0, 1],
                                                          strides=[1, 2], count_include_pad=1)),
    "avg_ceil": ("AveragePool", (2, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "avg_1d": ("AveragePool", (4, 10), dict(kernel_shape=[4], strides=[3], pads=[2, 1])),
    "global_max": ("GlobalMaxPool", (5, 5, 7), {}),
    "global_avg": ("GlobalAveragePool", (5, 5, 7), {}),
    "global_avg_1d": ("GlobalAveragePool", (3, 9), {}),
    "avg_whole_image": ("AveragePool", (3, 5, 4), dict(kernel_shape=[5, 4])),
    "max_whole_image_1d": ("MaxPool", (2, 7), dict(kernel_shape=[7], strides=[2])),
}


def pool_graph(op, x_shape, cfg=None, opset=13, **attrs):
    return build([helper.make_node(op, ["x"], ["y"], **attrs)], x_shape, cfg=cfg, opset=opset)


@pytest.mark.parametrize("key", list(POOL_CASES))
def test_pool(key):
    op, x_shape, attrs = POOL_CASES[key]
    g = pool_graph(op, x_shape, **attrs)
    assert g.nodes[0].attrs["global"] == ("whole_image" in key or op.startswith("Global"))
    check(g)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"])
def test_pool_backpressure_and_other_types(op):
    attrs = {} if op.startswith("Global") else dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 0])
    cfg = {"Model": {"Precision": {"default": "ufixed<6,2,RND,SAT>", "result": "fixed<9,3,RND_CONV,SAT>"}}}
    check(pool_graph(op, (3, 5, 6), cfg=cfg, **attrs), seed=5, backpressure=0.5)


# -- Pad ----------------------------------------------------------------------------------------
PAD_CASES = {  # x_shape, pads (batch axis included, ONNX order), constant value
    "2d_asym": ((3, 5, 7), [0, 0, 1, 0, 0, 0, 2, 3], 0.0),
    "2d_value": ((2, 5, 4), [0, 0, 0, 2, 0, 0, 1, 0], 1.25),
    "channels_and_rows": ((3, 4, 5), [0, 1, 1, 0, 0, 2, 0, 0], -0.5),
    "channels_only": ((3, 4, 5), [0, 2, 0, 0, 0, 1, 0, 0], 0.0),
    "1d": ((4, 9), [0, 0, 2, 0, 0, 1], 0.0),
    "vector": ((5,), [0, 1, 0, 2], 0.75),
}


@pytest.mark.parametrize("key", list(PAD_CASES))
def test_pad(key):
    x_shape, pads, value = PAD_CASES[key]
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")
    g = build([node], x_shape, {"pads": np.array(pads, dtype=np.int64), "value": np.float32(value)})
    check(g)
    if key == "2d_asym":
        check(g, seed=6, backpressure=0.5)


# -- Resize nearest -----------------------------------------------------------------------------
RESIZE_CASES = {  # x_shape, scales (batch axis included) or sizes, attributes
    "up2": ((3, 4, 5), dict(scales=[1, 1, 2, 2]), {}),
    "up_rows_only": ((2, 3, 4), dict(scales=[1, 1, 3, 1]), dict(nearest_mode="floor")),
    "sizes_odd": ((3, 5, 7), dict(sizes=[1, 3, 8, 10]), {}),
    "down": ((2, 6, 7), dict(sizes=[1, 2, 4, 3]), dict(coordinate_transformation_mode="asymmetric")),
    "mixed": ((2, 5, 4), dict(sizes=[1, 2, 3, 9]), dict(coordinate_transformation_mode="align_corners")),
    "channels": ((3, 4, 5), dict(scales=[1, 2, 1, 1]), {}),
    "1d": ((3, 6), dict(scales=[1, 1, 2.5]), {}),
}


@pytest.mark.parametrize("key", list(RESIZE_CASES))
def test_resize_nearest(key):
    x_shape, given, attrs = RESIZE_CASES[key]
    inits = {k: np.array(v, dtype=np.float32 if k == "scales" else np.int64) for k, v in given.items()}
    ins = ["x", "", "scales"] if "scales" in given else ["x", "", "", "sizes"]
    g = build([helper.make_node("Resize", ins, ["y"], mode="nearest", **attrs)], x_shape, inits)
    check(g)
    if key in ("up2", "down"):
        check(g, seed=7, backpressure=0.5)


# -- model-quantized tensors (QDQ: scales that are not powers of two, zero points) --------------
def qdq(nodes, x_shape, inits):
    """``nodes`` between an input quantizer (uint8, zero point 7) and an output quantizer
    (int8, zero point -2): ``d`` is their input, ``r`` their output."""
    q = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"])]
    out = [helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["q2"]),
           helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["y"])]
    inits = dict(inits, s=np.float32(0.043), z=np.uint8(7), s2=np.float32(0.071), z2=np.int8(-2))
    return build(q + nodes + out, x_shape, inits, cfg={})


def test_conv_on_model_quantized_tensors():
    rng = np.random.default_rng(8)
    wq = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]),
             helper.make_node("Conv", ["d", "w", "b"], ["c"], pads=[1, 0, 1, 2], strides=[1, 2]),
             helper.make_node("Relu", ["c"], ["r"])]
    g = qdq(nodes, (3, 5, 7), {"wq": wq, "ws": np.float32(0.0021), "b": rng.normal(size=4)})
    node = [nd for nd in g.nodes if nd.op == "Conv"][0]
    assert "requant" in node.attrs and g.tensors[node.inputs[0]].zero_point == 7
    check(g, op="Conv")
    check(g, op="Conv", seed=9, backpressure=0.5)


@pytest.mark.parametrize("op,attrs", [("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
                                      ("MaxPool", dict(kernel_shape=[2, 3], pads=[1, 1, 0, 1])),
                                      ("GlobalAveragePool", {})])
def test_pool_on_model_quantized_tensors(op, attrs):
    g = qdq([helper.make_node(op, ["d"], ["r"], **attrs)], (3, 5, 6), {})
    assert g.tensors[[nd for nd in g.nodes if nd.op in ("AveragePool", "MaxPool")][0].inputs[0]].zero_point == 7
    check(g, op=op.replace("Global", ""))


def test_pool_channels_last():
    node = helper.make_node("MaxPool", ["x"], ["y"], domain=CL_DOMAIN, kernel_shape=[3, 2], pads=[1, 0, 1, 1])
    g = build([node], (5, 6, 4))
    assert g.nodes[0].attrs["channels_last"]
    check(g)
    node = helper.make_node("AveragePool", ["x"], ["y"], domain=CL_DOMAIN, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    check(build([node], (5, 6, 4)))


def test_average_pool_with_few_output_levels_uses_comparators_per_position():
    cfg = {"Model": {"Precision": {"default": "fixed<8,3,RND,SAT>", "result": "fixed<4,2,RND,SAT>"}}}
    g = pool_graph("AveragePool", (3, 5, 6), cfg=cfg, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert np.asarray(g.nodes[0].attrs["requant"].mult).size > 1  # the count varies by position
    check(g)
