"""Every op's hardware against its reference (bit-exact) and its cycle model (exact), in
Amaranth's simulator, on small layers with random weights and inputs."""

import numpy as np
import pytest

from hetero.ir.config import Config
from hetero.ir.fixed import FixedType, quantize
from hetero.ir.graph import Graph, Node, Tensor
from hetero.ops import op_of
from hetero.passes.pipeline import assign_precision

from stream_harness import run_stream


def single_op_graph(op: str, shape, params=None, attrs=None, config=None) -> Graph:
    out_shape = (attrs or {}).get("out_shape", shape)
    attrs = {k: v for k, v in (attrs or {}).items() if k != "out_shape"}
    node = Node("layer", op, ("x",), ("y",), attrs=attrs, params=params or {})
    g = Graph("t", (node,), {"x": Tensor("x", shape), "y": Tensor("y", out_shape)}, ("x",), ("y",))
    return assign_precision(g, Config.from_dict(config or {}))


def check_op(graph: Graph, x: np.ndarray, backpressure: float = 0.0):
    node = graph.nodes[0]
    op = op_of(node)
    t_in = graph.tensors["x"].dtype
    raw = quantize(x, t_in)
    expected = op.reference(node, graph, [raw])[0].reshape(len(x), -1)
    got, ins, outs = run_stream(op.hardware(node, graph), raw.reshape(len(x), -1),
                                graph.tensors["y"].size, backpressure=backpressure)
    np.testing.assert_array_equal(got, expected)
    if backpressure == 0.0:
        c = op.cycles(node, graph)
        assert outs[0] - ins[0] == c.latency
        if len(x) > 2:
            assert set(np.diff(ins)) == {c.interval}
    return got


def dense_graph(n_in, n_out, pe=None, simd=None, config=None, seed=0):
    rng = np.random.default_rng(seed)
    attrs = {"n_in": n_in, "n_out": n_out, "out_shape": (n_out,)}
    if pe:
        attrs.update(pe=pe, simd=simd)
    params = {"W": rng.normal(size=(n_in, n_out)), "b": rng.normal(size=n_out)}
    return single_op_graph("Dense", (n_in,), params, attrs, config)


@pytest.mark.parametrize("pe,simd", [(None, None), (1, 1), (2, 3), (5, 7), (3, 2), (5, 2)])
def test_dense_folding_is_bit_exact_and_cycle_exact(pe, simd):
    g = dense_graph(7, 5, pe, simd)
    x = np.random.default_rng(1).normal(size=(6, 7)) * 3
    check_op(g, x)


def test_dense_under_backpressure():
    g = dense_graph(6, 4, 2, 3)
    check_op(g, np.random.default_rng(2).normal(size=(8, 6)) * 4, backpressure=0.5)
    g = dense_graph(6, 4)
    check_op(g, np.random.default_rng(3).normal(size=(8, 6)) * 4, backpressure=0.5)


@pytest.mark.parametrize("prec", ["fixed<8,3>", "fixed<10,4,RND_CONV,SAT>", "ufixed<6,2,RND,SAT_ZERO>",
                                  "fixed<12,5,TRN_ZERO,SAT_SYM>"])
def test_dense_precisions(prec):
    g = dense_graph(5, 3, 1, 2, config={"Model": {"Precision": prec}})
    check_op(g, np.random.default_rng(4).normal(size=(5, 5)) * 8)


def test_dense_narrow_accumulator_wraps_like_reference():
    cfg = {"Model": {"Precision": {"default": "fixed<8,4>", "accum": "fixed<10,4>"}}}
    g = dense_graph(6, 3, 3, 2, config=cfg)
    check_op(g, np.random.default_rng(5).normal(size=(6, 6)) * 8)


# ReLU, sigmoid and softmax hardware tests live in tests/test_hw_elementwise.py
