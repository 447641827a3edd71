"""Calibrate the analytic resource model (hetero.hw.cost) against Yosys, per layer and per model.

For each design (a shared model, or a generated one-layer graph of :data:`SYNTHETIC`): compile
it for the board (folding as `hetero synth` chooses), write the top's Verilog, synthesize it with
Yosys keeping the hierarchy (the flow's script without -flatten; synth_ecp5/synth_ice40 with
-noflatten), so that every layer's cells are counted on their own, and compare every layer's
estimate (its op's ``resources`` facet) and the design's total with Yosys' counts (block RAM in
the family's native blocks). With --fit, the LUT coefficients of the board's FAMILY are fitted by
non-negative least squares on relative error over the layers and the glue between them (FIFOs,
forks), pulled toward a prior (--ridge; the family's own coefficients, xc7's for ECP5 and iCE40;
--hold keeps some), the FF scale by the ratio of sums; with --write, they go to
hetero/data/resource_model.json under ``families.<family>`` (xc7 also to xcup) with a new version
and, under ``calibrated_on.<family>``, the board, designs and this command line. Measured counts
go to benchmarks/results/calibrate_<board>.json with the folding each design was synthesized
with; a later run reuses them (the folding pinned, so the design is the one measured) and
synthesizes only designs not there yet (--resynth: all again).

    python benchmarks/calibrate_resources.py --board pynq-z2 [--models ...] [--fit] [--write] [--md]
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
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetero import boards  # noqa: E402
from hetero.cache import cache_root  # noqa: E402
from hetero.ir.config import Config  # noqa: E402
from hetero.synthesis.estimate import graph_resources  # noqa: E402
from hetero.flows.common import compile_model  # noqa: E402
from hetero.dataflow import TOP_NAME, hardware_part
from hetero.backends.rtl.top import Top, top_verilog  # noqa: E402
from hetero.ops import op_of  # noqa: E402
from hetero.hw import cost as rm  # noqa: E402
from hetero.synthesis import yosys as synthesis  # noqa: E402

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
#: Small generated graphs, one layer type each ("per layer type" calibration): name ->
#: (builder, hetero config). Built with onnx.helper, written under the cache, imported like
#: the shared models; the seeds make them the same on every run.
SYN_PRECISION = {"Model": {"Precision": "fixed<8,3,RND,SAT>"}}


def _bipolar(src: str, dst: str, nodes: list, inits: dict) -> None:
    """The standard-ONNX spelling of a bipolar quantizer (as in FINN's exported TFC models)."""
    inits[dst + "_zero"], inits[dst + "_one"] = np.zeros(()), np.ones(())
    nodes += [helper.make_node("GreaterOrEqual", [src, dst + "_zero"], [dst + "_ge"]),
              helper.make_node("Neg", [dst + "_one"], [dst + "_neg"]),
              helper.make_node("Where", [dst + "_ge", dst + "_one", dst + "_neg"], [dst])]


def _binary_dense(n_in: int, n_out: int):
    rng = np.random.default_rng(n_in * n_out)
    nodes: list = []
    inits = {"w_f": rng.standard_normal((n_in, n_out)), "b": np.round(rng.standard_normal(n_out) * 3)}
    _bipolar("w_f", "w", nodes, inits)
    _bipolar("x", "xb", nodes, inits)
    nodes += [helper.make_node("MatMul", ["xb", "w"], ["d"]), helper.make_node("Add", ["d", "b"], ["e"])]
    _bipolar("e", "y", nodes, inits)
    return nodes, inits, [1, n_in]


def _dense(n_in: int, n_out: int):
    rng = np.random.default_rng(n_in + n_out)
    return ([helper.make_node("MatMul", ["x", "w"], ["d"]), helper.make_node("Relu", ["d"], ["y"])],
            {"w": rng.standard_normal((n_in, n_out)) * 0.5}, [1, n_in])


def _depthwise(c: int, hw: int):
    rng = np.random.default_rng(c * hw)
    return ([helper.make_node("Conv", ["x", "w"], ["y"], group=c, pads=[1, 1, 1, 1])],
            {"w": rng.standard_normal((c, 1, 3, 3)) * 0.5}, [1, c, hw, hw])


def _maxpool(c: int, hw: int):
    rng = np.random.default_rng(c)
    return ([helper.make_node("Conv", ["x", "w"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
            {"w": rng.standard_normal((c, c, 1, 1)) * 0.5}, [1, c, hw, hw])


def _add_join(n: int):
    rng = np.random.default_rng(n)
    return ([helper.make_node("MatMul", ["x", "wa"], ["a"]), helper.make_node("MatMul", ["x", "wb"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])],
            {"wa": rng.standard_normal((n, n)) * 0.5, "wb": rng.standard_normal((n, n)) * 0.5}, [1, n])


SYNTHETIC = {
    "syn_binary_dense_64x32": (lambda: _binary_dense(64, 32), {}),
    "syn_binary_dense_256x64_pe4_simd32": (lambda: _binary_dense(256, 64), {"d": {"PE": 4, "SIMD": 32}}),
    "syn_dense_rom_128x32_pe2_simd16": (lambda: _dense(128, 32), {"d": {"PE": 2, "SIMD": 16}}),
    "syn_dense_rom_w3_128x32_pe4_simd16": (lambda: _dense(128, 32),
                                           {"d": {"PE": 4, "SIMD": 16, "Precision": {"weight": "fixed<3,1,RND,SAT>"}}}),
    "syn_depthwise_8x12x12": (lambda: _depthwise(8, 12), {}),
    "syn_maxpool_8x12x12": (lambda: _maxpool(8, 12), {}),
    "syn_add_join_16": (lambda: _add_join(16), {}),
}


def synthetic_model(name: str) -> tuple[Path, Config]:
    """The ONNX file (written under the cache) and config of the generated graph ``name``."""
    build, layers = SYNTHETIC[name]
    nodes, inits, x_shape = build()
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    path = cache_root() / "calib" / "synthetic" / f"{name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path, Config.from_dict({**SYN_PRECISION, **({"LayerName": layers} if layers else {})})


def load_model(name: str, board: boards.Board):
    """A shared model (file name under /work/shared/models) or a :data:`SYNTHETIC` one, compiled
    for ``board``."""
    if name in SYNTHETIC:
        path, cfg = synthetic_model(name)
        return compile_model(path, cfg, board=board)
    return compile_model(MODELS / name, board=board)


#: Coefficients the LUT fit may move (each multiplies one structural count).
LUT_COEFFS = ["lut_per_adder_bit", "pop_lut_per_bit", "mux_lut_per_bit", "epi_plain_lut_per_bit",
              "epi_logic_scale", "stream_lut_per_bit",
              "regroup_lut_per_bit", "lut_per_bit.Relu", "lut_per_bit.Softmax", "pp_lut_per_bit",
              "dsp_adder_lut_per_bit", "rom_lut_per_bit", "window_lut_per_bit", "fold_control_lut",
              "select_lut_per_case", "fifo_lut", "reduce_lut_per_bit.MaxPool"]


#: Coefficients counted in LUTs per unit (not per bit): the ridge measures their deviation
#: from the prior against this size.
PER_UNIT = {"fold_control_lut": 20.0, "fifo_lut": 20.0}


def hier_synth(verilog: str, board: boards.Board) -> dict[str, dict[str, int]]:
    """Cells per module of a hierarchical synthesis (cached by content)."""
    ys = synthesis.script(TOP_NAME, board).replace(" -flatten", "")
    if board.family in ("ecp5", "ice40"):  # synth_ecp5/synth_ice40 flatten by default
        ys = ys.replace(f"synth_{board.family} -top {TOP_NAME}", f"synth_{board.family} -top {TOP_NAME} -noflatten")
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
    """Per layer, and last for the glue between layers (FIFOs, forks: the top's cells outside
    any layer), the LUT count each fitted coefficient contributes (at 1), and the rest."""
    base = rm.coeffs(family)
    zero = {**base, **{k: 0.0 for k in LUT_COEFFS}}
    n = len(hardware_part(graph).nodes)

    def luts(values: dict[str, float]) -> list[float]:
        rows, _ = graph_resources(graph, rm.Calibration.of(family, values))
        return [r["lut"] for r in rows[:n]] + [sum(r["lut"] for r in rows[n:])]

    rest = luts(zero)
    cols = []
    for k in LUT_COEFFS:
        cols.append([v - r for v, r in zip(luts({**zero, k: 1.0}), rest)])
    return np.array(cols).T, rest


def err(est: float, got: float) -> float | None:
    return None if got == 0 and est == 0 else (100.0 * (est - got) / got if got else float("inf"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="*", help="designs (default: those the family's current fit "
                    "was made on, from resource_model.json, else DEFAULT_MODELS)")
    ap.add_argument("--fit", action="store_true", help="fit the LUT coefficients and FF scale")
    ap.add_argument("--write", action="store_true", help="write the fit to resource_model.json")
    ap.add_argument("--md", action="store_true", help="print Markdown tables")
    ap.add_argument("--hold", nargs="*", default=[], metavar="COEFF",
                    help="coefficients the fit keeps at their current value")
    ap.add_argument("--ridge", type=float, default=0.2,
                    help="weight of the pull toward the prior coefficients (0: plain NNLS)")
    ap.add_argument("--prior", help="family whose coefficients are the prior (default: the "
                    "board's own; xc7 for ecp5 and ice40)")
    ap.add_argument("--resynth", action="store_true", help="synthesize every model again")
    args = ap.parse_args()
    board = boards.get(args.board)
    fam = board.family
    if args.models is None:
        on = json.loads(rm._DATA.read_text()).get("calibrated_on", {}).get(fam, {})
        args.models = on.get("models", DEFAULT_MODELS)
    results_path = ROOT / "benchmarks" / "results" / f"calibrate_{board.name}.json"
    stored = {} if args.resynth or not results_path.is_file() else json.loads(results_path.read_text())
    data = []
    for name in args.models:
        t = time.perf_counter()
        graph = load_model(name, board)
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
        for _, graph, measured, total in data:
            x, rest = features(graph, fam)
            glue = {"lut": total["lut"] - sum(m["lut"] for m in measured)}
            for row, r, m in zip(x, rest, measured + [glue]):
                if m["lut"] > 0:
                    w = 1.0 / max(m["lut"], 20)  # relative error, small layers capped
                    xs.append(row * w)
                    ys.append((m["lut"] - r) * w)
            rows, _ = graph_resources(graph, fam)
            ffe += sum(r["ff"] for r in rows[:len(measured)])
            ffm += sum(m["ff"] for m in measured)
        x_all = np.array(xs)
        # coefficients the data says nothing about (or --hold) stay
        used = (np.abs(x_all).sum(axis=0) > 0) & np.array([k not in args.hold for k in LUT_COEFFS])
        held = [k for k, u in zip(LUT_COEFFS, used) if not u]
        ys = [y - float(row[~used] @ np.array([rm.coeffs(fam).get(k, 1.0) for k in held]))
              for row, y in zip(xs, ys)]
        # a pull toward the prior (the family's own coefficients; for the LUT4 families those
        # of xc7): with few layer shapes, coefficients that trade off against each other
        # stay physical instead of one absorbing another's share
        pri = rm.coeffs(args.prior or ("xc7" if fam in ("ecp5", "ice40") else fam))
        keys = [k for k, u in zip(LUT_COEFFS, used) if u]
        scale = [max(pri.get(k, 1.0), PER_UNIT.get(k, 1.0)) for k in keys]
        reg_x = np.diag([args.ridge / sc for sc in scale])
        reg_y = [args.ridge * pri.get(k, 1.0) / sc for k, sc in zip(keys, scale)]
        sol, _ = nnls(np.vstack([x_all[:, used], reg_x]), np.array(ys + reg_y))
        prior = rm.coeffs(fam)
        # not informed by the data: the prior's value; held: the family's own
        fitted = {k: prior.get(k, 1.0) if k in args.hold else pri.get(k, prior.get(k, 1.0))
                  for k in LUT_COEFFS}
        fitted.update(zip([k for k, u in zip(LUT_COEFFS, used) if u], (round(float(v), 4) for v in sol)))
        fitted["ff_scale"] = round(rm.coeffs(fam)["ff_scale"] * ffm / ffe, 4)
        print(f"fitted ({fam}):", json.dumps(fitted), file=sys.stderr)
        model = json.loads(rm._DATA.read_text())
        fams = model.setdefault("families", {})
        on = model.get("calibrated_on", {})
        if "board" in on:  # the single-family layout of earlier versions: xc7 (and xcup)
            on = {f: {**on, "command": model.pop("command", "")} for f in ("xc7", "xcup")}
        model.pop("command", None)
        entry = {"board": board.name, "models": args.models,
                 "command": "python benchmarks/calibrate_resources.py " + " ".join(sys.argv[1:])}
        for f in ([fam, "xcup"] if fam == "xc7" else [fam]):  # UltraScale+ shares the xc7 fit
            fams[f] = {**fams.get(f, {}), **fitted}
            on[f] = entry
        model["calibrated_on"] = on
        stamp = datetime.date.today().isoformat()
        model["version"] = f"{stamp}-" + hashlib.sha256(json.dumps(fams, sort_keys=True)
                                                        .encode()).hexdigest()[:8]
        if args.write:
            rm._DATA.write_text(json.dumps(model, indent=1) + "\n")
            rm._model.cache_clear()
        else:
            return report(data, board, args.md, rm.Calibration.of(fam, {**rm.coeffs(fam), **fitted}))
    report(data, board, args.md)


def report(data, board, md: bool, family: "rm.Family | None" = None) -> None:
    """Print per model and per layer type the estimate against Yosys (BRAM as native blocks);
    ``family``: the board's family, or a :class:`~hetero.hw.cost.Calibration` (the fit)."""
    fam = board.family
    cost_family = family if family is not None else fam
    bram_cell = rm.NATIVE_BRAM[fam][0]

    def blocks(bram36: float) -> str:
        return f"{rm.native_bram(bram36, fam)[1]:g}"

    by_op: dict[str, list] = defaultdict(list)
    lines = [f"{board.name} ({fam}), resource model {rm.model_version()}", "",
             f"| model | LUT est / yosys (err) | FF est / yosys (err) | DSP est / yosys | {bram_cell} est / yosys |",
             "|---|---|---|---|---|"]
    for name, graph, measured, total in data:
        rows, est = graph_resources(graph, cost_family)
        for r, m in zip(rows, measured):
            by_op[r["op"]].append((r, m))
        lines.append(f"| {name.replace('.onnx', '')} | {est.lut:.0f} / {total['lut']} ({err(est.lut, total['lut']):+.1f} %) "
                     f"| {est.ff:.0f} / {total['ff']} ({err(est.ff, total['ff']):+.1f} %) "
                     f"| {est.dsp} / {total['dsp']} | {blocks(est.bram36)} / {blocks(total['bram36'])} |")
    lines += ["", "| layer type | layers | LUT mean abs err | LUT worst | FF mean abs err | DSP exact | BRAM exact |",
              "|---|---|---|---|---|---|---|"]
    for op, pairs in sorted(by_op.items()):
        le = [abs(err(r["lut"], m["lut"]) or 0) for r, m in pairs if m["lut"]]
        fe = [abs(err(r["ff"], m["ff"]) or 0) for r, m in pairs if m["ff"]]
        dsp = sum(r["dsp"] == m["dsp"] for r, m in pairs)
        bram = sum(abs(r["bram36"] - m["bram36"]) < 0.01 for r, m in pairs)
        lines.append(f"| {op} | {len(pairs)} | {np.mean(le) if le else 0:.1f} % | {max(le) if le else 0:.1f} % "
                     f"| {np.mean(fe) if fe else 0:.1f} % | {dsp}/{len(pairs)} | {bram}/{len(pairs)} |")
    if not md:
        lines += ["", "per layer:"]
        for name, graph, measured, total in data:
            rows, _ = graph_resources(graph, cost_family)
            for r, m in zip(rows, measured):
                lines.append(f"  {name[:28]:28s} {r['op']:10s} {r['name'][:24]:24s} LUT {r['lut']:6d}/{m['lut']:<6d} "
                             f"FF {r['ff']:6d}/{m['ff']:<6d} DSP {r['dsp']}/{m['dsp']} "
                             f"{bram_cell} {blocks(r['bram36'])}/{blocks(m['bram36'])}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
