"""The top level as a dataflow graph: forks where a tensor has several readers, FIFOs on the
inputs of joins (residual adds, concats), multi-beat AXI-Stream ports; simulated in Verilator
(native harness) and compared bit for bit with the reference."""

import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.dataflow import cycle_model, hardware_part
from hetero.frontend.onnx import import_onnx
from hetero.passes.pipeline import pipeline, run_pipeline
from hetero.flows.sim import simulate_graph

pytestmark = [pytest.mark.verilator]
CFG = Config.from_dict({"Model": {"Precision": "fixed<10,4,RND,SAT>"}})


def _model(nodes, inits, x_shape, y_shape, path):
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return run_pipeline(import_onnx(path), pipeline(CFG, None))


def _simulate(g, n=5, backpressure=0.0):
    x = np.random.default_rng(3).standard_normal((n,) + g.tensors[g.inputs[0]].shape) * 2
    with tempfile.TemporaryDirectory() as work:
        r = simulate_graph(g, x, work, backpressure=backpressure)
    np.testing.assert_array_equal(r.got, r.expected)
    return r.top, r.sim


def test_residual_block_of_images(tmp_path):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((3, 3, 3, 3)) * 0.3, rng.standard_normal((3, 3, 3, 3)) * 0.3
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["y"])]
    g = _model(nodes, {"w1": w1, "w2": w2}, [1, 3, 5, 6], [1, 3, 5, 6], tmp_path / "res.onnx")
    top, r = _simulate(g)
    assert any(name.startswith("fork_") or "fork" in name for name in top.stream_names)
    assert any("fifo" in name for name in top.stream_names)
    assert np.diff(r.in_cycles)[-1] == cycle_model(g)["interval"]
    assert r.latency_cycles == cycle_model(g)["latency"]
    _simulate(g, n=4, backpressure=0.5)


def test_vector_fan_out_and_join(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("MatMul", ["x", "wa"], ["a"]), helper.make_node("MatMul", ["x", "wb"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Add", ["a", "c"], ["y"])]
    g = _model(nodes, {"wa": rng.standard_normal((6, 4)), "wb": rng.standard_normal((6, 4))},
               [1, 6], [1, 4], tmp_path / "fan.onnx")
    top, r = _simulate(g, n=8)
    assert r.latency_cycles == cycle_model(g)["latency"]


def test_hardware_part_names_what_cannot_stream(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    g = _model(nodes, {}, [1, 4], [1, 4], tmp_path / "relu.onnx")
    assert hardware_part(g).input == "x" and not hardware_part(g).host
    with pytest.raises(UserError, match="nothing to build in hardware"):
        hardware_part(run_pipeline(import_onnx(tmp_path / "relu.onnx"), pipeline(CFG, None)[:2]))


def test_window_geometry_is_a_declared_facet():
    """fifo_depth asks every consumer for its window (Op.window_geometry): None by default and
    for global pools, the geometry for convolutions and windowed pools."""
    from hetero.ops import REGISTRY, op_of
    from hetero.ops.base import Op

    assert Op().window_geometry(None) is None
    assert REGISTRY["Relu"].window_geometry(None) is None
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["a"], ["b"], kernel_shape=[2, 2]),
             helper.make_node("GlobalAveragePool", ["b"], ["y"])]
    with tempfile.TemporaryDirectory() as d:
        g = _model(nodes, {"w": rng.standard_normal((2, 3, 3, 3))}, [1, 3, 5, 5], [1, 2, 1, 1], f"{d}/w.onnx")
    kernels = {n.op: getattr(op_of(n).window_geometry(n), "kernel", None) for n in g.nodes}
    assert kernels == {"Conv": (3, 3), "MaxPool": (2, 2), "AveragePool": None}
