"""Time every stage of `hetero synth` on the jet-tagging MLP (hls4ml three_layer_keras).

Runs, in one process and one sitting:
  1. pynq-z2, default config (folded to fit): the whole command's wall time and each stage;
  2. alveo-u250, fully parallel, fixed<16,6> (hls4ml's setting: AP_TRN, AP_WRAP, ReuseFactor 1):
     latency and interval in cycles against hls4ml's published 14 cycles at II 1.

Usage: python benchmarks/bench_synth.py [--model PATH] [--only BOARD] [--no-alveo-synth] [--json OUT.json]
Prints a Markdown table for BENCHMARKS.md. Runs with a fresh, private hetero cache, so nothing
of these designs is cached; the two one-time costs of a machine are paid by a warm-up before
timing: Yosys's self-compile (~65 s) and Verilator's runtime library (built once per cache,
done here by simulating the small two_layer model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO.parent / "shared" / "models" / "hls4ml_examplemodels_three_layer_keras.onnx"
HLS4ML = {"latency_cycles": 14, "interval_cycles": 1, "dsp": 1502, "lut": 101839, "ff": 9363,
          "source": "hls4ml tutorial, Vitis HLS 2024.1 csynth, xcu250, 200 MHz, fixed<16,6>, RF 1"}


def run(model: Path, board: str, out: Path, config: Path | None, synth: bool) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "hetero", "synth", str(model), "--board", board, "-o", str(out), "-q"]
    if config:
        cmd += ["--config", str(config)]
    if not synth:
        cmd.append("--no-synth")
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    return json.loads((out / "report.json").read_text()), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--no-alveo-synth", action="store_true", help="skip Yosys for the fully parallel design")
    ap.add_argument("--only", choices=["pynq-z2", "alveo-u250"], help="run one of the two rows")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from hetero.synthesis.yosys import find_yosys

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["HETERO_CACHE_DIR"] = str(tmp / "cache")  # nothing cached from earlier runs
        subprocess.run([find_yosys(), "-V"], check=True, capture_output=True)  # one-time compile
        warm = args.model.parent / "hls4ml_examplemodels_two_layer_keras.onnx"
        run(warm if warm.exists() else args.model, "pynq", tmp / "warm", None, False)  # runtime lib
        if args.only in (None, "pynq-z2"):
            rows["pynq-z2"] = run(args.model, "pynq", tmp / "pynq", None, True)
        if args.only in (None, "alveo-u250"):
            cfg = tmp / "hls4ml.yml"
            cfg.write_text(yaml.safe_dump({"Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1}}))
            rows["alveo-u250"] = run(args.model, "alveo-u250", tmp / "u250", cfg, not args.no_alveo_synth)

    print(f"Machine: {platform.node()} ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}, {date.today()}\n")
    print("| board | config | latency (cycles) | interval (cycles) | LUT | FF | DSP | BRAM36 | "
          "bit-exact (N) | import | reference | verilog | simulate | synthesize | whole command (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for board, (r, wall) in rows.items():
        s = r["stages_s"]
        res = r.get("resources", {}).get("synth", {})
        cfg = "default (folded to fit)" if board == "pynq-z2" else "fixed<16,6> TRN/WRAP, RF 1"
        print(f"| {board} | {cfg} | {r['latency_cycles']} | {r['interval_cycles']:g} | "
              f"{res.get('lut', '-')} | {res.get('ff', '-')} | {res.get('dsp', '-')} | {res.get('bram36', '-')} | "
              f"{r['simulation']['bit_exact']} ({r['simulation']['inferences']}) | "
              + " | ".join(f"{s.get(k, 0):.1f}" for k in ("import", "reference", "verilog", "simulate", "synthesize"))
              + f" | {wall:.1f} |")
    print(f"| hls4ml (published) | {HLS4ML['source']} | {HLS4ML['latency_cycles']} | "
          f"{HLS4ML['interval_cycles']} | {HLS4ML['lut']} | {HLS4ML['ff']} | {HLS4ML['dsp']} | 4 | - | - | - | - | - | - | - |")
    if args.json:
        args.json.write_text(json.dumps({k: {"report": r, "wall_s": w} for k, (r, w) in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
