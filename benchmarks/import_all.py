"""Import every model of ../shared/models and check the reference against onnxruntime.

For each model: `hetero import` status; where onnxruntime runs the model (or its QCDQ
conversion), the float reference's agreement with it, and the fixed-point reference's (default
config for float models, the model's own quantizers otherwise): max abs error and class
agreement on N random inputs (integer models: random integers of the input type).

    python benchmarks/import_all.py [--n 200] [--only SUBSTRING] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from hetero.config import Config
from hetero.errors import UserError
from hetero.onnx_import import import_onnx, load_model
from hetero.passes import assign_precision, simplify
from hetero.reference import predict

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def ort_run(model, x):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}[inp.type]
    return np.concatenate([sess.run(None, {inp.name: x[k:k + 1].astype(dtype)})[0] for k in range(len(x))])


def inputs_for(graph, model, n, rng):
    name = graph.inputs[0]
    t = graph.tensors[name]
    shape = (n,) + t.shape
    if t.integer:
        lo, hi = (t.quant.min_raw, t.quant.max_raw)
        return rng.integers(lo, hi + 1, size=shape).astype(np.float64)
    return rng.normal(size=shape)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for path in sorted(MODELS.glob("*.onnx")):
        if args.only not in path.name:
            continue
        t0 = time.perf_counter()
        row = {"model": path.name}
        try:
            model = load_model(path)
            g = simplify(import_onnx(model))
            row["import"] = "ok"
            row["layers"] = len(g.nodes)
            x = inputs_for(g, model, args.n, rng)
            pf = predict(g, x)
            try:
                po = ort_run(model, x)
            except Exception as e:  # onnxruntime rejects 13 of the published models
                po = None
                row["ort"] = f"no ({type(e).__name__})"
            if po is not None:
                po = po.reshape(pf.shape)
                row["float_err"] = float(np.max(np.abs(pf - po)))
                row["float_cls"] = float(np.mean(pf.reshape(len(x), -1).argmax(1) == po.reshape(len(x), -1).argmax(1)))
            gt = assign_precision(g, Config())
            pt = predict(gt, x)
            ref = (po if po is not None else pf).reshape(len(x), -1)
            if gt.producer(gt.outputs[0]).attrs.get("strategy") == "argmax":  # class index output
                row["fixed_cls"] = float(np.mean(pt.reshape(-1) == ref.argmax(1)))
            else:
                row["fixed_err"] = float(np.max(np.abs(pt.reshape(len(x), -1) - ref)))
                row["fixed_cls"] = float(np.mean(pt.reshape(len(x), -1).argmax(1) == ref.argmax(1)))
        except UserError as e:
            row.setdefault("import", f"error: {e}")
            row["error"] = str(e)
        except Exception as e:
            row["error"] = f"BUG {type(e).__name__}: {e}"
            traceback.print_exc()
        row["s"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
