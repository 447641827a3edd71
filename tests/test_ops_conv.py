"""Conv and pooling (hetero/ops/conv.py, hetero/ops/pool.py): the float reference against
onnxruntime on small models for every feature, the typed reference bit-exact against an
independent integer implementation (plain loops over output positions and taps), and real
models."""

import copy
import importlib
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hetero.ops.conv  # noqa: F401  (registration, until hetero/ops/__init__.py imports them)
import hetero.ops.pool  # noqa: F401
from conftest import model_path
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.ops.onnx_context import CHANNELS_LAST_DOMAINS
from hetero.frontend.onnx import import_onnx
from hetero.frontend.onnxrt import run_float
from hetero.passes.pipeline import assign_precision, fuse_epilogues
from hetero.reference import execute, predict, run_raw

for _name in ("transpose", "leaky_relu", "concat", "resize"):  # ops the real models also need
    try:
        importlib.import_module(f"hetero.ops.{_name}")
    except ImportError:
        pass

FIXED = Config.from_dict({"Model": {"Precision": "fixed<16,6,RND,SAT>"}})
LSB = 2.0 ** -10
CL_DOMAIN = "qonnx.custom_op.channels_last"


# -- model building -----------------------------------------------------------------------------
def make_model(nodes, x_shape, inits=None, opset=13):
    """One float input ``x`` [N, *x_shape], output ``y``; ``inits`` name -> array."""
    inits = inits or {}
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(CL_DOMAIN, 1),
              helper.make_opsetid("qonnx.custom_op.general", 1)]
    return helper.make_model(g, opset_imports=opsets)


def grid(rng, shape, scale=1.0, step=LSB):
    """Random values on the fixed<16,6> grid (exactly representable)."""
    return np.round(rng.normal(size=shape) * scale / step) * step


def conv_model(x_shape, w_shape, bias=True, seed=0, w_scale=0.3, opset=13, **attrs):
    rng = np.random.default_rng(seed)
    inits = {"W": grid(rng, w_shape, w_scale)}
    ins = ["x", "W"]
    if bias:
        inits["B"] = grid(rng, w_shape[0], 0.5)
        ins.append("B")
    return make_model([helper.make_node("Conv", ins, ["y"], **attrs)], x_shape, inits, opset), inits


