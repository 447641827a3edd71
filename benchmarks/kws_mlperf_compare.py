"""MLPerf Tiny v0.7 KWS-W3A3 on pynq-z2: our simulated FPGA design, this machine's CPU
(onnxruntime) and the GPU (where there is one) beside the published FINN figures, with the
accuracy of float, fixed point and the simulated hardware on the 1000 shipped test inputs.

    python benchmarks/kws_mlperf_compare.py [-o OUT] [--no-synth]

Writes OUT/report.html, report.md and report.json (default OUT: build/kws_mlperf_compare) and
prints the Markdown table that BENCHMARKS.md carries.
"""

from __future__ import annotations

import argparse
import csv
import platform
import tempfile
from pathlib import Path

import numpy as np

from hetero.flows.synth import synth
from hetero.frontend.onnx import import_onnx
from hetero.passes.pipeline import simplify

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL = SHARED / "models" / "finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx"
DATA = SHARED / "data" / "kws_w3a3"


def kws_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The 1000 int8 test inputs dequantized with the model's input quantizer, and labels."""
    rows = list(csv.reader(open(DATA / "y_labels.csv")))
    q = np.stack([np.fromfile(DATA / r[0].strip(), dtype=np.int8) for r in rows]).astype(np.float64)
    spec = simplify(import_onnx(MODEL)).nodes[0].attrs["spec"]
    x = ((q - float(spec.zero_point)) * float(spec.scale)).reshape(-1, 1, 10, 49)
    return x, np.array([int(r[2]) for r in rows])


def _f(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 1e4 else f"{v:.{digits}g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=REPO / "build" / "kws_mlperf_compare")
    ap.add_argument("--no-synth", action="store_true", help="skip Yosys (FPGA power: static only)")
    args = ap.parse_args()
    x, y = kws_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        xs, ys = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(xs, x)
        np.save(ys, y)
        r = synth(MODEL, "pynq-z2", args.out, inputs=xs, labels=ys, synthesize=not args.no_synth,
                  progress=lambda s: print(f"> {s}", flush=True))
    b = r["baselines"]
    acc = r.get("accuracy", {})
    print(f"\n{MODEL.name} on pynq-z2; CPU {b['cpu']['device'] if b['cpu'] else '-'}; "
          f"{platform.platform()}; load average while timing {b['cpu'].get('load_average') if b['cpu'] else '-'}")
    print("\n| | latency, batch 1 (us) | throughput (inferences/s) | energy per inference (uJ) | "
          "energy is | accuracy (1000 test inputs) |")
    print("|---|---|---|---|---|---|")
    rows = [("hetero FPGA design, simulated (pynq-z2, 100 MHz)", b["fpga"], acc.get("hardware"))]
    rows += [(f"CPU: {b['cpu']['device']}, {b['graph_timed'].split(':')[0]}", b["cpu"], acc.get("onnxruntime"))] if b["cpu"] else []
    rows += [("GPU", b["gpu"], None)] if b["gpu"] else []
    rows += [(p["label"], p, p.get("accuracy")) for p in r.get("published", [])]
    for name, e, a in rows:
        en = e.get("energy") or {}
        batch = f" (batch {e['best_batch']})" if e.get("best_batch") else ""
        print(f"| {name} | {_f(e['batch1_latency_us'])} | {_f(e['best_throughput_per_s'])}{batch} | "
              f"{_f(en.get('throughput_uj'))} (batch 1: {_f(en.get('batch1_uj'))}) | "
              f"{'measured' if en.get('measured') else 'estimated'} | {'-' if a is None else f'{100 * a:.1f} %'} |")
    if not b["gpu"]:
        print(f"\nGPU: {b.get('gpu_note')}")
    print(f"\nAccuracy: float {100 * acc['float']:.1f} %, fixed-point reference {100 * acc['fixed_reference']:.1f} %, "
          f"simulated hardware {100 * acc['hardware']:.1f} %")
    print(f"FPGA power model: {b['fpga']['energy']['method']}")
    print(f"stages (s): {r['stages_s']}")
    print(f"report: {args.out / 'report.html'}")


if __name__ == "__main__":
    main()
