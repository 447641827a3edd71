"""onnxruntime on a model whatever batch size its export fixed: the float side of every check.

An export may fix its batch: an input declared with batch 1 (a PyTorch export without dynamic
axes), a Reshape whose constant target shape starts with a number (PyTorch's and Brevitas's
Flatten written as ``Reshape(x, [1, -1])``; the ONNX-zoo MNIST), a Flatten with axis 0 (Keras
exports). :func:`session` frees the declared batch axes; :func:`fixed_batch` finds such a
Reshape or Flatten; :func:`run_float` runs any
batch of inputs in chunks the graph accepts. onnxruntime prints nothing: its errors become one
:class:`~hetero.errors.UserError` line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hetero.errors import UserError
from hetero.frontend.onnx import load_model
from hetero.ir.text import printable


def batch_free(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs and outputs have a symbolic batch axis."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name for i in model.graph.initializer}
    for v in list(model.graph.input) + list(model.graph.output):
        if v.name in inits:
            continue
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "N"
    return model


def declared_batch(model: onnx.ModelProto) -> int | None:
    """The batch size the model's first input declares (a number), or None (a name, no shape)."""
    inits = {i.name for i in model.graph.initializer}
    for v in model.graph.input:
        if v.name in inits:
            continue
        dims = v.type.tensor_type.shape.dim
        if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return int(dims[0].dim_value)
        return None
    return None


def _constant_values(graph: onnx.GraphProto) -> tuple[set[str], dict[str, onnx.TensorProto]]:
    """The names of the tensors without a batch axis (initializers, Constant nodes, shapes
    (Shape, Size) and what is computed from those alone), and the values of those given as
    data."""
    values = {i.name: i for i in graph.initializer}
    const = set(values)
    graphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    for node in graph.node:  # in topological order (an ONNX rule)
        if node.op_type == "Constant" and not node.input:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    values[node.output[0]] = a.t
            const.update(node.output)
        elif node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
            const.update(node.output)
        elif (node.input and all(not i or i in const for i in node.input)
              and not any(a.type in graphs for a in node.attribute)):  # a sub-graph may read inputs
            const.update(node.output)
    return const, values


def fixed_batch(model: onnx.ModelProto) -> tuple[int, str] | None:
    """``(k, why)`` where the graph fixes its batch at ``k``: a Reshape of data computed from
    the input to a constant shape that starts with ``k > 0`` (and, where the input declares
    a batch size, ``k`` is that size), or a Flatten with axis 0 (``k`` = 1); ``why`` names the
    node. None where no node fixes it (a shape computed at run time is not seen:
    :func:`run_float` and the baselines' sweep still check the batch onnxruntime returns)."""
    declared = declared_batch(model)
    const, values = _constant_values(model.graph)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or not node.input or node.input[0] in const:
            continue
        name = printable(node.name or node.output[0])
        if node.op_type == "Flatten" and declared in (None, 1):
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if axis == 0:  # [N, ...] -> [1, N * ...]
                return 1, f"Flatten '{name}' with axis 0"
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        t = values.get(node.input[1])
        if t is None:
            continue
        try:
            shape = onnx.numpy_helper.to_array(t)
        except Exception:  # data the importer refuses anyway
            continue
        if shape.ndim != 1 or not len(shape) or shape.dtype.kind not in "iu":
            continue
        k = int(shape[0])
        if k > 0 and (declared is None or k == declared):
            return k, f"Reshape '{name}' to [{', '.join(str(int(d)) for d in shape)}]"
    return None


def batch_size(model: onnx.ModelProto) -> int | None:
    """The batch size :func:`run_float` runs ``model`` at: the one a Reshape fixes
    (:func:`fixed_batch`), else the one the input declares, else None (any)."""
    fixed = fixed_batch(model)
    return fixed[0] if fixed else declared_batch(model)


def quiet() -> None:
    """onnxruntime's default logger to errors only (its warnings are not hetero's output)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)


def session(model: onnx.ModelProto | str | Path, threads: int = 1, as_defined: bool = True,
            providers: list[str] | None = None):
    """An onnxruntime session of ``model`` with its declared batch axes freed
    (:func:`batch_free`), logging nothing (a failure is an exception). ``as_defined``: no fused
    QDQ kernels, so a quantized model computes what ONNX defines (the fused integer kernels
    saturate 16-bit pair sums on CPUs without VNNI); set it False to time onnxruntime as it
    runs by default. ``providers``: onnxruntime's execution providers (default: the CPU only).
    Raises UserError (one line) where onnxruntime cannot load the model."""
    import onnxruntime as ort

    quiet()
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # errors too: they come back as exceptions
    if as_defined:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(batch_free(model).SerializeToString(), opts,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"onnxruntime cannot run this model: {first_line(e)}") from None


def first_line(e: BaseException) -> str:
    """The first line of an (onnxruntime) exception's message."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def run_batches(sess, x: np.ndarray, batch: int | None) -> np.ndarray:
    """The first output of ``sess`` for the float32 batch ``x`` (shaped as the session's
    input), run ``batch`` inputs at a time (the last chunk padded with copies of its last
    input, whose outputs are dropped), or all at once where ``batch`` is None and onnxruntime
    returns one output per input (else one at a time). Raises UserError (one line) where
    onnxruntime fails, or returns another batch than it was given."""
    name = sess.get_inputs()[0].name

    def chunk(xb: np.ndarray) -> np.ndarray:
        try:
            y = sess.run(None, {name: np.ascontiguousarray(xb)})[0]
        except Exception as e:
            raise UserError(f"onnxruntime cannot run this model on a batch of {len(xb)}: "
                            f"{first_line(e)}") from None
        if np.ndim(y) == 0 or len(y) != len(xb):
            raise UserError(f"onnxruntime returned {list(np.shape(y))} for a batch of {len(xb)}: "
                            "the graph fixes its batch size in a way hetero does not see")
        return y

    n = len(x)
    if batch is None:
        try:
            return chunk(x)
        except UserError:
            if n == 1:
                raise
        batch = 1  # a batch the graph fixes where hetero cannot see it: one at a time
    outs = []
    for start in range(0, n, batch):
        xb = x[start:start + batch]
        if len(xb) < batch:
            xb = np.concatenate([xb, np.repeat(xb[-1:], batch - len(xb), axis=0)])
        outs.append(chunk(xb)[:min(batch, n - start)])
    return np.concatenate(outs)


def run_float(model: onnx.ModelProto | str | Path, x: np.ndarray) -> np.ndarray:
    """The model's first output for the batch ``x`` (any number of inputs, each reshaped to
    the model's input shape), as onnxruntime computes it in float: in chunks of the batch size
    the graph fixes or declares (:func:`batch_size`), else all at once. Raises UserError (one
    line) where onnxruntime cannot run the model."""
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    sess = session(model)
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else -1 for d in inp.shape]
    x = np.asarray(x, dtype=np.float32).reshape([x.shape[0]] + shape[1:])
    return run_batches(sess, x, batch_size(model))
