"""Calibrate the analytic resource model (hetero.resources) against Yosys, per layer and per model.

For each model: compile it for the board (folding as `hetero synth` chooses), write the top's
Verilog, synthesize it with Yosys keeping the hierarchy (the flow's script without -flatten, so
that every layer's cells are counted on their own), and compare every layer's estimate (its op's
``resources`` facet) and the model's total with Yosys' counts. With --fit, the LUT coefficients
are fitted by non-negative least squares on relative error over the layers, the FF scale by
the ratio of sums; with --write, they go to hetero/data/resource_model.json with a version and
this command line. Measured counts go to benchmarks/results/calibrate_<board>.json with the
folding each model was synthesized with; a later run reuses them (the folding pinned, so the
design is the one measured) and synthesizes only models not there yet (--resynth: all again).

    python benchmarks/calibrate_resources.py --board pynq-z2 [--fit] [--write] [--md]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetero import boards  # noqa: E402
from hetero.cache import cache_root  # noqa: E402
from hetero.estimate import graph_resources  # noqa: E402
from hetero.flow import compile_model  # noqa: E402
from hetero.hw.top import TOP_NAME, Top, hardware_part, top_verilog  # noqa: E402
from hetero.ops import op_of  # noqa: E402
from hetero import resources as rm  # noqa: E402
from hetero import synthesis  # noqa: E402

MODELS = Path("/work/shared/models")
DEFAULT_MODELS = [
    "hls4ml_qkeras_jettagging_qonnxzoo_std.onnx",
    "hls4ml_examplemodels_three_layer_keras.onnx",
    "finn_unsw_nb15_mlp_w2a2_qonnxzoo_std.onnx",
    "finn_kws_mlp_w3a3_mlperftiny_v0.7_qcdq.onnx",
    "finn_tfc_2w2a_qonnxzoo_std.onnx",
    "hls4ml_examplemodels_conv1d_small_keras.onnx",
    "hls4ml_examplemodels_conv2d_small_keras.onnx",
]
#: Coefficients the LUT fit may move (each multiplies one structural count).
LUT_COEFFS = ["lut_per_adder_bit", "pop_lut_per_bit", "mux_lut_per_bit", "epi_plain_lut_per_bit",
              "epi_logic_scale", "stream_lut_per_bit",
              "regroup_lut_per_bit", "lut_per_bit.Relu", "lut_per_bit.Softmax", "pp_lut_per_bit",
              "dsp_adder_lut_per_bit"]


def hier_synth(verilog: str, board: boards.Board) -> dict[str, dict[str, int]]:
    """Cells per module of a hierarchical synthesis (cached by content)."""
    ys = synthesis.script(TOP_NAME, board).replace(" -flatten", "")
    if board.family in ("ecp5", "ice40"):
        ys = ys.replace(f"-top {TOP_NAME}\n", f"-top {TOP_NAME} -noflatten\n")
    exe = synthesis.find_yosys()
    key = hashlib.sha256(json.dumps([verilog, ys, synthesis.yosys_version(exe)]).encode()).hexdigest()
    entry = cache_root() / "calib" / f"{key}.json"
    if entry.is_file():
        return json.loads(entry.read_text())
    work = cache_root() / "calib" / f"work-{key[:12]}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.v").write_text(verilog)
    (work / "synth.ys").write_text(ys)
    proc = subprocess.run([str(exe), "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed, see {work / 'yosys.log'}")
    stat = json.loads((work / "stat.json").read_text())
    cells = {m.lstrip("\\"): {c: int(n) for c, n in v["num_cells_by_type"].items()}
             for m, v in stat["modules"].items()}
    entry.write_text(json.dumps(cells))
    return cells


def pin_folding(graph, folding: dict[str, list[int]]):
    """``graph`` with the MAC layers' ``pe``/``simd`` set as recorded."""
    return graph.with_nodes([n.evolve(attrs={"pe": folding[n.name][0], "simd": folding[n.name][1]})
                             if n.name in folding else n for n in graph.nodes])


