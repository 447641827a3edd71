"""Tiny ONNX models shared by the tests of hetero.sim.run and hetero.api: small enough that
Verilator builds them in seconds and Amaranth's simulator runs them in well under a second."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_mlp(path: Path) -> Path:
    """Gemm 6 -> 5, Relu, Gemm 5 -> 3 (seeded weights), saved at ``path``."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), name)
             for name, s in (("W1", (6, 5)), ("b1", (5,)), ("W2", (5, 3)), ("b2", (3,)))]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Gemm", ["r", "W2", "b2"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path