def check_float(model, x, rtol=1e-5, atol=1e-5):
    g = import_onnx(model)
    got = predict(g, x)
    want = run_float(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return g


def check_typed_close(g, x, lsbs=1.0):
    """Typed (fixed<16,6,RND,SAT>) within ``lsbs`` output LSBs of the float reference (inputs
    and weights on the grid, so the only error is the final rounding)."""
    t = assign_precision(g, FIXED)
    got, want = predict(t, x), predict(g, x)
    assert np.max(np.abs(got - want)) <= lsbs * LSB + 1e-12
    return t


# -- an independent integer convolution --------------------------------------------------------
def naive_conv(x, w, strides, pads, dilations, group):
    """Direct convolution of a channels-first batch x [N, C, H, W] with w [O, C/g, kh, kw] (2D;
    pads top, left, bottom, right), by loops over output positions and taps, in Python ints."""
    n, c, h, wd = x.shape
    o_n, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    pt, pl, pb, pr = pads
    oh_n = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow_n = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    og = o_n // group
    xo, wo = x.astype(object), w.astype(object)
    y = np.zeros((n, o_n, oh_n, ow_n), dtype=object)
    for o in range(o_n):
        g = o // og
        for oh in range(oh_n):
            for ow in range(ow_n):
                acc = np.zeros(n, dtype=object)
                for ci in range(cg):
                    for i in range(kh):
                        ih = oh * sh - pt + i * dh
                        if not 0 <= ih < h:
                            continue
                        for j in range(kw):
                            iw = ow * sw - pl + j * dw
                            if 0 <= iw < wd:
                                acc = acc + xo[:, g * cg + ci, ih, iw] * wo[o, ci, i, j]
                y[:, o, oh, ow] = acc
    return y


def round_half_up_shift(v, shift):
    """floor(v / 2**shift + 1/2) for Python ints."""
    return (v + (1 << (shift - 1))) >> shift if shift > 0 else v << -shift


def saturate16(v):
    return np.vectorize(lambda a: max(-(1 << 15), min((1 << 15) - 1, int(a))), otypes=[object])(v)


def as_2d(x, w, pads, strides, dilations):
    """1D (C, L) data as 2D (C, 1, L)."""
    if w.ndim == 3:
        return (x[:, :, None, :], w[:, :, None, :], (0, pads[0], 0, pads[1]), (1, strides[0]),
                (1, dilations[0]))
    return x, w, pads, strides, dilations


# -- float: Conv against onnxruntime -----------------------------------------------------------
CONV_CASES = {
    "1d": ((3, 11), (4, 3, 3), {}),
    "1d_stride2_pads": ((3, 12), (5, 3, 4), dict(strides=[2], pads=[1, 2])),
    "1d_dilation2_nobias": ((2, 13), (3, 2, 3), dict(dilations=[2], pads=[2, 2], bias=False)),
    "2d": ((3, 7, 6), (4, 3, 3, 3), {}),
    "2d_nobias": ((3, 7, 6), (4, 3, 3, 3), dict(bias=False)),
    "2d_stride2": ((3, 9, 8), (4, 3, 3, 3), dict(strides=[2, 2])),
    "2d_pads_asym": ((2, 7, 6), (3, 2, 3, 2), dict(pads=[1, 0, 2, 1])),
    "2d_same_upper": ((2, 9, 8), (3, 2, 4, 3), dict(auto_pad="SAME_UPPER", strides=[2, 3])),
    "2d_same_lower": ((2, 9, 8), (3, 2, 4, 3), dict(auto_pad="SAME_LOWER", strides=[2, 3])),
    "2d_valid": ((2, 9, 8), (3, 2, 3, 3), dict(auto_pad="VALID", strides=[2, 1])),
    "2d_dilation2": ((2, 9, 9), (3, 2, 3, 3), dict(dilations=[2, 2], pads=[2, 1, 2, 1])),
    "2d_groups2": ((4, 7, 6), (6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),
    "2d_depthwise": ((4, 7, 6), (4, 1, 3, 3), dict(group=4, pads=[1, 1, 1, 1])),
    "2d_depthwise_mult2": ((3, 8, 7), (6, 1, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1])),
    "2d_pointwise": ((5, 4, 4), (7, 5, 1, 1), {}),
    "2d_everything": ((4, 10, 9), (6, 2, 3, 2), dict(group=2, strides=[2, 1], dilations=[1, 2],
                                                      pads=[1, 2, 0, 1], kernel_shape=[3, 2])),
}


def _conv_case(key, seed=0):
    x_shape, w_shape, attrs = CONV_CASES[key]
    attrs = dict(attrs)
    bias = attrs.pop("bias", True)
    model, inits = conv_model(x_shape, w_shape, bias=bias, seed=seed, **attrs)
    x = grid(np.random.default_rng(seed + 1), (6,) + x_shape, 2.0)
    return model, inits, x


@pytest.mark.parametrize("key", list(CONV_CASES))
def test_conv_float_matches_onnxruntime_and_typed_is_within_an_lsb(key):
    model, _, x = _conv_case(key)
    g = check_float(model, x)
    node = g.nodes[0]
    assert node.op == "Conv" and node.params["W"].shape == tuple(CONV_CASES[key][1])
    t = check_typed_close(g, x)
    assert t.tensors[t.outputs[0]].dtype is not None


@pytest.mark.parametrize("key", ["1d_stride2_pads", "1d_dilation2_nobias", "2d_everything",
                                 "2d_depthwise_mult2", "2d_same_upper"])
def test_conv_typed_is_bit_exact_to_integer_loops(key):
    model, inits, x = _conv_case(key, seed=3)
    g = import_onnx(model)
    t = assign_precision(g, FIXED)
    node = t.nodes[0]
    assert "requant" not in node.attrs  # the plain fixed-point (hls4ml) path
    x_raw = np.round(x / LSB).astype(np.int64)
    w_raw = np.round(inits["W"] / LSB).astype(np.int64)
    b_raw = np.round(inits.get("B", np.zeros(w_raw.shape[0])) / LSB).astype(np.int64)
    np.testing.assert_array_equal(node.params["W"], w_raw)
    a = node.attrs
    x2, w2, pads, strides, dil = as_2d(x_raw, w_raw, a["pads"], a["strides"], a["dilations"])
    acc = naive_conv(x2, w2, strides, pads, dil, a["group"])
    acc = acc + (b_raw.astype(object) << 10).reshape(1, -1, 1, 1)
    want = saturate16(np.vectorize(lambda v: round_half_up_shift(int(v), 10), otypes=[object])(acc))
    want = want.reshape(run_raw(t, x).shape).astype(np.int64)
    np.testing.assert_array_equal(run_raw(t, x), want)


def test_same_pads_are_resolved_like_onnx():
    g = import_onnx(conv_model((2, 9, 8), (3, 2, 4, 3), auto_pad="SAME_UPPER", strides=[2, 3])[0])
    # out = ceil(9/2), ceil(8/3) = 5, 3; total pads (5-1)*2+4-9 = 3, (3-1)*3+3-8 = 1
    assert g.nodes[0].attrs["pads"] == (1, 0, 2, 1) and g.nodes[0].attrs["out_size"] == (5, 3)
    g = import_onnx(conv_model((2, 9, 8), (3, 2, 4, 3), auto_pad="SAME_LOWER", strides=[2, 3])[0])
    assert g.nodes[0].attrs["pads"] == (2, 1, 1, 0)


def test_conv_macs_and_shapes():
    model, _, _ = _conv_case("2d_everything")
    g = import_onnx(model)
    node = g.nodes[0]
    op = hetero.ops.op_of(node)
    out = g.tensors[node.outputs[0]]
    assert out.shape == (6, 5, 10)  # H (10+1+0-3)//2+1, W (9+2+1-3)+1
    assert op.macs(node, g) == out.size * 2 * 3 * 2
    assert op.channel_shape(node) == (6, 1, 1)
    with pytest.raises(UserError, match="issue 4|no hardware"):
        op.hardware(node, g)


def test_conv_errors_name_the_node():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 2, 3, 3])
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c1")], "t", [x, w],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(UserError, match="Conv node 'c1': weight input 'w' must be a constant"):
        import_onnx(helper.make_model(g))
    bad, _ = conv_model((4, 5, 5), (6, 3, 3, 3), group=2)
    with pytest.raises(UserError, match="group=2"):
        import_onnx(bad)
    bad, _ = conv_model((2, 5, 5), (3, 2, 3, 3), kernel_shape=[3, 2])
    with pytest.raises(UserError, match="kernel_shape"):
        import_onnx(bad)
    bad, _ = conv_model((2, 2, 2), (3, 2, 3, 3))
    with pytest.raises(UserError, match="larger than the padded input"):
        import_onnx(bad)


