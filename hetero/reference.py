"""The bit-accurate reference executor: the spec every hardware backend must match."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hetero.errors import UserError
from hetero.ir.fixed import quantize
from hetero.ir.graph import Graph
from hetero.ops import op_of
from hetero.ir.quant import QuantSpec


def check_inputs(graph: Graph, x: np.ndarray, source: str = "inputs", index: int = 0) -> np.ndarray:
    """``x`` as a float batch [N, *input shape] of graph input ``index``; a single unbatched
    sample gets a batch axis."""
    shape = graph.tensors[graph.inputs[index]].shape
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise UserError(f"{source}: expected numbers, got dtype {x.dtype}")
    if tuple(x.shape) == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        if x.ndim >= 1 and x.shape[0] and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            x = x.reshape((x.shape[0],) + shape)
        else:
            raise UserError(f"{source}: shape {list(x.shape)} does not match the model input "
                            f"[N, {', '.join(map(str, shape))}]")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise UserError(f"{source}: contains NaN or Inf")
    return x


def execute(graph: Graph, x: np.ndarray | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Run a batch through the graph; returns every tensor by name, shaped [N, *shape].

    ``x``: the batch for the single input, or a sequence with one batch per graph input.
    Typed graph: inputs are quantized to the input type (or by the quantizer the model declares
    for them, e.g. FINN's BIPOLAR) and every tensor holds raw int64 values
    (an input left untyped is fed as real numbers to the model quantizer that consumes it).
    Untyped graph: plain float64 arithmetic (to check an import against onnxruntime).
    """
    xs = [x] if len(graph.inputs) == 1 and not isinstance(x, (list, tuple)) else list(x)
    if len(xs) != len(graph.inputs):
        raise UserError(f"the model has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); "
                        f"got {len(xs)} arrays")
    values = {}
    for k, (name, xk) in enumerate(zip(graph.inputs, xs)):
        xk = check_inputs(graph, xk, index=k)
        t_in = graph.tensors[name]
        if t_in.dtype is None:
            values[name] = xk
        elif isinstance(t_in.quant, QuantSpec):  # a declared quantizer (e.g. FINN's BIPOLAR)
            values[name] = np.round(t_in.quant.integers(xk)).astype(np.int64)
        else:
            values[name] = quantize(xk / (t_in.scale or 1.0), t_in.dtype) + t_in.zero_point
    for node in graph.nodes:
        outs = op_of(node).reference(node, graph, [values[i] for i in node.inputs])
        values.update(zip(node.outputs, outs))
    return values


def run_raw(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The raw output of the graph's single output for a batch."""
    return execute(graph, x)[graph.outputs[0]]


def predict(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Outputs for a batch as ONNX would hold them: real values, the integers of an integer
    (QuantizeLinear) output, class indices for an argmax output."""
    out = run_raw(graph, x)
    t = graph.tensors[graph.outputs[0]]
    if t.dtype is None:
        return out
    if graph.producer(graph.outputs[0]).attrs.get("strategy") == "argmax":
        return out.astype(np.int64)
    return t.onnx_value(out)
