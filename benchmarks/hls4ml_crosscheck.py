"""Cross-check against hls4ml 1.3 itself, and time both C simulations.

For each model hls4ml accepts (MLPs and small CNNs), convert the same ONNX with hls4ml at the
arithmetic hetero uses by default, compile it (hls4ml's g++ C simulation), predict and trace
every layer, and compare with hetero's reference (and hetero's own C simulation, which must
equal the reference bit for bit). hls4ml's configuration is set from the ONNX op of each layer
after qonnx's preprocessing, so no layer falls back to hls4ml's ``auto`` types:

* inputs, weights, biases, every layer's result: ``fixed<16,6,RND,SAT>`` (hetero's default);
* MatMul / Gemm / Conv accumulator, and MatMul's result: ``fixed<48,28>`` (20 fraction bits hold
  every product of two ``fixed<16,6>`` exactly), so the sum is exact and rounded once (hls4ml
  splits MatMul + Add into a bias-free Dense and an ``ApplyAlpha`` adding the bias, which rounds;
  Conv adds its bias and rounds to its ``fixed<16,6,RND,SAT>`` result), as hetero does;
* Softmax: ``Implementation: argmax`` (hetero computes a fixed-point Softmax as the argmax of
  its input, first index on ties, as hls4ml's ``softmax_argmax``);
* table activations (Sigmoid, ...) keep hls4ml's own table: it is not hetero's (see below).

hls4ml's ONNX path needs qonnx's preprocessing (TOOLCHAIN.md "hls4ml 1.3"); qonnx is a
benchmark-only dependency (``pip install qonnx==1.0.0``).

    python benchmarks/hls4ml_crosscheck.py [--n 1000] [--models KEY ...] [--layers]

Prints a Markdown table: the share of inferences whose last-layer input (the logits) is bit-exact
between hls4ml's trace and hetero's reference, the class agreement, and for a Sigmoid output
the largest difference and whether hls4ml's own table (emulated on hetero's logits) reproduces
hls4ml's outputs bit for bit; then the compile/predict times of hls4ml next to hetero csim's.
``--layers`` also prints, for every traced hls4ml layer, the hetero tensor it matches and how.
"""

from __future__ import annotations

import argparse
import os
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
    "two_layer_pytorch": "hls4ml_examplemodels_two_layer_pytorch.onnx",
    "dense_big": "hls4ml_examplemodels_dense_big_keras.onnx",
    "conv1d": "hls4ml_examplemodels_conv1d_small_keras.onnx",
    "conv2d": "hls4ml_examplemodels_conv2d_small_keras.onnx",
    "conv2d_mp": "hls4ml_examplemodels_conv2d_small_mp_keras.onnx",
    "three_layer_bn": "hls4ml_examplemodels_three_layer_bn_keras.onnx",
}

DEFAULT = "fixed<16,6,RND,SAT>"  # hetero's default precision
EXACT = "fixed<48,28>"  # 20 fraction bits: every product of two fixed<16,6> exactly
MAC_OPS = ("MatMul", "Gemm", "Conv")


def hls4ml_config(model) -> dict:
    """hls4ml's per-layer configuration of the qonnx-preprocessed ``model`` matching hetero's
    default arithmetic (module docstring); every ``auto`` precision is replaced."""
    import hls4ml

    cfg = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend="Vivado",
                                                     default_precision=DEFAULT)
    op_of = {n.name: n.op_type for n in model.graph.node}
    for name, layer in cfg.get("LayerName", {}).items():
        op = op_of.get(name)  # None: an input or a constant (weights, biases)
        prec = layer.setdefault("Precision", {})
        for k in list(prec):
            if prec[k] == "auto" or k in ("result", "accum"):
                # MatMul's bias comes after it (hls4ml's ApplyAlpha): its result stays exact;
                # Conv adds its bias itself and rounds once to its result, as hetero does
                wide = k == "accum" or (k == "result" and op in ("MatMul", "Gemm"))
                prec[k] = EXACT if op in MAC_OPS and wide else DEFAULT
        if op == "Softmax":
            layer["Implementation"] = "argmax"
        layer["Trace"] = True
    return cfg


def hls4ml_model(path: Path, work: Path):
    """hls4ml's HLS model of ``path`` (io_parallel, :func:`hls4ml_config`), compiled; and the
    seconds convert and compile took."""
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(path)))
    m = m.transform(ConvertToChannelsLastAndClean())
    m = m.transform(GemmToMatMul())
    m = cleanup_model(m)
    cfg = hls4ml_config(m)
    t0 = time.perf_counter()
    hm = hls4ml.converters.convert_from_onnx_model(m, output_dir=str(work), backend="Vivado",
                                                    io_type="io_parallel", hls_config=cfg)
    t1 = time.perf_counter()
    hm.compile()
    t2 = time.perf_counter()
    return hm, t1 - t0, t2 - t1