def counts(cells: dict[str, int], family: str) -> dict[str, float]:
    """LUT/FF/DSP/BRAM36 of a cell list by synthesis' own counting rules."""
    r = synthesis.result_from_cells("", family, cells, None, False)
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram36": r.bram36}


def per_layer(graph, modules: dict[str, dict[str, int]], family: str) -> tuple[list, dict]:
    """Measured counts per hardware node (summing its module and submodules) and in total."""
    names = [f"{TOP_NAME}.layer{k}_{n.op.lower()}" for k, n in enumerate(hardware_part(graph).nodes)]
    measured = []
    for name in names:
        cells: dict[str, int] = defaultdict(int)
        for m, cs in modules.items():
            if m == name or m.startswith(name + "."):
                for c, n in cs.items():
                    cells[c] += n
        measured.append(counts(dict(cells), family))
    total: dict[str, int] = defaultdict(int)
    for cs in modules.values():
        for c, n in cs.items():
            total[c] += n
    return measured, counts(dict(total), family)


def features(graph, family: str) -> tuple[np.ndarray, list]:
    """Per layer, the LUT count each fitted coefficient contributes (at 1), and the rest."""
    base = rm.coeffs(family)
    zero = {**base, **{k: 0.0 for k in LUT_COEFFS}}
    nodes = hardware_part(graph).nodes
    with rm.override(zero):
        rest = [op_of(n).resources(n, graph, family).lut for n in nodes]
    cols = []
    for k in LUT_COEFFS:
        with rm.override({**zero, k: 1.0}):
            cols.append([op_of(n).resources(n, graph, family).lut - r for n, r in zip(nodes, rest)])
    return np.array(cols).T, rest


