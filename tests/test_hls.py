"""The HLS C++ backend: the rendered project compiled with real g++ against hls4ml's ap_types
headers and run on random inputs must equal the reference bit for bit. Few builds (each is one
g++ run of several seconds): two small synthetic CNNs that reach every kernel of
hdl_templates/hls, the jet-tagging MLP end to end through ``hetero csim``, and the failure modes
(no g++: exit 2)."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from hetero.flows.common import compile_model, random_inputs
from hetero.sim.csim import csim_graph
from hetero.backends.hls.project import render_project

from conftest import model_path, parse_model

pytestmark = pytest.mark.gxx

RNG = np.random.default_rng(0)


def _weights(*shape):
    return RNG.normal(size=shape) * 0.5


def _graph(tmp_path, model, config=None):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    cfg = None
    if config is not None:
        cfg = tmp_path / "c.json"
        cfg.write_text(json.dumps(config))
    return compile_model(path, cfg)


def _check(graph, n=16, scale=2.0):
    x = random_inputs(graph, n, seed=3) * scale
    r = csim_graph(graph, x)
    np.testing.assert_array_equal(r.got, r.expected)
    return r


def test_cnn_kernels_are_bit_exact(tmp_path):
    """Conv (pads, strides, dilations, groups), LeakyRelu, MaxPool, AveragePool with counts that
    vary at the padding, Pad, Flatten, Dense, Sigmoid and Tanh (binned tables), Selu (table and
    line), in plain fixed point."""
    model = parse_model("""
    g (float[1, 2, 9, 9] x) => (float[1, 3] y) {
        c1 = Conv <pads = [1, 1, 1, 1], strides = [1, 2]> (x, w1, b1)
        a1 = LeakyRelu <alpha = 0.1> (c1)
        p1 = MaxPool <kernel_shape = [2, 2], strides = [1, 1]> (a1)
        c2 = Conv <group = 2, dilations = [2, 1], pads = [1, 0, 1, 0]> (p1, w2, b2)
        s2 = Selu (c2)
        p2 = AveragePool <kernel_shape = [3, 3], pads = [1, 1, 1, 1], count_include_pad = 0> (s2)
        q2 = Pad <mode = "constant"> (p2, pads)
        f = Flatten (q2)
        d = Gemm (f, wd, bd)
        t = Tanh (d)
        y = Sigmoid (t)
    }""", w1=_weights(4, 2, 3, 3), b1=_weights(4), w2=_weights(4, 2, 2, 2), b2=_weights(4),
        pads=np.array([0, 0, 1, 0, 0, 0, 0, 1], dtype=np.int64), wd=_weights(4 * 9 * 4, 3), bd=_weights(3))
    g = _graph(tmp_path, model)
    kernels = {c.kernel for c in (op_call(n, g) for n in g.nodes)}
    assert {"conv", "pool", "leaky_relu", "table_activation", "pad", "copy", "dense"} <= kernels
    _check(g)


def op_call(node, graph):
    from hetero.ops import op_of

    return op_of(node).hls(node, graph)


def test_quantized_and_joining_kernels_are_bit_exact(tmp_path):
    """A model-quantized branch (QuantizeLinear: requantization and integers with a zero point,
    Relu on them, Clip), a fork into a residual Add and a Concat of two branches, a Transpose,
    and the integer Softmax of a quantized output."""
    model = parse_model("""
    g (float[1, 4, 3, 3] x) => (uint8[1, 3, 3, 8] y) {
        q = QuantizeLinear (x, s, z)
        dq = DequantizeLinear (q, s, z)
        c1 = Conv <pads = [1, 1, 1, 1]> (dq, w1, b1)
        r1 = Relu (c1)
        q2 = QuantizeLinear (r1, s2, z2)
        dq2 = DequantizeLinear (q2, s2, z2)
        r2 = Relu (dq2)
        c2 = Conv (r2, w2, b2)
        cl = Clip (c2, lo, hi)
        a = Add (r1, cl)
        m = Mul (a, r2)
        k = Concat <axis = 1> (m, r2)
        t = Transpose <perm = [0, 2, 3, 1]> (k)
        sm = Softmax <axis = 3> (t)
        y = QuantizeLinear (sm, s3, z3)
    }""", s=np.float32(0.05), z=np.int8(3), s2=np.float32(0.03), z2=np.int8(-5), s3=np.float32(1 / 256), z3=np.uint8(0), w1=_weights(4, 4, 3, 3), b1=_weights(4),
        w2=_weights(4, 4, 1, 1), b2=_weights(4), lo=np.float32(-1.0), hi=np.float32(1.5))
    g = _graph(tmp_path, model)
    kernels = {c.kernel for c in (op_call(n, g) for n in g.nodes[1:])}
    assert {"conv", "relu", "requant_map", "clip", "add2", "concat2", "transpose", "softmax_table"} <= kernels, sorted(kernels)
    _check(g)


def test_jet_mlp_csim_cli_is_bit_exact(tmp_path):
    """hetero csim on the jet-tagging MLP: exit 0, bit-exact, the project written to OUT/hls."""
    path = model_path("three_layer")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "hetero", "csim", str(path), "-n", "200", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bit-exact: yes" in r.stdout
    for name in ("hetero_top.cpp", "parameters.h", "weights.h", "build_prj.tcl", "hetero_tb.cpp"):
        assert (out / "hls" / name).is_file()
    top = (out / "hls" / "hetero_top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "INTERFACE axis" in top


def test_missing_compiler_is_one_line_exit_2(tmp_path):
    path = model_path("three_layer")
    env = {"CXX": "no-such-gxx", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "hetero", "csim", str(path), "-n", "2"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "install g++" in r.stderr


def test_unsupported_op_names_the_node(tmp_path):
    """A node whose op has no HLS kernel (here a 3D convolution) is named, not compiled."""
    from hetero.errors import UserError

    model = parse_model("""
    g (float[1, 1, 3, 3, 3] x) => (float[1, 1, 3, 3, 3] y) {
        y = Conv <pads = [1, 1, 1, 1, 1, 1]> (x, w)
    }""", w=_weights(1, 1, 3, 3, 3))
    g = _graph(tmp_path, model)
    with pytest.raises(UserError, match="no HLS C\\+\\+ kernel"):
        render_project(g)
