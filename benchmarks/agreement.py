"""Class agreement between the fixed-point reference (default precision) and onnxruntime in
float, on the MLPs of issue 2, for standard-normal inputs (the scale of standardized features).

Usage: python benchmarks/agreement.py [-n 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hetero.flows.synth import class_agreement
from hetero.flows.common import compile_model
from hetero.frontend.onnxrt import run_float
from hetero.reference import predict

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
NAMES = ["hls4ml_examplemodels_three_layer_keras.onnx", "hls4ml_examplemodels_three_layer_pytorch.onnx",
         "hls4ml_examplemodels_two_layer_keras.onnx", "hls4ml_examplemodels_dense_big_keras.onnx"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| model | inputs | agreement with float onnxruntime | max abs error (sigmoid) |")
    print("|---|---|---|---|")
    for name in NAMES:
        graph = compile_model(MODELS / name)
        shape = graph.tensors[graph.inputs[0]].shape
        x = np.random.default_rng(args.seed).standard_normal((args.n,) + shape)
        y_fixed, y_float = predict(graph, x), run_float(MODELS / name, x)
        same = class_agreement(y_fixed, y_float).mean()
        err = f"{np.abs(y_fixed - y_float).max():.4f}" if y_float.shape[1] == 1 else "-"
        print(f"| {name} | {args.n} | {100 * same:.2f} % | {err} |")


if __name__ == "__main__":
    main()