# -- channels-last domain ----------------------------------------------------------------------
def _channels_last_pair(x_shape_cf, w_shape_oihw, seed=0, domain=CL_DOMAIN, **attrs):
    """(channels-last model, equivalent Transpose+Conv+Transpose model) with the weight in OHWI
    for the former (QONNX's layout) and OIHW for the latter."""
    rng = np.random.default_rng(seed)
    w = grid(rng, w_shape_oihw, 0.3)
    b = grid(rng, w_shape_oihw[0], 0.5)
    rank = len(x_shape_cf) + 1
    to_last = [0] + list(range(2, rank)) + [1]
    to_first = [0, rank - 1] + list(range(1, rank - 1))
    x_last = tuple(x_shape_cf[1:]) + (x_shape_cf[0],)
    w_last = np.transpose(w, [0] + list(range(2, w.ndim)) + [1])  # OIHW -> OHWI
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], domain=domain, **attrs)
    cl = make_model([node], x_last, {"W": w_last, "B": b})
    std = make_model([helper.make_node("Transpose", ["x"], ["xt"], perm=to_first),
                      helper.make_node("Conv", ["xt", "W", "B"], ["yt"], **attrs),
                      helper.make_node("Transpose", ["yt"], ["y"], perm=to_last)],
                     x_last, {"W": w, "B": b})
    return cl, std, x_last


CL_CASES = {
    "2d_pointwise": ((3, 6, 5), (8, 3, 1, 1), dict(kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1],
                                                   dilations=[1, 1], group=1)),
    "2d_depthwise": ((3, 6, 5), (3, 1, 3, 3), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                                                   dilations=[1, 1], group=3)),
    "2d_groups_strides": ((4, 9, 8), (6, 2, 3, 2), dict(group=2, strides=[2, 1], dilations=[1, 2],
                                                        pads=[1, 0, 0, 1])),
    "1d": ((3, 10), (4, 3, 3), dict(strides=[2], pads=[1, 1])),
    "finn_domain": ((2, 5, 5), (3, 2, 3, 3), dict(pads=[1, 1, 1, 1], domain="finn.custom_op.channels_last")),
}


@pytest.mark.parametrize("key", list(CL_CASES))
def test_channels_last_conv_equals_transposed_standard_conv(key):
    x_cf, w_shape, attrs = CL_CASES[key]
    cl, std, x_last = _channels_last_pair(x_cf, w_shape, **attrs)
    x = grid(np.random.default_rng(5), (4,) + x_last, 2.0)
    g = import_onnx(cl)
    node = g.nodes[0]
    assert node.attrs["channels_last"] and node.params["W"].shape == w_shape  # stored OIHW
    assert g.tensors[g.outputs[0]].shape[-1] == w_shape[0]
    np.testing.assert_allclose(predict(g, x), run_float(std, x), rtol=1e-5, atol=1e-5)
    assert hetero.ops.op_of(node).channel_shape(node) == (w_shape[0],)
    t = check_typed_close(g, x)
    # the typed channels-last layer equals the typed channels-first one, transposed
    g_std = import_onnx(std)
    t_std = assign_precision(g_std, FIXED)
    np.testing.assert_array_equal(run_raw(t, x), run_raw(t_std, x))


