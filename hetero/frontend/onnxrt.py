"""onnxruntime on a model whatever batch size its export fixed: the float side of every check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hetero.errors import UserError
from hetero.frontend.onnx import load_model


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


def session(model: onnx.ModelProto | str | Path, threads: int = 1, as_defined: bool = True,
            providers: list[str] | None = None):
    """An onnxruntime session. ``as_defined``: no fused QDQ kernels, so a quantized model
    computes what ONNX defines (the fused integer kernels saturate 16-bit pair sums on CPUs
    without VNNI); set it False to time onnxruntime as it runs by default. ``providers``:
    onnxruntime's execution providers (default: the CPU only)."""
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if as_defined:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(batch_free(model).SerializeToString(), opts,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"onnxruntime cannot run this model: {str(e).splitlines()[0]}") from None


def run_float(model: onnx.ModelProto | str | Path, x: np.ndarray) -> np.ndarray:
    """The model's first output for the batch ``x`` (reshaped to the model's input shape)."""
    sess = session(model)
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else -1 for d in inp.shape]
    x = np.asarray(x, dtype=np.float32).reshape([x.shape[0]] + shape[1:])
    return sess.run(None, {inp.name: x})[0]
