"""Cross-check against hls4ml 1.3 itself, and time both C simulations.

For each model hls4ml accepts (MLPs and small CNNs), convert the same ONNX with hls4ml at
the precision hetero uses by default (``fixed<16,6,RND,SAT>`` for weights, biases and
results; the sums exact, as in hetero's reference), compile
it (hls4ml's g++ C simulation) and predict, then compare with hetero's reference (and hetero's
own C simulation, which must equal the reference bit for bit). hls4ml's ONNX path needs qonnx's
preprocessing (TOOLCHAIN.md "hls4ml 1.3"); qonnx is a benchmark-only dependency
(``pip install qonnx==1.0.0``).

    python benchmarks/hls4ml_crosscheck.py [--n 1000] [--models KEY ...]

Prints a Markdown table (agreement of the predicted class, and of the raw last-layer values
where both expose them) and the compile/predict times of hls4ml next to hetero csim's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "models"

CANDIDATES = {
    "jet_mlp": "hls4ml_examplemodels_three_layer_keras.onnx",
    "jet_mlp_pytorch": "hls4ml_examplemodels_three_layer_pytorch.onnx",
    "two_layer": "hls4ml_examplemodels_two_layer_keras.onnx",
    "dense_big": "hls4ml_examplemodels_dense_big_keras.onnx",
    "conv1d": "hls4ml_examplemodels_conv1d_small_keras.onnx",
    "conv2d": "hls4ml_examplemodels_conv2d_small_keras.onnx",
}


DEFAULT = "fixed<16,6,RND,SAT>"  # hetero's default precision
EXACT = "fixed<48,28>"  # 20 fraction bits: every product of two fixed<16,6> exactly


def hls4ml_model(path: Path, work: Path):
    """hls4ml's HLS model of ``path`` at ap_fixed<16,6>, io_parallel, compiled; and the seconds
    convert and compile took."""
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(path)))
    m = m.transform(ConvertToChannelsLastAndClean())
    m = m.transform(GemmToMatMul())
    m = cleanup_model(m)
    cfg = hls4ml.utils.config.config_from_onnx_model(m, granularity="name", backend="Vivado",
                                                     default_precision=DEFAULT)
    for name, layer in cfg.get("LayerName", {}).items():
        prec = layer.get("Precision", {})
        for k, v in list(prec.items()):
            if v == "auto":  # hetero's semantics: an exact sum, rounded once to the result type
                wide = name.startswith(("MatMul", "Conv", "Gemm")) and k in ("result", "accum")
                prec[k] = EXACT if wide else DEFAULT
    t0 = time.perf_counter()
    hm = hls4ml.converters.convert_from_onnx_model(m, output_dir=str(work), backend="Vivado",
                                                    io_type="io_parallel", hls_config=cfg)
    t1 = time.perf_counter()
    hm.compile()
    t2 = time.perf_counter()
    return hm, t1 - t0, t2 - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--models", nargs="*", default=list(CANDIDATES))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from hetero.flow import compile_model, random_inputs
    from hetero.hls.csim import csim_graph
    from hetero.hls.project import render_project
    from hetero.reference import execute

    rows = []
    for key in args.models:
        path = MODELS / CANDIDATES[key]
        g = compile_model(path)
        x = random_inputs(g, args.n, seed=0)
        values = execute(g, x)
        ours_class = values[g.outputs[0]].reshape(len(x), -1)
        logits_name = g.producer(g.outputs[0]).inputs[0]  # the softmax's input
        t_log = g.tensors[logits_name]
        logits = t_log.to_real(values[logits_name]).reshape(len(x), -1)
        # hetero csim (cold build timed with a private cache)
        import os
        cache = tempfile.mkdtemp(prefix="csim-bench-")
        os.environ["HETERO_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        project = render_project(g)
        t_render = time.perf_counter() - t0
        r = csim_graph(g, x, project)
        shutil.rmtree(cache, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix="hls4ml-"))
        try:
            hm, t_convert, t_compile = hls4ml_model(path, work)
            xs = x.reshape((len(x),) + tuple(g.tensors[g.inputs[0]].shape))
            if xs.ndim > 2:  # hls4ml takes channels-last images
                xs = np.moveaxis(xs, 1, -1) if path.name.startswith("onnxzoo") else xs
            t0 = time.perf_counter()
            y_h = np.asarray(hm.predict(np.ascontiguousarray(xs.astype(np.float32)))).reshape(len(x), -1)
            t_predict = time.perf_counter() - t0
            err = None
        except Exception as e:  # noqa: BLE001 - a model hls4ml refuses: reported, not fatal
            err = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        row = {"model": key, "n": len(x), "csim_bit_exact": r.bit_exact, "render_s": t_render,
               "csim_build_s": r.build_seconds, "csim_run_s": r.run_seconds}
        if err:
            row["hls4ml"] = err
        else:
            cls_h = y_h.argmax(-1) if y_h.shape[1] > 1 else (y_h[:, 0] > 0.5)
            cls_o = ours_class[:, 0] if ours_class.shape[1] == 1 and y_h.shape[1] > 1 else None
            if cls_o is None:  # no argmax output (a sigmoid): compare the outputs themselves
                ours = g.tensors[g.outputs[0]].to_real(values[g.outputs[0]]).reshape(len(x), -1)
                cls_o = ours[:, 0] > 0.5
                row["max_abs_diff"] = float(np.abs(ours - y_h).max())
            row.update(class_agreement=float((cls_o == cls_h).mean()), hls4ml_convert_s=t_convert,
                       hls4ml_compile_s=t_compile, hls4ml_predict_s=t_predict)
        rows.append(row)
        print(row, flush=True)
    print()
    print("| model | inferences | hetero csim bit-exact | class agreement with hls4ml | hetero csim build / run (s) | hls4ml compile() / predict() (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        agree = f"{r['class_agreement'] * 100:.1f} %" if "class_agreement" in r else r.get("hls4ml", "")
        hl = (f"{r['hls4ml_compile_s']:.1f} / {r['hls4ml_predict_s']:.3f}" if "hls4ml_compile_s" in r else "n/a")
        print(f"| {r['model']} | {r['n']} | {'yes' if r['csim_bit_exact'] else 'NO'} | {agree} | "
              f"{r['csim_build_s']:.1f} / {r['csim_run_s']:.3f} | {hl} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