def test_channels_last_conv_typed_is_bit_exact_to_integer_loops():
    x_cf, w_shape, attrs = CL_CASES["2d_groups_strides"]
    cl, _, x_last = _channels_last_pair(x_cf, w_shape, seed=2, **attrs)
    x = grid(np.random.default_rng(6), (3,) + x_last, 2.0)
    t = assign_precision(import_onnx(cl), FIXED)
    node = t.nodes[0]
    x_raw = np.moveaxis(np.round(x / LSB).astype(np.int64), -1, 1)
    a = node.attrs
    acc = naive_conv(x_raw, node.params["W"], a["strides"], a["pads"], a["dilations"], a["group"])
    acc = acc + (node.params["b"].astype(object) << 10).reshape(1, -1, 1, 1)
    want = saturate16(np.vectorize(lambda v: round_half_up_shift(int(v), 10), otypes=[object])(acc))
    np.testing.assert_array_equal(run_raw(t, x), np.moveaxis(want.astype(np.int64), 1, -1))


# -- the model's own integer weights (QONNX Quant): the requant path ---------------------------
def _quant(name_in, name_out, scale, zero, bits, signed=1, narrow=0, rounding="ROUND"):
    inits = {f"{name_out}_s": np.asarray(scale, dtype=np.float32),
             f"{name_out}_z": np.asarray(zero, dtype=np.float32),
             f"{name_out}_b": np.asarray(float(bits), dtype=np.float32)}
    node = helper.make_node("Quant", [name_in, f"{name_out}_s", f"{name_out}_z", f"{name_out}_b"],
                            [name_out], domain="qonnx.custom_op.general", signed=signed,
                            narrow=narrow, rounding_mode=rounding)
    return node, inits


@pytest.mark.parametrize("channels_last", [False, True])
def test_quantized_weights_requant_path_is_bit_exact(channels_last):
    rng = np.random.default_rng(11)
    w = rng.normal(size=(4, 3, 3, 3)) * 0.4
    b = grid(rng, 4, 0.5)
    w_model = np.transpose(w, (0, 2, 3, 1)) if channels_last else w
    qx, ix = _quant("x", "qx", 2.0 ** -7, 0, 8)
    qw, iw = _quant("W", "qw", 2.0 ** -5, 0, 4, narrow=1)
    conv = helper.make_node("Conv", ["qx", "qw", "B"], ["y"], pads=[1, 1, 1, 1], strides=[1, 2],
                            domain=CL_DOMAIN if channels_last else "")
    x_shape = (6, 5, 3) if channels_last else (3, 6, 5)
    model = make_model([qx, qw, conv], x_shape, {"W": w_model, "B": b, **ix, **iw})
    g = import_onnx(model)
    node = [n for n in g.nodes if n.op == "Conv"][0]
    assert "Wq" in node.params and np.all(node.params["w_scale"] == 2.0 ** -5)
    wq = np.clip(np.round(w / 2.0 ** -5), -7, 7)
    np.testing.assert_array_equal(node.params["Wq"], wq)  # OIHW whatever the model's layout
    t = assign_precision(g, FIXED)
    tnode = [n for n in t.nodes if n.op == "Conv"][0]
    assert "requant" in tnode.attrs
    x = rng.normal(size=(5,) + x_shape) * 0.6
    q = execute(t, x)[tnode.inputs[0]]  # the input quantizer's integers
    assert np.array_equal(q, np.clip(np.round(x.astype(np.float32) * 128), -128, 127))
    if channels_last:
        q = np.moveaxis(q, -1, 1)
    acc = naive_conv(q, wq.astype(np.int64), (1, 2), (1, 1, 1, 1), (1, 1), 1)
    # y = round_half_up(acc * 2^-7 * 2^-5 / 2^-10 + b / 2^-10) = round_half_up((acc + 4 b_lsb) / 4)
    b_lsb = np.round(b / LSB).astype(object).reshape(1, -1, 1, 1)
    want = saturate16(np.vectorize(lambda v: round_half_up_shift(int(v), 2), otypes=[object])(acc + 4 * b_lsb))
    want = want.astype(np.int64)
    if channels_last:
        want = np.moveaxis(want, 1, -1)
    np.testing.assert_array_equal(run_raw(t, x), want)
    # and the float reference is the model's own arithmetic: within one LSB
    assert np.max(np.abs(predict(t, x) - predict(g, x))) <= LSB