def err(est: float, got: float) -> float | None:
    return None if got == 0 and est == 0 else (100.0 * (est - got) / got if got else float("inf"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--fit", action="store_true", help="fit the LUT coefficients and FF scale")
    ap.add_argument("--write", action="store_true", help="write the fit to resource_model.json")
    ap.add_argument("--md", action="store_true", help="print Markdown tables")
    ap.add_argument("--resynth", action="store_true", help="synthesize every model again")
    args = ap.parse_args()
    board = boards.get(args.board)
    fam = board.family
    results_path = ROOT / "benchmarks" / "results" / f"calibrate_{board.name}.json"
    stored = {} if args.resynth or not results_path.is_file() else json.loads(results_path.read_text())
    data = []
    for name in args.models:
        t = time.perf_counter()
        graph = compile_model(MODELS / name, board=board)
        if name in stored:
            graph = pin_folding(graph, stored[name]["folding"])
            measured, total = stored[name]["layers"], stored[name]["total"]
        else:
            modules = hier_synth(top_verilog(Top(graph)), board)
            measured, total = per_layer(graph, modules, fam)
            stored[name] = {"folding": {n.name: [n.attrs["pe"], n.attrs["simd"]] for n in graph.nodes
                                        if "pe" in n.attrs},
                            "layers": measured, "total": total,
                            "yosys": synthesis.yosys_version(), "yosys_s": round(time.perf_counter() - t, 1),
                            "date": datetime.date.today().isoformat()}
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(stored, indent=1) + "\n")
            print(f"# {name}: yosys {time.perf_counter() - t:.1f} s", file=sys.stderr)
        data.append((name, graph, measured, total))

    if args.fit:
        from scipy.optimize import nnls

        xs, ys, rests, ffe, ffm = [], [], [], 0.0, 0.0
        for _, graph, measured, _ in data:
            x, rest = features(graph, fam)
            for row, r, m in zip(x, rest, measured):
                if m["lut"] > 0:
                    w = 1.0 / max(m["lut"], 20)  # relative error, small layers capped
                    xs.append(row * w)
                    ys.append((m["lut"] - r) * w)
            rows, _ = graph_resources(graph, fam)
            ffe += sum(r["ff"] for r in rows[:len(measured)])
            ffm += sum(m["ff"] for m in measured)
        x_all = np.array(xs)
        used = np.abs(x_all).sum(axis=0) > 0  # coefficients the data says nothing about stay
        sol, _ = nnls(x_all[:, used], np.array(ys))
        prior = rm.coeffs(fam)
        fitted = {k: prior[k] if k in prior else 1.0 for k in LUT_COEFFS}
        fitted.update(zip([k for k, u in zip(LUT_COEFFS, used) if u], (round(float(v), 4) for v in sol)))
        fitted["ff_scale"] = round(rm.coeffs(fam)["ff_scale"] * ffm / ffe, 4)
        print("fitted:", json.dumps(fitted), file=sys.stderr)
        model = json.loads(rm._DATA.read_text())
        model.setdefault("families", {})[fam] = {**model.get("families", {}).get(fam, {}), **fitted}
        if fam == "xc7":
            model["families"]["xcup"] = dict(model["families"][fam])
        stamp = datetime.date.today().isoformat()
        model["version"] = f"{stamp}-" + hashlib.sha256(json.dumps(model["families"], sort_keys=True)
                                                        .encode()).hexdigest()[:8]
        model["command"] = "python benchmarks/calibrate_resources.py " + " ".join(sys.argv[1:])
        model["calibrated_on"] = {"board": board.name, "models": args.models}
        if args.write:
            rm._DATA.write_text(json.dumps(model, indent=1) + "\n")
            rm._model.cache_clear()
        else:
            with rm.override({**rm.coeffs(fam), **fitted}):
                return report(data, board, args.md)
    report(data, board, args.md)


def report(data, board, md: bool) -> None:
    fam = board.family
    by_op: dict[str, list] = defaultdict(list)
    lines = ["| model | LUT est / yosys (err) | FF est / yosys (err) | DSP est / yosys | BRAM36 est / yosys |",
             "|---|---|---|---|---|"]
    for name, graph, measured, total in data:
        rows, est = graph_resources(graph, fam)
        for r, m in zip(rows, measured):
            by_op[r["op"]].append((r, m))
        lines.append(f"| {name.replace('.onnx', '')} | {est.lut:.0f} / {total['lut']} ({err(est.lut, total['lut']):+.1f} %) "
                     f"| {est.ff:.0f} / {total['ff']} ({err(est.ff, total['ff']):+.1f} %) "
                     f"| {est.dsp} / {total['dsp']} | {est.bram36:g} / {total['bram36']:g} |")
    lines += ["", "| layer type | layers | LUT mean abs err | LUT worst | FF mean abs err | DSP exact | BRAM exact |",
              "|---|---|---|---|---|---|---|"]
    for op, pairs in sorted(by_op.items()):
        le = [abs(err(r["lut"], m["lut"]) or 0) for r, m in pairs if m["lut"]]
        fe = [abs(err(r["ff"], m["ff"]) or 0) for r, m in pairs if m["ff"]]
        dsp = sum(r["dsp"] == m["dsp"] for r, m in pairs)
        bram = sum(abs(r["bram36"] - m["bram36"]) < 1e-6 for r, m in pairs)
        lines.append(f"| {op} | {len(pairs)} | {np.mean(le) if le else 0:.1f} % | {max(le) if le else 0:.1f} % "
                     f"| {np.mean(fe) if fe else 0:.1f} % | {dsp}/{len(pairs)} | {bram}/{len(pairs)} |")
    if not md:
        lines += ["", "per layer:"]
        for name, graph, measured, total in data:
            rows, _ = graph_resources(graph, fam)
            for r, m in zip(rows, measured):
                lines.append(f"  {name[:28]:28s} {r['op']:10s} {r['name'][:24]:24s} LUT {r['lut']:6d}/{m['lut']:<6d} "
                             f"FF {r['ff']:6d}/{m['ff']:<6d} DSP {r['dsp']}/{m['dsp']} BRAM {r['bram36']:g}/{m['bram36']:g}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
