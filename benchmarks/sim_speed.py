"""Bulk bit-accurate simulation, side by side: `hetero sim` (RTL, native Verilator harness)
against hls4ml 1.3's C simulation (`compile()` + `predict()`), the same network and the same
10,000 inputs, from the ONNX file to checked outputs.

(a) hetero: a clean build (HETERO_CACHE_DIR set to an empty temporary folder, so the design
    and the Verilator runtime archive are compiled), the design folded as `hetero synth
    --board pynq-z2` would, 10,000 inferences simulated cycle by cycle and compared bit-exact
    with the reference. (a') the same with a cache holding only the runtime archive (built
    once per machine and flag set): the cost of every later new design.
(b) hls4ml: qonnx preprocessing (cleanup, channels-last, Gemm -> MatMul), convert with the
    Vivado backend, io_parallel, the types of hetero's default config (fixed<16,6> weights,
    biases and results with RND/SAT, fixed<31,11> accumulators, argmax softmax), `compile()`
    (g++ against the bundled ap_types) and `predict()` on the 10,000 inputs.

Each side runs in its own child process; the wall time counts everything after the imports
(import seconds are printed apart). Usage:

    python benchmarks/sim_speed.py [--model PATH] [-n 10000] [--board pynq-z2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO.parent / "shared" / "models" / "hls4ml_examplemodels_three_layer_keras.onnx"


def side_hetero(model: Path, x: np.ndarray, board: str) -> dict:
    t0 = time.perf_counter()
    from hetero.flows.sim import simulate_model

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = simulate_model(model, inputs=x, board=board)
    wall = time.perf_counter() - t0
    s = report.sim
    from hetero.reference import predict
    from hetero.flows.common import compile_model

    classes = predict(compile_model(model, None, board), x).reshape(len(x))
    return {"wall_s": wall, "import_s": t_import, "stages_s": report.stages_s,
            "bit_exact": report.bit_exact, "mismatches": report.mismatches,
            "build_s": s.build_seconds, "runtime_compiled": report.runtime_compiled,
            "run_s": s.run_seconds, "cycles": s.total_cycles,
            "cycles_per_s": s.cycles_per_second, "latency_cycles": s.latency_cycles,
            "interval_cycles": s.interval_cycles, "classes": classes.tolist()}


def side_hls4ml(model: Path, x: np.ndarray) -> dict:
    t0 = time.perf_counter()
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = cleanup_model(ModelWrapper(str(model)))
    m = cleanup_model(m.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul()))
    cfg = hls4ml.utils.config.config_from_onnx_model(m, granularity="name", backend="Vivado",
                                                     default_precision="fixed<16,6>")
    data, acc = "fixed<16,6,RND,SAT>", "fixed<31,11>"
    for name, layer in cfg["LayerName"].items():
        prec = layer.setdefault("Precision", {})
        if name.startswith("MatMul") and not name.endswith("param0"):
            prec.update(result=acc, accum=acc)
        elif name.startswith("Softmax"):
            layer["Implementation"] = "argmax"
            prec["result"] = data
        else:  # inputs, weights, biases, bias adds, ReLUs
            prec["result"] = data
    out_dir = tempfile.mkdtemp(prefix="hls4ml-")
    hm = hls4ml.converters.convert_from_onnx_model(m, output_dir=out_dir, hls_config=cfg,
                                                   backend="Vivado", io_type="io_parallel")
    t1 = time.perf_counter()
    hm.compile()
    t2 = time.perf_counter()
    y = hm.predict(np.ascontiguousarray(x, dtype=np.float32))
    t3 = time.perf_counter()
    return {"wall_s": t3 - t0, "import_s": t_import, "convert_s": t1 - t0,
            "compile_s": t2 - t1, "predict_s": t3 - t2,
            "classes": np.asarray(y).reshape(len(x), -1).argmax(-1).tolist()}


def child(side: str, model: Path, inputs: Path, board: str, result: Path) -> None:
    x = np.load(inputs)
    r = side_hetero(model, x, board) if side == "hetero" else side_hls4ml(model, x)
    result.write_text(json.dumps(r))


def run_side(side: str, model: Path, inputs: Path, board: str, tmp: Path,
             cache: Path | None = None) -> dict:
    result = tmp / f"{side}.json"
    env = dict(os.environ)
    if cache is not None:  # hetero's own cache: empty, or holding only the runtime archive
        env["HETERO_CACHE_DIR"] = str(cache)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", side, "--model", str(model),
                           "--inputs", str(inputs), "--board", board, "--result", str(result)],
                          env=env, capture_output=True, text=True, check=False)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{side} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    r = json.loads(result.read_text())
    r["process_s"] = total
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["hetero", "hls4ml"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.model, args.inputs, args.board, args.result)
        return

    with tempfile.TemporaryDirectory(prefix="sim-speed-") as d:
        tmp = Path(d)
        x = np.random.default_rng(args.seed).standard_normal((args.n, 16)).astype(np.float32)
        np.save(tmp / "x.npy", x)
        clean = tmp / "cache-clean"
        h = run_side("hetero", args.model, tmp / "x.npy", args.board, tmp, clean)
        warm = tmp / "cache-runtime-only"  # what every later design of this machine sees
        (warm / "rtlsim").mkdir(parents=True)
        for a in (clean / "rtlsim").glob("runtime-*.a"):
            shutil.copy(a, warm / "rtlsim" / a.name)
        h2 = run_side("hetero", args.model, tmp / "x.npy", args.board, tmp, warm)
        k = run_side("hls4ml", args.model, tmp / "x.npy", args.board, tmp)
    agree = float(np.mean(np.array(h.pop("classes")) == np.array(k.pop("classes"))))
    h2.pop("classes")
    print(f"model {args.model.name}, {args.n} inferences, load {os.getloadavg()[0]:.1f}")
    for label, r in (("(a) hetero sim, empty cache", h),
                     ("(a') hetero sim, cache holding only the runtime archive", h2)):
        print(f"{label} --board {args.board}: {r['wall_s']:.1f} s "
              f"(+{r['import_s']:.1f} s imports); bit-exact {r['bit_exact']} "
              f"({r['mismatches']} mismatches)")
        print(f"    stages {r['stages_s']}")
        runtime = "compiled by this run" if r["runtime_compiled"] else "reused"
        print(f"    build {r['build_s']:.1f} s (Verilator runtime archive {runtime}), "
              f"simulate {r['run_s']:.2f} s: "
              f"{r['cycles']:,} cycles, {r['cycles_per_s'] / 1e6:.2f} M cycles/s, "
              f"latency {r['latency_cycles']}, interval {r['interval_cycles']:g} cycles")
    print(f"(b) hls4ml compile+predict: {k['wall_s']:.1f} s (+{k['import_s']:.1f} s imports): "
          f"convert {k['convert_s']:.1f} s, compile {k['compile_s']:.1f} s, "
          f"predict {k['predict_s']:.2f} s")
    print(f"ratio hetero / hls4ml = {h['wall_s'] / k['wall_s']:.2f} (empty cache), "
          f"{h2['wall_s'] / k['wall_s']:.2f} (runtime archive reused); "
          f"same class on {agree:.1%} of inputs")
    if args.json:
        args.json.write_text(json.dumps({"hetero": h, "hetero_runtime_reused": h2, "hls4ml": k,
                                         "class_agreement": agree, "n": args.n,
                                         "board": args.board}, indent=1))


if __name__ == "__main__":
    main()
