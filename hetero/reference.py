"""The bit-accurate reference executor: the spec every hardware backend must match."""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .fixed import quantize, to_float
from .ir import Graph
from .ops import op_of


def check_inputs(graph: Graph, x: np.ndarray, source: str = "inputs") -> np.ndarray:
    """``x`` as a float batch [N, *input shape]; a single unbatched sample gets a batch axis."""
    shape = graph.tensors[graph.inputs[0]].shape
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


def execute(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run a batch through the graph; returns every tensor by name, shaped [N, *shape].

    Typed graph: inputs are quantized to the input type and every tensor holds raw int64 values.
    Untyped graph: plain float64 arithmetic (to check an import against onnxruntime).
    """
    if len(graph.inputs) != 1:
        raise UserError(f"models with {len(graph.inputs)} inputs are not supported yet")
    x = check_inputs(graph, x)
    t_in = graph.tensors[graph.inputs[0]].dtype
    values = {graph.inputs[0]: x if t_in is None else quantize(x, t_in)}
    for node in graph.nodes:
        outs = op_of(node).reference(node, graph, [values[i] for i in node.inputs])
        values.update(zip(node.outputs, outs))
    return values


def run_raw(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The raw output of the graph's single output for a batch."""
    return execute(graph, x)[graph.outputs[0]]


def predict(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Real-valued outputs for a batch (class indices for an argmax output)."""
    out = run_raw(graph, x)
    t = graph.tensors[graph.outputs[0]].dtype
    if t is None:
        return out
    if graph.producer(graph.outputs[0]).attrs.get("strategy") == "argmax":
        return out.astype(np.int64)
    return to_float(out, t)
