"""The bit-accurate reference executor: the spec every hardware backend must match."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize
from hetero.ir.graph import Graph
from hetero.ir.text import printable
from hetero.ops import op_of
from hetero.ir.quant import QuantSpec


def check_inputs(graph: Graph, x: np.ndarray, source: str = "inputs", index: int = 0) -> np.ndarray:
    """``x`` as a float batch [N, *input shape] of graph input ``index``.

    Accepted: a batch whose per-sample shape (every axis after the first) is the input's, or
    differs from it only in axes of size 1 (``[N, 8, 8]`` or ``[N, 8, 8, 1]`` for an input
    ``[N, 1, 8, 8]``: the same numbers in the same order); a single sample without a batch axis
    (``x``'s shape is the input's). Anything else (a flat ``[N, 64]``, channels-last
    ``[N, 8, 8, 3]`` for ``[N, 3, 8, 8]``) is never reshaped: UserError naming ``source`` and
    both shapes. So are non-numbers, NaN and Inf."""
    shape = graph.tensors[graph.inputs[index]].shape
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise UserError(f"{source}: expected numbers, got dtype {x.dtype}")
    if tuple(x.shape) == shape:
        x = x[None]
    if x.ndim == 0 or tuple(x.shape[1:]) != shape:
        if x.ndim == 0 or _without_ones(x.shape[1:]) != _without_ones(shape):
            name = f" '{printable(graph.inputs[index])}'" if len(graph.inputs) > 1 else ""
            per_sample = f"per sample {list(x.shape[1:])}" if x.ndim else "no batch axis"
            raise UserError(f"{source}: shape {list(x.shape)} ({per_sample}) does not match the "
                            f"model input{name} [N, {', '.join(map(str, shape))}] (per sample "
                            f"{list(shape)}; only axes of size 1 may differ)")
        x = x.reshape((x.shape[0],) + shape)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise UserError(f"{source}: contains NaN or Inf")
    return x


def _without_ones(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if d != 1)


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


# -- saturation ---------------------------------------------------------------------------------

def _wide(t: FixedType) -> FixedType:
    """A signed type with ``t``'s fraction bits and rounding that holds whatever ``t`` clips."""
    return FixedType(62, 62 - t.frac_bits, True, t.rounding, "SAT")


def _out_of_range(pre: np.ndarray, t: FixedType) -> int:
    lo, hi = t.min_raw, t.max_raw
    if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
        lo = -hi
    pre = np.asarray(pre)
    return int(np.count_nonzero((pre < lo) | (pre > hi)))


def _row(layer: str, tensor: str, t: FixedType, saturated: int, total: int) -> dict:
    lo = t.min_raw
    if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
        lo = -t.max_raw
    return {"layer": layer, "tensor": tensor, "type": str(t), "saturated": saturated,
            "total": total, "share": saturated / total if total else 0.0,
            "min": lo * t.lsb, "max": t.max_raw * t.lsb}


def saturation(graph: Graph, x: np.ndarray | Sequence[np.ndarray],
               values: dict[str, np.ndarray] | None = None) -> list[dict]:
    """How many values each layer's fixed-point result type clipped on the batch ``x``: one row
    ``{layer, tensor, type, saturated, total, share, min, max}`` per typed graph input and per
    node output typed by a :class:`FixedType` (``min``/``max``: the real range the type spans;
    ``share``: saturated / total). A value counts as saturated when its exact value before the
    type's overflow mode (SAT clamp, SAT_ZERO, SAT_SYM, or a WRAP) lies outside that range.

    Computes nothing :func:`execute` returns differently: each node is run a second time on the
    same inputs with its result type widened, and the two compared. ``values``: ``execute(graph,
    x)`` where already computed. A model quantizer's own clip (QONNX ``Quant``, QDQ) is the
    model's definition and not counted; an untyped graph or an argmax output has no rows."""
    from dataclasses import replace

    if values is None:
        values = execute(graph, x)
    xs = [x] if len(graph.inputs) == 1 and not isinstance(x, (list, tuple)) else list(x)
    rows = []
    for k, (name, xk) in enumerate(zip(graph.inputs, xs)):
        t_in = graph.tensors[name]
        if not isinstance(t_in.dtype, FixedType) or isinstance(t_in.quant, QuantSpec):
            continue
        xk = check_inputs(graph, xk, index=k)
        pre = quantize(xk / (t_in.scale or 1.0), _wide(t_in.dtype)) + t_in.zero_point
        rows.append(_row(name, name, t_in.dtype, _out_of_range(pre, t_in.dtype), int(pre.size)))
    for node in graph.nodes:
        if node.attrs.get("strategy") == "argmax":
            continue
        typed = [o for o in node.outputs if isinstance(graph.tensors[o].dtype, FixedType)
                 and graph.tensors[o].scale is None and not graph.tensors[o].zero_point]
        if not typed:
            continue
        wide = {o: replace(graph.tensors[o], dtype=_wide(graph.tensors[o].dtype)) for o in typed}
        try:
            pres = op_of(node).reference(node, graph.with_nodes(graph.nodes, wide),
                                         [values[i] for i in node.inputs])
        except Exception:  # an op whose reference needs its exact result type: not counted
            continue
        for o, pre in zip(node.outputs, pres):
            if o in wide:
                t = graph.tensors[o].dtype
                rows.append(_row(node.name, o, t, _out_of_range(pre, t), int(np.size(pre))))
    return rows


def saturation_warnings(rows: Sequence[dict]) -> list[str]:
    """One ``warning: ...`` line per row of :func:`saturation` that saturated anything, naming
    the layer, the share and the range of its type."""
    from hetero.ir.text import printable

    out = []
    for r in rows:
        if not r["saturated"]:
            continue
        t = FixedType.parse(r["type"])
        short = f"{'fixed' if t.signed else 'ufixed'}<{t.width},{t.int_bits}>"
        hi = math.floor(r["max"] * 100) / 100
        out.append(f"warning: layer '{printable(r['layer'])}' saturates {_share(r['share'])} % of "
                   f"its outputs ({short} spans {r['min']:g}..{hi:g}); widen its result type or use "
                   "--calibrate")
    return out


def _share(share: float) -> str:
    """A percentage that reads as nonzero when anything saturated."""
    pct = 100 * share
    return f"{pct:.1f}" if pct >= 0.1 else f"{pct:.2g}"
