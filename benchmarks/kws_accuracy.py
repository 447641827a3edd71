"""MLPerf Tiny v0.7 KWS-W3A3 on its 1000 shipped test inputs: top-1 of our reference (the
model's own quantizers, integer arithmetic), of its float definition, and of onnxruntime on the
QCDQ conversion. Published on hardware (FINN, Pynq-Z2): 82.5 %.

    python benchmarks/kws_accuracy.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hetero.ir.config import Config
from hetero.frontend.onnx import import_onnx
from hetero.passes.pipeline import assign_precision, simplify
from hetero.reference import predict

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data" / "kws_w3a3"


def main() -> None:
    rows = list(csv.reader(open(DATA / "y_labels.csv")))
    q = np.stack([np.fromfile(DATA / r[0].strip(), dtype=np.int8) for r in rows]).astype(np.float64)
    labels = np.array([int(r[2]) for r in rows])
    for name in ("finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx", "finn_kws_mlp_w3a3_mlperftiny_v0.7_qcdq.onnx"):
        g = simplify(import_onnx(SHARED / "models" / name))
        spec = g.nodes[0].attrs["spec"]  # the input quantizer: dequantize the int8 files with it
        x = ((q - float(spec.zero_point)) * float(spec.scale)).reshape(-1, 1, 10, 49)
        fixed = predict(assign_precision(g, Config()), x).argmax(1)
        floating = predict(g, x).argmax(1)
        line = f"{name}: hetero fixed {np.mean(fixed == labels):.1%}, float definition {np.mean(floating == labels):.1%}"
        if "qcdq" in name:
            import onnxruntime as ort

            for label, level in (("optimized", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                                 ("as defined (optimizations off)", ort.GraphOptimizationLevel.ORT_DISABLE_ALL)):
                opts = ort.SessionOptions()
                opts.log_severity_level, opts.graph_optimization_level = 3, level
                sess = ort.InferenceSession(str(SHARED / "models" / name), opts)
                inp = sess.get_inputs()[0].name
                y = np.concatenate([sess.run(None, {inp: x[k:k + 1].astype(np.float32)})[0] for k in range(len(x))])
                line += (f"; onnxruntime {label} {np.mean(y.argmax(1) == labels):.1%} "
                         f"(same class as hetero fixed on {np.mean(y.argmax(1) == fixed):.1%})")
        print(line)


if __name__ == "__main__":
    main()