def hls4ml_sigmoid(x: np.ndarray, table_size: int = 1024, table_t: str = "fixed<18,8,TRN,WRAP>",
                   result_t: str = DEFAULT) -> np.ndarray:
    """hls4ml 1.3's ``nnet::sigmoid`` (nnet_activation.h) on real inputs ``x``: entry ``i`` holds
    the float sigmoid at the bin's left edge ``16 * (i - N/2) / N`` cast to ``table_t``; the index
    is ``int(x * N / 16)`` (C conversion: toward zero) ``+ N/2``, clamped."""
    from hetero.ir.fixed import FixedType, quantize, to_float

    edges = (16.0 * (np.arange(table_size) - table_size / 2) / table_size).astype(np.float32)
    f32 = (np.float32(1) + np.exp(-edges)).astype(np.float32)
    table = to_float(quantize(np.float32(1.0 / f32.astype(np.float64)), FixedType.parse(table_t)),
                     FixedType.parse(table_t))
    idx = np.clip(np.trunc(x * table_size / 16).astype(np.int64) + table_size // 2, 0, table_size - 1)
    t = FixedType.parse(result_t)
    return to_float(quantize(table[idx], t), t)


def hls4ml_selu(x: np.ndarray, table_size: int = 1024, table_t: str = "fixed<18,8,TRN,WRAP>",
                result_t: str = DEFAULT) -> np.ndarray:
    """hls4ml 1.3's ``nnet::selu`` on real inputs ``x``: ``x >= 0``: ``lambda * x`` with lambda an
    ``ap_ufixed<16,1>``, cast to ``result_t``; ``x < 0``: entry ``int(x * N / -8)`` (clamped) of a
    table holding the float SELU at ``-8 * i / N`` cast to ``table_t``."""
    from hetero.ir.fixed import FixedType, quantize, to_float

    lam = to_float(quantize(1.0507009873554805, FixedType.parse("ufixed<16,1>")), 15)
    e = np.exp(np.float32(-8.0) * np.arange(table_size, dtype=np.float32) / np.float32(table_size))
    f = np.float32(1.0507009873554805 * (1.6732632423543772 * (e.astype(np.float64) - 1.0)))
    tt, t = FixedType.parse(table_t), FixedType.parse(result_t)
    table = to_float(quantize(f, tt), tt)
    idx = np.clip(np.trunc(x * table_size / -8).astype(np.int64), 0, table_size - 1)
    return to_float(quantize(np.where(x >= 0, lam * x, table[idx]), t), t)


EMULATED = {"sigmoid": hls4ml_sigmoid, "selu": hls4ml_selu}


def first_divergence(hm, trace: dict, layer_rows: list[tuple]) -> str:
    """The first traced hls4ml layer (of at most 24-bit results: hls4ml's exact intermediate sums
    have no hetero counterpart; not the final argmax) that is not bit-identical to a hetero tensor on every inference;
    for a table activation, whether hls4ml's own table (emulated here) applied to its traced
    input reproduces it bit for bit."""
    layers = {la.name: la for la in hm.get_layers()}
    for name, diff, share, _, _ in layer_rows:
        la = layers[name]
        if (share == 1.0 or la.get_output_variable().type.precision.width > 24
                or la.class_name == "Softmax"):  # the argmax: compared as the class agreement
            continue
        text = f"{name} (max diff {diff:.3g})"
        fn = EMULATED.get(str(la.get_attr("activation", "")).lower())
        src = la.get_input_node().name
        if fn is not None and src in trace:
            same = (fn(np.asarray(trace[src], dtype=np.float64)) ==
                    np.asarray(trace[name], dtype=np.float64)).all()
            text += f"; hls4ml's {la.get_attr('activation')} table emulated on its input: " + (
                "bit-exact" if same else "differs")
        return text
    return "none"


def match_layers(trace: dict, graph, values: dict, n: int) -> list[tuple]:
    """For every traced hls4ml layer: the hetero tensor of the same size whose real values it
    matches best (as is, or with hetero's channels-first axis moved last), the share of
    inferences where the two are bit-identical, and the largest difference."""
    rows = []
    for layer, arr in trace.items():
        h = np.asarray(arr, dtype=np.float64).reshape(n, -1)
        best = None
        for name, t in graph.tensors.items():
            if t.dtype is None or name not in values or t.size != h.shape[1]:
                continue
            v = t.to_real(values[name]).reshape((n,) + t.shape)
            forms = [("", v)] + ([("ch-last", np.moveaxis(v, 1, -1))] if v.ndim > 2 else [])
            for how, w in forms:
                d = np.abs(w.reshape(n, -1) - h)
                cand = (float(d.max()), float((d.max(1) == 0).mean()), name, how)
                if best is None or (cand[0], -cand[1]) < (best[0], -best[1]):
                    best = cand
        rows.append((layer,) + (best or (float("nan"), 0.0, "-", "")))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--models", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--layers", action="store_true", help="print the per-layer matching")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from hetero.flows.common import compile_model, random_inputs
    from hetero.sim.csim import csim_graph
    from hetero.backends.hls.project import render_project
    from hetero.reference import execute

    rows = []
    for key in args.models:
        path = MODELS / CANDIDATES.get(key, key)
        g = compile_model(path)
        x = random_inputs(g, args.n, seed=0)
        n = len(x)
        values = execute(g, x)
        out_t = g.tensors[g.outputs[0]]
        logits_name = g.producer(g.outputs[0]).inputs[0]  # the Softmax's / Sigmoid's input
        t_log = g.tensors[logits_name]
        logits = t_log.to_real(values[logits_name]).reshape(n, -1)
        cache = tempfile.mkdtemp(prefix="csim-bench-")  # hetero csim: a cold build, timed
        os.environ["HETERO_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        project = render_project(g)
        t_render = time.perf_counter() - t0
        r = csim_graph(g, x, project)
        shutil.rmtree(cache, ignore_errors=True)
        row = {"model": key, "n": n, "csim_bit_exact": r.bit_exact, "render_s": t_render,
               "csim_build_s": r.build_seconds, "csim_run_s": r.run_seconds}
        work = Path(tempfile.mkdtemp(prefix="hls4ml-"))
        try:
            hm, t_convert, t_compile = hls4ml_model(path, work)
            # float64 in: hls4ml's double entry point quantizes as hetero does, traces exactly
            xs = np.ascontiguousarray(x.reshape((n,) + tuple(g.tensors[g.inputs[0]].shape)))
            t0 = time.perf_counter()
            y_h = np.asarray(hm.predict(xs)).reshape(n, -1)
            t_predict = time.perf_counter() - t0
            _, trace = hm.trace(xs)
            last = list(hm.get_layers())[-1]
            h_logits = np.asarray(trace[last.get_input_node().name], dtype=np.float64).reshape(n, -1)
            layer_rows = match_layers(trace, g, values, n)
            diverge = first_divergence(hm, trace, layer_rows)
        except Exception as e:  # noqa: BLE001 - a model hls4ml refuses: reported, not fatal
            row["hls4ml"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            rows.append(row)
            print(row, flush=True)
            continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        row.update(hls4ml_convert_s=t_convert, hls4ml_compile_s=t_compile, hls4ml_predict_s=t_predict,
                   logits_bit_exact=float((h_logits == logits).all(1).mean()),
                   logits_max_diff=float(np.abs(h_logits - logits).max()), first_divergence=diverge)
        if y_h.shape[1] > 1:  # Softmax as argmax: hls4ml's one-hot against hetero's class index
            ours = values[g.outputs[0]].reshape(n, -1)[:, 0]
            row["class_agreement"] = float((y_h.argmax(-1) == ours).mean())
        else:  # a Sigmoid output: the values, and hls4ml's table emulated on hetero's logits
            ours = out_t.to_real(values[g.outputs[0]]).reshape(n, -1)
            row["class_agreement"] = float(((ours > 0.5) == (y_h > 0.5)).mean())
            row["max_abs_diff"] = float(np.abs(ours - y_h).max())
            row["output_bit_exact"] = float((ours == y_h).all(1).mean())
            row["hls4ml_table_on_our_logits_bit_exact"] = bool((hls4ml_sigmoid(logits) == y_h).all())
        rows.append(row)
        print(row, flush=True)
        if args.layers:
            for layer, diff, share, name, how in layer_rows:
                print(f"    {layer:28s} ~ {name:28s} {how:8s} bit-exact {share * 100:6.1f} %  "
                      f"max diff {diff:.3g}", flush=True)
    print()
    print("| model | inferences | hetero csim bit-exact | logits bit-exact with hls4ml | class agreement "
          "| first layer that differs | hetero csim build / run (s) | hls4ml compile() / predict() (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "hls4ml" in r:
            print(f"| {r['model']} | {r['n']} | {'yes' if r['csim_bit_exact'] else 'NO'} | "
                  f"{r['hls4ml']} | | | {r['csim_build_s']:.1f} / {r['csim_run_s']:.3f} | n/a |")
            continue
        agree = f"{r['class_agreement'] * 100:.1f} %"
        if "max_abs_diff" in r:
            agree += (f" (outputs bit-exact {r['output_bit_exact'] * 100:.1f} %, max diff "
                      f"{r['max_abs_diff']:.4f}; hls4ml's table on our logits: "
                      f"{'bit-exact' if r['hls4ml_table_on_our_logits_bit_exact'] else 'differs'})")
        print(f"| {r['model']} | {r['n']} | {'yes' if r['csim_bit_exact'] else 'NO'} | "
              f"{r['logits_bit_exact'] * 100:.1f} % (max diff {r['logits_max_diff']:.3g}) | {agree} | "
              f"{r['first_divergence']} | "
              f"{r['csim_build_s']:.1f} / {r['csim_run_s']:.3f} | "
              f"{r['hls4ml_compile_s']:.1f} / {r['hls4ml_predict_s']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
