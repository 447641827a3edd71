"""Same networks, same part as FINN: UNSW-NB15 MLP w2a2 and TFC-w1a1 on the xc7z020 (pynq-z2).

For each network: import the QONNX model, declare its input as what the data holds (bipolar
+-1: the UNSW model's input carries FINN's ``BIPOLAR`` annotation and goes through
``(x + 1) / 2``, which the ``fold_input_affine`` pass folds into the first layer; TFC's hardware
starts after its input ``BipolarQuant``, whose real-valued prefix FINN also runs on the host),
fold every layer to an interval of at most 64 cycles with per-layer PE/SIMD, then

* the cycle model's latency and interval (sum and max of the layers' :meth:`cycles`);
* a Verilator simulation of the whole design on random bipolar inputs: bit-exact against the
  reference, and its measured latency and interval;
* resources from our own synthesis (Yosys ``synth_xilinx``, ``hetero.synthesis``),

printed beside FINN's published figures (Vivado; ../shared/reference/PUBLISHED_RESULTS.md).

Usage: python benchmarks/finn_compare.py [--n 200] [--no-synth] [--only unsw|tfc] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "models"

from hetero import boards  # noqa: E402
from hetero.config import Config  # noqa: E402
from hetero.flow import cycle_model, layer_rows  # noqa: E402
from hetero.hw.top import TOP_NAME, to_verilog  # noqa: E402
from hetero.ir import Graph  # noqa: E402
from hetero.onnx_import import import_onnx  # noqa: E402
from hetero.passes import pipeline, run_pipeline  # noqa: E402
from hetero.quant import QuantSpec  # noqa: E402
from hetero.reference import run_raw  # noqa: E402

BIPOLAR = QuantSpec("bipolar", np.array(1.0), np.zeros(()), -1, 1)

FINN = {
    "unsw": {"lut": 7226, "ff": 8561, "bram18": 44, "dsp": 0, "latency": 212, "interval": None,
             "note": "Vivado 2022.1 synthesis, xc7z020, 1.69 M fps at 108 MHz (~64 cycles)"},
    "tfc": {"lut": None, "ff": None, "bram18": None, "dsp": None, "latency": None, "interval": 64,
            "note": "published folding: 64-cycle bottleneck; 958,413 img/s on Pynq-Z1 at 100 MHz"},
}


def unsw_graph() -> tuple[Graph, Config]:
    """UNSW-NB15 w2a2: input declared bipolar (fixed<2,2>, +-1), folded to 64 cycles."""
    g = import_onnx(MODELS / "finn_unsw_nb15_mlp_w2a2_qonnxzoo.qonnx.onnx")
    name = g.inputs[0]
    g = replace(g, tensors={**g.tensors, name: replace(g.tensors[name], quant=BIPOLAR)})
    dense = [n.name for n in g.nodes if n.op == "Dense"]
    folding = {dense[0]: {"PE": 1, "SIMD": 600}, dense[1]: {"PE": 1, "SIMD": 64},
               dense[2]: {"PE": 1, "SIMD": 64}, dense[3]: {"PE": 1, "SIMD": 64}}
    cfg = Config.from_dict({"LayerName": {name: {"Precision": "fixed<2,2>"}, **folding}})
    return g, cfg


def tfc_graph() -> tuple[Graph, Config]:
    """TFC-w1a1: the hardware starts at the bipolar output of the input quantizer."""
    g = import_onnx(MODELS / "finn_tfc_1w1a_qonnxzoo.qonnx.onnx")
    k = next(i for i, n in enumerate(g.nodes) if n.op == "Quantize")
    start = g.nodes[k].outputs[0]
    g = Graph(g.name, g.nodes[k + 1:], {**g.tensors, start: replace(g.tensors[start], quant=BIPOLAR)},
              (start,), g.outputs).with_nodes(g.nodes[k + 1:])
    dense = [n.name for n in g.nodes if n.op == "Dense"]
    folding = {dense[0]: {"PE": 1, "SIMD": 784}, dense[1]: {"PE": 1, "SIMD": 64},
               dense[2]: {"PE": 1, "SIMD": 64}, dense[3]: {"PE": 1, "SIMD": 64}}
    cfg = Config.from_dict({"LayerName": {start: {"Precision": "fixed<2,2>"}, **folding}})
    return g, cfg


def evaluate(key: str, graph: Graph, cfg: Config, n: int, synth: bool, work: Path) -> dict:
    from hetero.simulate import simulate
    from hetero.synthesis import synthesize

    board = boards.get("pynq-z2")
    g = run_pipeline(graph, pipeline(cfg, board))
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x = np.random.default_rng(0).choice([-1, 1], size=(n, t_in.size)).astype(np.int64)
    expected = run_raw(g, x.astype(np.float64)).reshape(n, -1)
    t0 = time.perf_counter()
    verilog = to_verilog(g)
    gen_s = time.perf_counter() - t0
    sim = simulate(verilog, TOP_NAME, x, in_width=t_in.dtype.width, in_signed=t_in.dtype.signed,
                   n_out=t_out.size, out_width=t_out.dtype.width, out_signed=t_out.dtype.signed,
                   work_dir=work / key / "sim")
    got = sim.outputs.reshape(expected.shape)
    row = {"network": key, "part": board.part, "clock_mhz": board.clock_mhz,
           "cycle_model": cycle_model(g), "layers": layer_rows(g),
           "sim": {"inferences": n, "bit_exact": bool((got == expected).all()),
                   "mismatches": int((got != expected).any(axis=1).sum()),
                   "latency": int(sim.latency_cycles), "interval": float(sim.interval_cycles),
                   "simulator": sim.simulator},
           "verilog_s": round(gen_s, 2), "finn": FINN[key]}
    if synth:
        t0 = time.perf_counter()
        r = synthesize(verilog, TOP_NAME, board, work / key / "synth")
        row["synth"] = {"tool": r.tool.split(" (")[0], "lut": r.lut, "ff": r.ff, "dsp": r.dsp,
                        "bram18": round(r.bram36 * 2, 1), "lutram": r.lutram,
                        "seconds": round(time.perf_counter() - t0, 1)}
    return row


def table(rows: list[dict]) -> str:
    def f(v):
        return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))

    lines = ["| network | what | interval (cycles) | latency (cycles) | LUT | FF | BRAM18 | DSP | bit-exact |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("synth") or {}
        cm, sim = r["cycle_model"], r["sim"]
        lines.append(f"| {r['network']} | hetero: cycle model | {cm['interval']} | {cm['latency']} | | | | | |")
        lines.append(f"| {r['network']} | hetero: Verilator, Yosys synth_xilinx | {sim['interval']:g} | "
                     f"{sim['latency']} | {f(s.get('lut'))} | {f(s.get('ff'))} | {f(s.get('bram18'))} | "
                     f"{f(s.get('dsp'))} | {sim['bit_exact']} ({sim['inferences']}) |")
        fi = r["finn"]
        lines.append(f"| {r['network']} | FINN ({fi['note']}) | {f(fi['interval'])} | {f(fi['latency'])} | "
                     f"{f(fi['lut'])} | {f(fi['ff'])} | {f(fi['bram18'])} | {f(fi['dsp'])} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="inferences to simulate")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--only", choices=("unsw", "tfc"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    nets = {"unsw": unsw_graph, "tfc": tfc_graph}
    rows = []
    with tempfile.TemporaryDirectory(prefix="finn-compare-", dir=REPO) as tmp:
        for key, make in nets.items():
            if args.only and key != args.only:
                continue
            graph, cfg = make()
            rows.append(evaluate(key, graph, cfg, args.n, not args.no_synth, Path(tmp)))
            print(f"{key}: done", file=sys.stderr)
    print(table(rows))
    for r in rows:
        print(f"\n{r['network']} layers:")
        for layer in r["layers"]:
            print(f"  {layer['op']:6} {layer['in_shape']}->{layer['out_shape']} {layer['out_type']:24} "
                  f"{layer['parallelism']} {layer['cycles']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