def test_conv_relu_quant_epilogue_fuses_and_matches_the_float_model():
    rng = np.random.default_rng(12)
    qx, ix = _quant("x", "qx", 2.0 ** -3, 0, 8)
    qw, iw = _quant("W", "qw", 2.0 ** -4, 0, 6, narrow=1)
    qy, iy = _quant("r", "y", 2.0 ** -2, 0, 6, signed=0)
    nodes = [qx, qw, helper.make_node("Conv", ["qx", "qw", "B"], ["c"], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Relu", ["c"], ["r"]), qy]
    model = make_model(nodes, (4, 6, 6), {"W": rng.normal(size=(4, 2, 3, 3)) * 0.3,
                                          "B": grid(rng, 4, 0.5, 2.0 ** -4), **ix, **iw, **iy})
    g = fuse_epilogues(import_onnx(model))
    conv = [n for n in g.nodes if n.op == "Conv"][0]
    assert conv.attrs["relu"] and conv.attrs["out_spec"] is not None
    t = assign_precision(g, FIXED)
    x = rng.normal(size=(8, 4, 6, 6)) * 4
    np.testing.assert_array_equal(predict(t, x), predict(g, x))  # power-of-two scales: exact


# -- pooling -----------------------------------------------------------------------------------
POOL_CASES = {
    "max_2d": ("MaxPool", (3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max_2d_pads_ceil": ("MaxPool", (3, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                    ceil_mode=1)),
    "max_2d_ceil_drops_window_in_pad": ("MaxPool", (2, 5, 6), dict(kernel_shape=[2, 2], strides=[2, 2],
                                                                   pads=[1, 1, 1, 1], ceil_mode=1)),
    "max_2d_dilation": ("MaxPool", (2, 9, 9), dict(kernel_shape=[2, 3], strides=[2, 1], dilations=[2, 2],
                                                   pads=[1, 0, 1, 1])),
    "max_2d_same_upper": ("MaxPool", (2, 7, 8), dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER")),
    "max_1d": ("MaxPool", (3, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 0], ceil_mode=1)),
    "avg_2d": ("AveragePool", (3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg_pads_excl": ("AveragePool", (3, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "avg_pads_incl": ("AveragePool", (3, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                     count_include_pad=1)),
    "avg_ceil_excl": ("AveragePool", (2, 7, 6), dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 0, 0],
                                                     ceil_mode=1)),
    "avg_ceil_incl": ("AveragePool", (2, 7, 6), dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1],
                                                     ceil_mode=1, count_include_pad=1)),
    "avg_same_lower_incl": ("AveragePool", (2, 6, 7), dict(kernel_shape=[4, 3], strides=[3, 2],
                                                           auto_pad="SAME_LOWER", count_include_pad=1)),
    "avg_1d": ("AveragePool", (3, 12), dict(kernel_shape=[4], strides=[3], pads=[2, 1], ceil_mode=1)),
    "avg_dilation_opset19": ("AveragePool", (2, 9, 8), dict(kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 1],
                                                            pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)),
    "global_avg_2d": ("GlobalAveragePool", (4, 7, 5), {}),
    "global_avg_1d": ("GlobalAveragePool", (4, 9), {}),
    "global_max_2d": ("GlobalMaxPool", (4, 6, 5), {}),
}


def _pool_case(key, seed=0, domain=""):
    op, x_shape, attrs = POOL_CASES[key]
    opset = 19 if "opset19" in key else 13
    model = make_model([helper.make_node(op, ["x"], ["y"], domain=domain, **attrs)], x_shape, opset=opset)
    x = grid(np.random.default_rng(seed), (5,) + x_shape, 3.0)
    return model, x


@pytest.mark.parametrize("key", list(POOL_CASES))
def test_pool_float_matches_onnxruntime_and_typed_is_close(key):
    model, x = _pool_case(key)
    g = check_float(model, x)
    node = g.nodes[0]
    if node.op == "MaxPool":
        t = check_typed_close(g, x, lsbs=0)  # exact: raw values pass through
        assert t.tensors[t.outputs[0]].dtype == t.tensors[t.inputs[0]].dtype
    else:
        check_typed_close(g, x, lsbs=0.5 + 1e-9)  # one rounding of the exact average


def test_ceil_mode_window_starting_in_the_end_padding_is_dropped():
    g = import_onnx(_pool_case("max_2d_ceil_drops_window_in_pad")[0])
    # H: (5 + 2 - 2) / 2 = 2.5 -> ceil 3 -> +1 = 4, but window 4 would start at 6 - 1 = 5 >= 5
    assert g.nodes[0].attrs["out_size"] == (3, 4)


def naive_window_sums(x, node, fill):
    """Per-window (sum over valid input cells, cell count per ONNX, max) by loops, 2D or 1D,
    channels-first [N, C, *spatial] Python ints."""
    a = node.attrs
    k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    n = len(k)
    sizes, out = a["in_size"], a["out_size"]
    xo = x.astype(object)
    sums = np.zeros(x.shape[:2] + tuple(out), dtype=object)
    maxs = np.full(x.shape[:2] + tuple(out), fill, dtype=object)
    counts = np.zeros(tuple(out), dtype=np.int64)
    for pos in np.ndindex(*out):
        for tap in np.ndindex(*k):
            idx = [pos[i] * s[i] - p[i] + tap[i] * d[i] for i in range(n)]
            inside = all(0 <= idx[i] < sizes[i] for i in range(n))
            in_pads = all(-p[i] <= idx[i] < sizes[i] + p[n + i] for i in range(n))
            if inside:
                v = xo[(slice(None), slice(None)) + tuple(idx)]
                sums[(slice(None), slice(None)) + pos] += v
                cur = maxs[(slice(None), slice(None)) + pos]
                maxs[(slice(None), slice(None)) + pos] = np.where(v > cur, v, cur)
            if inside or (a.get("count_include_pad") and in_pads):
                counts[pos] += 1
    return sums, counts, maxs


def _exact_round_half_up(num: Fraction) -> int:
    return int((num + Fraction(1, 2)).__floor__())


@pytest.mark.parametrize("key", ["max_2d_pads_ceil", "max_2d_dilation", "max_1d", "global_max_2d"])
def test_maxpool_typed_is_bit_exact(key):
    model, x = _pool_case(key, seed=4)
    t = assign_precision(import_onnx(model), FIXED)
    node = t.nodes[0]
    raw = np.round(x / LSB).astype(np.int64)
    _, _, maxs = naive_window_sums(raw, node, -(1 << 15))
    np.testing.assert_array_equal(run_raw(t, x), maxs.astype(np.int64))


@pytest.mark.parametrize("key", ["avg_2d", "avg_pads_excl", "avg_pads_incl", "avg_ceil_excl", "avg_ceil_incl",
                                 "avg_same_lower_incl", "avg_1d", "avg_dilation_opset19", "global_avg_2d",
                                 "global_avg_1d"])
def test_avgpool_typed_is_exact_rounding_of_the_exact_average(key):
    """One rounding (half up, fixed<16,6,RND>) of sum/count: bit-exact wherever the count is a
    power of two; elsewhere the requant multiplier approximates 1/count, which can only move an
    exact tie (sum/count ending in exactly half an LSB)."""
    model, x = _pool_case(key, seed=7)
    t = assign_precision(import_onnx(model), FIXED)
    node = t.nodes[0]
    raw = np.round(x / LSB).astype(np.int64)
    sums, counts, _ = naive_window_sums(raw, node, 0)
    np.testing.assert_array_equal(hetero.ops.op_of(node).counts(node), counts)
    got = run_raw(t, x)
    exact = np.vectorize(lambda s, c: Fraction(int(s), int(c)), otypes=[object])(sums, counts)
    want = np.vectorize(lambda f: max(-(1 << 15), min((1 << 15) - 1, _exact_round_half_up(f))),
                        otypes=[object])(exact).astype(np.int64)
    ties = np.vectorize(lambda f: f - f.__floor__() == Fraction(1, 2), otypes=[bool])(exact)
    pow2 = np.broadcast_to((counts & (counts - 1)) == 0, got.shape)
    np.testing.assert_array_equal(got[pow2 | ~ties], want[pow2 | ~ties])
    assert np.all(np.abs(got - want) <= 1)


def test_avgpool_with_a_zero_point_and_a_real_scale():
    q, iq = _quant("x", "qx", 0.05, 7, 8, signed=0)
    pool = helper.make_node("AveragePool", ["qx"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])
    model = make_model([q, pool], (2, 7, 7), iq)
    g = import_onnx(model)
    t = assign_precision(g, FIXED)
    x = np.random.default_rng(8).uniform(-0.5, 12, size=(4, 2, 7, 7))
    got = run_raw(t, x)
    node = t.nodes[-1]
    t_in = t.tensors[node.inputs[0]]
    assert t_in.zero_point == 7 and t_in.real_scale == float(np.float32(0.05))
    qx = execute(t, x)[node.inputs[0]] - 7  # the quantizer's integers, centred
    sums, counts, _ = naive_window_sums(qx, node, 0)
    s_in = Fraction(t_in.real_scale)
    exact = np.vectorize(lambda s, c: Fraction(int(s), int(c)) * s_in * 1024, otypes=[object])(sums, counts)
    want = np.vectorize(_exact_round_half_up, otypes=[object])(exact).astype(np.int64)
    np.testing.assert_array_equal(got, want)
    assert np.max(np.abs(predict(t, x) - predict(g, x))) <= 0.5 * LSB + 1e-9


def test_maxpool_keeps_the_input_scale_and_zero_point():
    q, iq = _quant("x", "qx", 0.05, 7, 8, signed=0)
    pool = helper.make_node("MaxPool", ["qx"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    g = import_onnx(make_model([q, pool], (2, 6, 6), iq))
    t = assign_precision(g, FIXED)
    t_in, t_out = t.tensors[t.nodes[-1].inputs[0]], t.tensors[t.outputs[0]]
    assert (t_out.dtype, t_out.scale, t_out.zero_point) == (t_in.dtype, t_in.scale, t_in.zero_point)
    x = np.random.default_rng(9).uniform(-0.5, 12, size=(3, 2, 6, 6))
    np.testing.assert_allclose(predict(t, x), predict(g, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("key", ["max_2d_pads_ceil", "avg_pads_excl", "avg_ceil_incl", "global_avg_2d"])
def test_channels_last_pool_equals_transposed_standard_pool(key):
    op, x_cf, attrs = POOL_CASES[key]
    x_last = tuple(x_cf[1:]) + (x_cf[0],)
    rank = len(x_cf) + 1
    cl = make_model([helper.make_node(op, ["x"], ["y"], domain=CL_DOMAIN, **attrs)], x_last)
    std = make_model([helper.make_node("Transpose", ["x"], ["xt"], perm=[0, rank - 1] + list(range(1, rank - 1))),
                      helper.make_node(op, ["xt"], ["yt"], **attrs),
                      helper.make_node("Transpose", ["yt"], ["y"], perm=[0] + list(range(2, rank)) + [1])],
                     x_last)
    x = grid(np.random.default_rng(10), (4,) + x_last, 3.0)
    g = import_onnx(cl)
    assert g.nodes[0].attrs["channels_last"]
    np.testing.assert_allclose(predict(g, x), run_float(std, x), rtol=1e-5, atol=1e-5)
    t = assign_precision(g, FIXED)
    t_std = assign_precision(import_onnx(std), FIXED)
    np.testing.assert_array_equal(run_raw(t, x), run_raw(t_std, x))


def test_maxpool_indices_output_refused():
    model = make_model([helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])], (2, 4, 4))
    model.graph.output.append(helper.make_tensor_value_info("idx", TensorProto.INT64, None))
    with pytest.raises(UserError, match="Indices"):
        import_onnx(model)


# -- real models -------------------------------------------------------------------------------
def test_mnist8_matches_onnxruntime_and_its_test_data():
    path = model_path("onnxzoo_mnist-8_from_qonnx_wheel.onnx")
    g = fuse_epilogues(import_onnx(path))
    convs = [n for n in g.nodes if n.op == "Conv"]
    assert len(convs) == 2 and all(n.attrs["pads"] == (2, 2, 2, 2) for n in convs)  # SAME_UPPER
    assert "Add" not in [n.op for n in g.nodes[:2]]  # the bias Add folded into the conv
    rng = np.random.default_rng(0)
    for x in [rng.uniform(0, 255, size=(1, 1, 28, 28)) for _ in range(2)]:  # its Reshape fixes batch 1
        want = run_float(path, x)
        np.testing.assert_allclose(predict(g, x), want, rtol=1e-4, atol=1e-3 * np.abs(want).max())
    data = path.parent / "onnxzoo_mnist-8_test_data_set_0"
    if data.is_dir():
        x = numpy_helper.to_array(onnx.load_tensor(str(data / "input_0.pb")))
        y = numpy_helper.to_array(onnx.load_tensor(str(data / "output_0.pb")))
        np.testing.assert_allclose(predict(g, x), y, atol=2e-3)
        assert np.argmax(predict(g, x)) == np.argmax(y)


def test_residual_block_matches_onnxruntime():
    path = model_path("qonnx_wheel_residual_block_clean.onnx")
    g = import_onnx(path)
    x = np.random.default_rng(1).normal(size=(2,) + g.tensors[g.inputs[0]].shape)
    want = run_float(path, x)
    np.testing.assert_allclose(predict(g, x), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("key", ["hls4ml_examplemodels_conv2d_small_keras.onnx",
                                 "hls4ml_examplemodels_conv1d_small_keras.onnx"])
def test_keras_conv_models_match_onnxruntime(key):
    path = model_path(key)
    g = fuse_epilogues(import_onnx(path))
    rng = np.random.default_rng(2)
    for _ in range(3):  # exported with Flatten(axis=0): onnxruntime runs batch 1 only
        x = rng.normal(size=(1,) + g.tensors[g.inputs[0]].shape)
        np.testing.assert_allclose(predict(g, x), run_float(path, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", ["mlperftiny_ic_resnet8_fp32_tflite2onnx.onnx",
                                 "mlperftiny_vww_mobilenet96_fp32_tflite2onnx.onnx",
                                 "mlperftiny_kws_dscnn_fp32_tf2onnx.onnx"])
def test_mlperf_tiny_float_cnns_match_onnxruntime(key):
    path = model_path(key)
    g = import_onnx(path)
    x = np.random.default_rng(3).normal(size=(2,) + g.tensors[g.inputs[0]].shape)
    want = run_float(path, x)
    np.testing.assert_allclose(predict(g, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale_bits", [10, 40])
def test_integer_linear_is_exact_below_and_beyond_float64_precision(scale_bits):
    """int64 in, int64 out, exact: through float64 while every sum is below 2**53, else int64."""
    model, _, _ = _conv_case("2d_everything")
    g = import_onnx(model)
    node = g.nodes[0]
    op = hetero.ops.op_of(node)
    rng = np.random.default_rng(13)
    x = rng.integers(-(1 << scale_bits), 1 << scale_bits, size=(2,) + g.tensors["x"].shape)
    w = rng.integers(-(1 << 12), 1 << 12, size=node.params["W"].shape)
    got = op.linear(node, x, w)
    assert got.dtype == np.int64
    a = node.attrs
    want = naive_conv(x, w, a["strides"], a["pads"], a["dilations"], a["group"])
    assert np.array_equal(got.astype(object), want)


def _shrink(model, size):
    """The model on a size x size input (convolutions, pools and resizes do not depend on it)."""
    m = copy.deepcopy(model)
    del m.graph.value_info[:]
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for k in range(1, len(dims) - 1):
        dims[k].dim_value = size
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    return m


def _channels_last_as_standard(model):
    """QONNX's definition of its channels-last ops: transpose the data input (and, for Conv, the
    weight) to channels-first, run the standard op, transpose the output back."""
    m = copy.deepcopy(model)
    nodes = []
    for n in m.graph.node:
        if n.domain not in CHANNELS_LAST_DOMAINS:
            nodes.append(n)
            continue
        rank = len(helper.get_attribute_value(next(a for a in n.attribute if a.name == "kernel_shape"))) + 2
        first, last = [0, rank - 1] + list(range(1, rank - 1)), [0] + list(range(2, rank)) + [1]
        ins = list(n.input)
        for k in range(2 if n.op_type == "Conv" else 1):
            nodes.append(helper.make_node("Transpose", [ins[k]], [ins[k] + "_cf"], perm=first))
            ins[k] += "_cf"
        std = copy.deepcopy(n)
        std.domain = ""
        del std.input[:]
        std.input.extend(ins)
        std.output[0] = n.output[0] + "_cf"
        nodes += [std, helper.make_node("Transpose", [std.output[0]], [n.output[0]], perm=last)]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


@pytest.mark.parametrize("key", ["hls4ml_examplemodels_separable_conv_model_ch_last.onnx",
                                 "hls4ml_examplemodels_branched_model_ch_last.onnx",
                                 "hls4ml_examplemodels_tiny_unet_ch_last.onnx"])
def test_real_channels_last_models_equal_their_standard_form(key):
    """The hls4ml example models (QONNX channels-last Conv/MaxPool, OHWI weights) against the
    same models rewritten with standard channels-first ops (whose Conv and MaxPool the tests
    above check against onnxruntime), on a 32x32 input: float and typed, exactly."""
    model = _shrink(onnx.load(str(model_path(key))), 32)
    g_cl, g_std = import_onnx(model), import_onnx(_channels_last_as_standard(model))
    assert any(n.op == "Conv" and n.attrs["channels_last"] for n in g_cl.nodes)
    x = np.random.default_rng(4).uniform(-1, 1, size=(2,) + g_cl.tensors[g_cl.inputs[0]].shape)
    np.testing.assert_array_equal(predict(g_cl, x), predict(g_std, x))
    t_cl, t_std = (assign_precision(fuse_epilogues(g), FIXED) for g in (g_cl, g_std))
    np.testing.assert_array_equal(run_raw(t_cl, x), run_raw(t_std, x))
