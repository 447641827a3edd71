"""Every shared model through the hardware: generate, simulate in Verilator (native harness),
compare bit-exact with the reference, compare the cycles with the cycle model, and say which
boards the design fits (first-order estimate of :mod:`hetero.passes.folding`).

    python benchmarks/sim_models.py [--n 3] [--target 64] [--write docs/hardware.md] [NAME ...]

Folding: ``--target`` cycles (default 64), raised to ``MACs / --max-mults`` (default 1024: at
most about that many multipliers' worth of work per cycle, which bounds the size, build time and
Verilog of the big CNNs), or the smallest interval the model's non-MAC layers allow when that is
larger (streamed images take at least one cycle per pixel). Inputs:
standard-normal reals (integers of the input type for integer inputs), seeded.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hetero import boards as boards_db  # noqa: E402
from hetero.errors import UserError  # noqa: E402
from hetero.flows.common import compile_model, random_inputs  # noqa: E402
from hetero.passes.folding import FoldingTarget, estimate_fits  # noqa: E402
from hetero.dataflow import cycle_model  # noqa: E402
from hetero.flows.sim import simulate_graph  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
BOARDS = ("icebreaker", "arty-a7-35", "pynq-z2", "zcu104", "alveo-u250")


def compile_for(model: Path, target: int):
    """The model compiled for pynq at ``target`` cycles, or at the smallest interval possible."""
    try:
        return compile_model(model, board="pynq", target=FoldingTarget(target))
    except UserError as e:
        m = re.search(r"needs at least (\d+) cycles", str(e))
        if not m:
            raise
        return compile_model(model, board="pynq", target=FoldingTarget(int(m.group(1))))


def run_one(model: Path, n: int, target: int, seed: int = 0) -> dict:
    """Simulate ``n`` inferences of ``model``; returns a row of the table."""
    t0 = time.perf_counter()
    g = compile_for(model, target)
    with tempfile.TemporaryDirectory(prefix="simall-") as work:
        run = simulate_graph(g, random_inputs(g, n, seed), work, stall_timeout=5_000_000)
    r, exact = run.sim, run.bit_exact
    model_cycles = cycle_model(g)
    fits = {}
    for b in BOARDS:  # each board gets its own default folding (the fastest that fits)
        board = boards_db.get(b)
        fits[b] = estimate_fits(compile_model(model, board=board), board)
    return {"model": model.name, "exact": exact, "n": n, "layers": len(run.top.part.nodes),
            "latency": r.latency_cycles, "latency_model": model_cycles["latency"],
            # steady state: the FIFOs let the first inputs in faster, the outputs leave at the pace
            # of the slowest layer from the second one on
            "interval": int(np.diff(r.out_cycles)[-1]) if n > 1 else float("nan"),
            "interval_model": model_cycles["interval"],
            "fits": fits, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="substrings of model file names (default: all)")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--target", type=int, default=64)
    ap.add_argument("--write", type=Path)
    ap.add_argument("--max-mults", type=int, default=1024,
                    help="fold to at least MACs/N cycles (bounds the design's size)")
    ap.add_argument("--max-macs", type=float, default=15e6,
                    help="skip models with more MACs per inference (their builds take long)")
    args = ap.parse_args()
    models = sorted(MODELS.glob("*.onnx"))
    if args.names:
        models = [m for m in models if any(s in m.name for s in args.names)]
    macs = {m: _macs(m) for m in models}
    models.sort(key=lambda m: (macs[m], m.name))  # cheapest first
    rows = []
    for m in models:
        if macs[m] > args.max_macs:
            row = {"model": m.name, "result": f"skipped: {macs[m]:,} MACs above --max-macs"}
            rows.append(row)
            print(_line(row), flush=True)
            continue
        try:
            target = max(args.target, -(-macs[m] // args.max_mults))
            row = run_one(m, args.n, target)
            row["target"] = target
            row["result"] = "bit-exact" if row["exact"] else "MISMATCH"
        except UserError as e:
            row = {"model": m.name, "result": f"no hardware: {e}"}
        except Exception as e:  # a tool failure is a result of this benchmark, not a crash
            row = {"model": m.name, "result": f"failed: {type(e).__name__}: {str(e)[:160]}"}
        rows.append(row)
        print(_line(row), flush=True)
        if args.write:  # after every model: a long run leaves a table behind
            args.write.write_text(_markdown(rows, args))
    if args.write:
        print(f"wrote {args.write}")


def _macs(model: Path) -> int:
    from hetero.frontend.onnx import import_onnx
    from hetero.report.layers import summarize, totals

    try:
        return totals(summarize(import_onnx(model), check_hardware=False))["macs"]
    except UserError:
        return 0


def _line(r: dict) -> str:
    if "latency" not in r:
        return f"{r['model']}: {r['result']}"
    return (f"{r['model']}: {r['result']} ({r['n']} inferences), latency {r['latency']} "
            f"(model {r['latency_model']}), interval {r['interval']:g} (model "
            f"{r['interval_model']}), {r['seconds']:.0f} s")


def _markdown(rows: list[dict], args) -> str:
    today = datetime.date.today().isoformat()
    head = [
        "# Every shared model in hardware",
        "",
        f"Generated by `python benchmarks/sim_models.py --n {args.n} --target {args.target} "
        f"--max-mults {args.max_mults} --max-macs {args.max_macs:g} --write docs/hardware.md` ({today}, {platform.machine()}, {platform.node() or 'host'}). "
        "Each model is folded for pynq-z2 to the target interval (*target*: the larger of "
        f"{args.target} and MACs/{args.max_mults}; or the smallest its streamed "
        "layers allow), generated, simulated in Verilator with the native harness on "
        f"{args.n} random inputs and compared bit for bit with the reference. *latency*: first "
        "input beat to last output beat of the first inference (cycles), simulated and from the "
        "cycle models (hetero.dataflow.cycle_model: the beat-level model of hetero.hw.beats); "
        "*interval*: cycles between the last two inferences' last output beats (steady state). *fits*: the boards whose budgets "
        "the calibrated per-op resource model (hetero.passes.folding.estimate_fits) meets at the fastest "
        "folding that fits that board; Yosys figures are in BENCHMARKS.md.",
        "",
        "| model | result | layers | target | latency sim / model | interval sim / model | fits |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "latency" not in r:
            head.append(f"| {r['model']} | {r['result']} | | | | | |")
            continue
        fits = ", ".join(b for b, ok in r["fits"].items() if ok) or "none"
        head.append(f"| {r['model']} | {r['result']} | {r['layers']} | {r['target']} | {r['latency']} / "
                    f"{r['latency_model']} | {r['interval']:g} / {r['interval_model']} | {fits} |")
    return "\n".join(head) + "\n"


if __name__ == "__main__":
    main()
