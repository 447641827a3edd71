"""Same networks, same part as FINN: UNSW-NB15 MLP w2a2 and TFC-w1a1 on the xc7z020 (pynq-z2),
through the product's own flow only.

For each network, exactly what ``hetero synth MODEL --board pynq --target-interval 64`` does
(:func:`hetero.flows.synth.synth`): import the QONNX model (FINN's ``finn_datatype`` annotations type
the input; the host runs the float prefix and the input quantizer), fold every MAC layer to an
interval of at most 64 cycles (:class:`hetero.passes.folding.FoldingTarget`), generate Verilog, simulate
it with the native Verilator harness against the bit-accurate reference and synthesize it with
Yosys (``hetero.synthesis.yosys``). No graph surgery, no hand-made folding. Printed beside FINN's
published figures (Vivado and boards; ../shared/reference/PUBLISHED_RESULTS.md): the two are
different tools, so LUT counts compare designs only roughly.

Usage: python benchmarks/finn_compare.py [--n 200] [--no-synth] [--only unsw|tfc]
                                         [--json OUT] [--write TABLE.md] [--cli]
``--cli`` also runs ``hetero synth`` from the command line for each network and checks that its
report gives the same cycles and resources.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "models"

from hetero.flows.synth import synth  # noqa: E402
from hetero.passes.folding import FoldingTarget  # noqa: E402

BOARD = "pynq"
INTERVAL = 64

NETWORKS = {
    "unsw": {
        "title": "UNSW-NB15 MLP w2a2",
        "model": MODELS / "finn_unsw_nb15_mlp_w2a2_qonnxzoo.qonnx.onnx",
        # the features are bits; the model's input is declared BIPOLAR (+-1)
        "inputs": lambda rng, n: rng.choice([-1.0, 1.0], size=(n, 600)),
        "finn": {"lut": 7226, "ff": 8561, "bram18": 44, "dsp": 0, "latency": 212, "interval": None,
                 "note": "FINN: Vivado 2022.1 synthesis, xc7z020; latency from rtlsim; "
                         "1.69 M fps at 108 MHz (~64 cycles)"},
    },
    "tfc": {
        "title": "TFC-w1a1 (MNIST)",
        "model": MODELS / "finn_tfc_1w1a_qonnxzoo.qonnx.onnx",
        "inputs": lambda rng, n: rng.random((n, 1, 28, 28)),  # pixels in [0, 1)
        "finn": {"lut": None, "ff": None, "bram18": None, "dsp": None, "latency": None, "interval": 64,
                 "note": "FINN: published build, 64-cycle bottleneck; board: 958,413 img/s "
                         "on Pynq-Z1 at 100 MHz"},
    },
}


def evaluate(key: str, n: int, synthesize: bool, work: Path) -> dict:
    """Run the flow on one network; the figures the table needs."""
    net = NETWORKS[key]
    x = net["inputs"](np.random.default_rng(0), n)
    t0 = time.perf_counter()
    report = synth(net["model"], BOARD, work / key, inputs=x, synthesize=synthesize,
                   target=FoldingTarget(INTERVAL))
    res = (report.get("resources") or {}).get("synth") or {}
    return {
        "network": key, "title": net["title"], "part": report["part"], "clock_mhz": report["clock_mhz"],
        "cycle_model": report["cycle_model"],
        "sim": {"inferences": report["simulation"]["inferences"],
                "bit_exact": report["simulation"]["bit_exact"],
                "latency": report["latency_cycles"], "interval": report["interval_cycles"],
                "simulator": report["simulation"]["simulator"]},
        "synth": {"tool": res.get("tool", "").split(" (")[0], "lut": res.get("lut"), "ff": res.get("ff"),
                  "dsp": res.get("dsp"),
                  "bram18": None if res.get("bram36") is None else round(res["bram36"] * 2, 1)}
        if res else None,
        "layers": [{k: layer[k] for k in ("op", "in_shape", "out_shape", "in_type", "out_type",
                                          "parallelism", "cycles")}
                   for layer in report["layers"] if layer["runs_on"] == "fpga"],
        "stages_s": report["stages_s"], "seconds": round(time.perf_counter() - t0, 1),
        "finn": net["finn"],
    }


def run_cli(key: str, n: int, work: Path) -> dict:
    """``hetero synth MODEL --board pynq --target-interval 64 --inputs X.npy`` from the command
    line on the batch :func:`evaluate` used; its report's cycles and resources. (Inputs are
    given: the UNSW model's input is declared bipolar, and the default random inputs are
    standard normal.)"""
    out = work / f"cli-{key}"
    inputs = work / f"{key}-inputs.npy"  # the same batch evaluate() simulates
    np.save(inputs, NETWORKS[key]["inputs"](np.random.default_rng(0), n))
    cmd = [sys.executable, "-m", "hetero", "synth", str(NETWORKS[key]["model"]), "--board", BOARD,
           "--target-interval", str(INTERVAL), "--inputs", str(inputs), "-o", str(out), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    r = json.loads((out / "report.json").read_text())
    s = (r.get("resources") or {}).get("synth") or {}
    return {"command": shlex.join(["hetero"] + cmd[3:]), "latency": r["latency_cycles"],
            "interval": r["interval_cycles"], "bit_exact": r["simulation"]["bit_exact"],
            "lut": s.get("lut"), "ff": s.get("ff"), "dsp": s.get("dsp"), "bram36": s.get("bram36")}


def table(rows: list[dict]) -> str:
    """The comparison as a markdown table."""
    def f(v):
        if v is None:
            return "-"
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| network | what (tool) | interval (cycles) | latency (cycles) | LUT | FF | BRAM18 | DSP | bit-exact |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("synth") or {}
        cm, sim = r["cycle_model"], r["sim"]
        lines.append(f"| {r['title']} | hetero: cycle model | {cm['interval']} | {cm['latency']} | | | | | |")
        lines.append(f"| {r['title']} | hetero: our simulation ({sim['simulator']}), our synthesis "
                     f"({s.get('tool') or 'none'} synth_xilinx) | {f(sim['interval'])} | {sim['latency']} | "
                     f"{f(s.get('lut'))} | {f(s.get('ff'))} | {f(s.get('bram18'))} | {f(s.get('dsp'))} | "
                     f"{'yes' if sim['bit_exact'] else 'NO'} ({sim['inferences']} inferences) |")
        fi = r["finn"]
        lines.append(f"| {r['title']} | {fi['note']} | {f(fi['interval'])} | {f(fi['latency'])} | "
                     f"{f(fi['lut'])} | {f(fi['ff'])} | {f(fi['bram18'])} | {f(fi['dsp'])} | |")
    return "\n".join(lines)


def provenance(argv: list[str]) -> str:
    """The exact command, the machine and the date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Command: `python benchmarks/finn_compare.py {shlex.join(argv)}`  \n"
            f"Machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}  \n"
            f"Date: {datetime.date.today().isoformat()}; board `{BOARD}` (xc7z020), "
            f"target interval {INTERVAL} cycles (`--target-interval {INTERVAL}`)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="inferences to simulate")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--only", choices=tuple(NETWORKS))
    ap.add_argument("--json", type=Path, help="write every figure as JSON")
    ap.add_argument("--write", type=Path, help="write the table (markdown) with its provenance")
    ap.add_argument("--cli", action="store_true", help="also check `hetero synth` from the CLI")
    args = ap.parse_args(argv)
    rows, cli = [], {}
    with tempfile.TemporaryDirectory(prefix="finn-compare-", dir=REPO) as tmp:
        for key in NETWORKS:
            if args.only and key != args.only:
                continue
            rows.append(evaluate(key, args.n, not args.no_synth, Path(tmp)))
            print(f"{key}: done in {rows[-1]['seconds']} s {rows[-1]['stages_s']}", file=sys.stderr)
            if args.cli:
                cli[key] = run_cli(key, args.n, Path(tmp))
    text = table(rows) + "\n\n" + provenance(argv)
    print(text)
    for r in rows:
        print(f"\n{r['title']} layers (hardware part):")
        for layer in r["layers"]:
            print(f"  {layer['op']:6} {layer['in_shape']}->{layer['out_shape']} {layer['out_type']:24} "
                  f"{layer['parallelism']} {layer['cycles']}")
    status = 0
    for key, c in cli.items():
        r = next(r for r in rows if r["network"] == key)
        s = r["synth"] or {}
        same = (c["latency"] == r["sim"]["latency"] and c["interval"] == r["sim"]["interval"]
                and c["bit_exact"] and (args.no_synth or (c["lut"], c["dsp"]) == (s.get("lut"), s.get("dsp"))))
        print(f"\nCLI: {c['command']}\n  latency {c['latency']}, interval {c['interval']}, bit-exact "
              f"{c['bit_exact']}, LUT {c['lut']}, FF {c['ff']}, DSP {c['dsp']}, BRAM36 {c['bram36']}: "
              f"{'same as above' if same else 'DIFFERENT'}")
        status |= not same
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cli": cli}, indent=1, default=str) + "\n")
    if args.write:
        args.write.write_text(text + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
