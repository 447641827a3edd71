"""CPU, GPU and FPGA side by side: the measurements behind "where should this network run?".

* :func:`runnable_model`: the ONNX graph onnxruntime can run for a model: the model itself, or
  for QONNX models (``Quant``/``BipolarQuant``, which onnxruntime cannot run) a float lowering:
  weight quantizers folded to float constants, activation quantizers as plain float ops with
  the QONNX definition; the returned note says which graph was timed.
* :func:`cpu_baseline` / :func:`gpu_baseline`: onnxruntime, measured: latency at batch 1 and
  throughput over batch sizes 1..1024 (:func:`sweep`: those the model accepts, a note saying
  which were not timed and why; repetitions chosen to fit a time budget),
  the device named, energy per inference (:mod:`hetero.report.energy`: RAPL / NVML measured, else
  estimated). The GPU path uses onnxruntime's ``CUDAExecutionProvider`` and is skipped with a
  note where onnxruntime has none.
* :func:`fpga_baseline`: latency and throughput from the simulated cycles at the board's
  clock, energy from the FPGA power model.
* :func:`baselines`: all three, as ``report.json`` holds them under ``baselines``.
* :func:`fixed_point_errors`: per-layer histograms of fixed point minus float (the report's
  profiling plots); :func:`accuracy`: top-1 of float, fixed-point reference and hardware.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from hetero.report import energy
from hetero.report.synth import Report
from hetero.ir.npy import load_npy
from hetero.errors import UserError

BATCHES = tuple(2 ** k for k in range(11))  # 1 .. 1024
BUDGET_S = 1.5  # wall time for one device's whole sweep
_CHUNKS = 5  # timed chunks per batch size; the fastest chunk counts (timeit's rule)


# -- the graph onnxruntime runs ---------------------------------------------------------------

_QONNX_OPS = ("Quant", "BipolarQuant", "Trunc")
_ROUND_OPS = {"ROUND": "Round", "HALF_EVEN": "Round", "FLOOR": "Floor", "CEIL": "Ceil"}


def _custom_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes onnxruntime has no kernel for: other domains, and QONNX's ops whatever their
    domain (some exports leave ``Quant`` in the default one)."""
    return sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node
                   if n.domain not in ("", "ai.onnx") or n.op_type in _QONNX_OPS})


class _Lowering:
    """QONNX quantizers as float ONNX ops (in place): weights' quantizers folded to float
    constants, activations' ``Quant`` as ``Div, Add, Round, Min, Max, Sub, Mul`` (the QONNX
    definition in float32) and ``BipolarQuant`` as ``Where(Not(Less(x, 0)), s, -s)``."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.consts = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
        self.counter = 0
        self.folded = self.lowered = 0

    def const(self, value: np.ndarray) -> str:
        self.counter += 1
        name = f"__hetero_lower_{self.counter}"
        self.model.graph.initializer.append(
            onnx.numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def tmp(self) -> str:
        self.counter += 1
        return f"__hetero_lower_{self.counter}"

    def run(self) -> None:
        from onnx import helper

        nodes = []
        for n in self.model.graph.node:
            if n.op_type not in ("Quant", "BipolarQuant"):
                nodes.append(n)
                continue
            params = [self.consts.get(i) for i in n.input[1:]]
            if any(p is None for p in params):
                raise ValueError(f"{n.op_type} '{n.name}' has non-constant parameters")
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            scale = np.asarray(params[0], np.float32)
            bits = int(np.asarray(params[2])) if n.op_type == "Quant" else 1
            signed = bool(attrs.get("signed", 1)) if n.op_type == "Quant" else True
            x, y = n.input[0], n.output[0]
            if bits == 1 and signed:  # bipolar, as hetero reads a 1-bit signed Quant
                if x in self.consts:
                    self._fold(y, np.where(self.consts[x] >= 0, scale, -scale))
                    continue
                lt, ge, neg = self.tmp(), self.tmp(), self.tmp()
                nodes += [helper.make_node("Less", [x, self.const(0.0)], [lt]),
                          helper.make_node("Not", [lt], [ge]),
                          helper.make_node("Neg", [self.const(scale)], [neg]),
                          helper.make_node("Where", [ge, self.const(scale), neg], [y])]
                self.lowered += 1
                continue
            zero = np.asarray(params[1], np.float32)
            narrow = int(attrs.get("narrow", 0))
            lo, hi = ((-2 ** (bits - 1) + narrow, 2 ** (bits - 1) - 1) if signed
                      else (0, 2 ** bits - 1 - narrow))
            mode = attrs.get("rounding_mode", b"ROUND")
            mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
            if mode not in _ROUND_OPS:
                raise ValueError(f"Quant '{n.name}': rounding mode {mode} has no ONNX op")
            if x in self.consts:
                from hetero.ir.quant import round_float, rounding_name

                v = np.asarray(self.consts[x], np.float32)
                q = np.clip(round_float(v / scale + zero, rounding_name(mode)), lo, hi)
                self._fold(y, ((q - zero) * scale).astype(np.float32))
                continue
            t = [self.tmp() for _ in range(5)]
            s_name, z_name = self.const(scale), self.const(zero)
            nodes += [helper.make_node("Div", [x, s_name], [t[0]]),
                      helper.make_node("Add", [t[0], z_name], [t[1]]),
                      helper.make_node(_ROUND_OPS[mode], [t[1]], [t[2]]),
                      helper.make_node("Min", [t[2], self.const(hi)], [t[3]]),
                      helper.make_node("Max", [t[3], self.const(lo)], [t[4]]),
                      helper.make_node("Sub", [t[4], z_name], [t[0] + "_c"]),
                      helper.make_node("Mul", [t[0] + "_c", s_name], [y])]
            self.lowered += 1
        del self.model.graph.node[:]
        self.model.graph.node.extend(nodes)

    def _fold(self, name: str, value: np.ndarray) -> None:
        self.model.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(value, np.float32), name))
        self.folded += 1


def runnable_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, str]:
    """``(graph, note)``: the graph onnxruntime can time for ``model`` and which one it is;
    ``(None, reason)`` where neither the model nor its float lowering runs."""
    from hetero.frontend.onnxrt import session

    custom = _custom_nodes(model)
    if not custom:
        try:
            session(model, as_defined=False)
            return model, "the model as given"
        except UserError as e:
            return None, str(e)
    unknown = [c for c in custom if c.split(":")[1] not in ("Quant", "BipolarQuant")]
    if unknown:
        return None, f"onnxruntime has no kernel for {', '.join(unknown)}"
    lowered = onnx.ModelProto.FromString(model.SerializeToString())
    try:
        low = _Lowering(lowered)
        low.run()
        opset = next((o for o in lowered.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset is not None and opset.version < 11:  # Round needs opset 11: convert the
            from onnx import version_converter     # graph with Floor standing in for it

            rounds = {n.output[0] for n in lowered.graph.node if n.op_type == "Round"}
            for n in lowered.graph.node:
                if n.op_type == "Round":
                    n.op_type = "Floor"
            lowered = version_converter.convert_version(lowered, 11)
            for n in lowered.graph.node:
                if n.op_type == "Floor" and n.output[0] in rounds:
                    n.op_type = "Round"
    except Exception as e:  # a parameter that is not constant, a converter failure
        return None, f"cannot lower the QONNX quantizers to float ops: {str(e).splitlines()[0]}"
    try:
        session(lowered, as_defined=False)
    except UserError as e:
        return None, f"the float lowering does not run: {e}"
    return lowered, (f"hetero's float lowering of the QONNX graph: {low.folded} weight quantizers "
                     f"folded to float constants, {low.lowered} activation quantizers as float ops "
                     "(Div, Add, Round, Min, Max, Sub, Mul; bipolar as Where), computed in float32 "
                     "by onnxruntime")


# -- timing ---------------------------------------------------------------------------------

def _time_runs(run: Callable[[], object], reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        run()
    return (time.perf_counter() - t) / reps


def sweep(sess, x_one: np.ndarray, batches=BATCHES, budget_s: float = BUDGET_S,
          meter: energy.EnergyMeter | None = None, fixed: tuple[int, str] | None = None) -> dict:
    """Time ``sess`` at each batch size the model accepts: seconds per run (the fastest of
    :data:`_CHUNKS` chunks of repetitions sized to share ``budget_s`` among the batch sizes).
    ``fixed``: :func:`hetero.frontend.onnxrt.fixed_batch`'s answer: only that batch size is
    timed. A batch size onnxruntime fails on, or answers with another batch or other numbers
    than batch 1's, is not timed, nor are the larger ones (the graph fixes its batch where
    hetero cannot see it). Stops before a batch size whose single run would exceed the budget
    left. Returns ``{rows:
    [{batch, run_s, per_s, joules_per_inference}], skipped_batches, note}``: the note says
    which batch sizes were not timed and why; joules only with ``meter``. Raises UserError
    (one line) where batch 1 (``fixed``: its batch) does not run."""
    from hetero.frontend.onnxrt import first_line

    inp = sess.get_inputs()[0]
    notes = []
    if fixed is not None:
        if tuple(batches) != (fixed[0],):
            notes.append(f"only batch {fixed[0]} timed: the graph fixes its batch at {fixed[0]} "
                         f"({fixed[1]})")
        batches = (fixed[0],)
    per_batch = budget_s / len(batches)
    rows, skipped, refused = [], [], []
    y_one = None  # batch 1's output: every larger batch of copies must repeat it
    t0 = time.perf_counter()
    for b in batches:
        left = budget_s - (time.perf_counter() - t0)
        if rows and left <= -2 * budget_s:  # a loaded machine: far longer than planned
            skipped = [bb for bb in batches if bb >= b]
            notes.append(f"batch sizes from {b} up not timed: 3x the {budget_s:g} s budget was "
                         "spent (a loaded machine)")
            break
        xb = np.ascontiguousarray(np.repeat(x_one, b, axis=0))
        run = lambda: sess.run(None, {inp.name: xb})  # noqa: E731
        try:
            y = run()[0]  # warm-up: a new shape allocates
        except Exception as e:  # onnxruntime's errors: a graph that fixes its batch size
            if not rows:
                raise UserError(f"onnxruntime cannot run the model: {first_line(e)}") from None
            refused = [bb for bb in batches if bb >= b]
            break
        if y_one is None:
            y_one = np.asarray(y)[:1]
        elif not _repeats(y, y_one, b):
            refused = [bb for bb in batches if bb >= b]
            break
        t1 = time.perf_counter()
        run()
        first = time.perf_counter() - t1
        if rows and first * (_CHUNKS + 1) > max(left, per_batch):
            skipped = [bb for bb in batches if bb >= b]
            notes.append(f"batch sizes from {b} up not timed: one run would exceed the "
                         f"{budget_s:g} s budget")
            break
        reps = max(1, int(per_batch / _CHUNKS / max(first, 1e-7)))
        if meter is not None:
            with meter.measure():
                chunks = [_time_runs(run, reps) for _ in range(_CHUNKS)]
            j = meter.joules / (b * reps * _CHUNKS) if meter.joules is not None else None
        else:
            chunks = [_time_runs(run, reps) for _ in range(_CHUNKS)]
            j = None
        best = min(chunks)
        rows.append({"batch": b, "run_s": best, "per_s": b / best, "reps": reps * _CHUNKS,
                     "joules_per_inference": j})
    if refused:
        notes.insert(0, f"batch sizes from {refused[0]} up not timed: the model does not accept "
                        f"batch {refused[0]} (onnxruntime fails or returns another batch or other "
                        "numbers: the graph fixes its batch size)")
    return {"rows": rows, "skipped_batches": refused or skipped, "note": "; ".join(notes)}


def _repeats(y, y_one: np.ndarray, b: int) -> bool:
    """Whether ``y`` (the output for ``b`` copies of one input) is ``b`` copies of ``y_one``."""
    y = np.asarray(y)
    if y.shape != (b,) + y_one.shape[1:]:
        return False
    if y.dtype.kind not in "fc":
        return bool(np.array_equal(y, np.repeat(y_one, b, axis=0)))
    tol = 1e-3 * max(1.0, float(np.max(np.abs(y_one))) if y_one.size else 1.0)
    return bool(np.allclose(y, np.repeat(y_one, b, axis=0), rtol=1e-3, atol=tol, equal_nan=True))


def _summary(device: str, sw: dict, power: energy.Power | None, measured_method: str | None,
             extra: dict) -> dict:
    rows = sw["rows"]
    best = max(rows, key=lambda r: r["per_s"])
    one = rows[0]
    out = {
        "device": device,
        "measured": True,
        "batch1_latency_us": round(one["run_s"] * 1e6, 3),
        "best_throughput_per_s": round(best["per_s"], 1),
        "best_batch": best["batch"],
        "throughput": [{"batch": r["batch"], "per_s": round(r["per_s"], 1), "run_us": round(r["run_s"] * 1e6, 3),
                        "reps": r["reps"]} for r in rows],
        **extra,
    }
    if sw["note"]:
        out["sweep_note"] = sw["note"]
    if measured_method and one["joules_per_inference"] is not None:
        out["energy"] = {
            "batch1_uj": round(one["joules_per_inference"] * 1e6, 3),
            "throughput_uj": round(best["joules_per_inference"] * 1e6, 3),
            "measured": True, "method": measured_method,
        }
    elif power is not None and power.watts is not None:
        out["energy"] = {
            "power_w": round(power.watts, 3),
            "batch1_uj": round(energy.energy_uj(power.watts, one["run_s"]), 3),
            "throughput_uj": round(energy.energy_uj(power.watts, best["run_s"] / best["batch"]), 3),
            "measured": False, "method": power.method,
        }
    else:
        out["energy"] = {"batch1_uj": None, "throughput_uj": None, "measured": False,
                         "method": power.method if power else "no power figure"}
    return out


def _sample(sess, x: np.ndarray | None) -> np.ndarray:
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    if x is not None and len(x):
        return np.asarray(x[:1], dtype=np.float32).reshape([1] + shape[1:])
    return np.random.default_rng(0).standard_normal([1] + shape[1:]).astype(np.float32)


def cpu_name(threads: int) -> str:
    """The CPU as the report names it: model name, logical CPUs, threads used."""
    return f"{energy.cpu_model_name()} ({os.cpu_count()} logical CPUs; onnxruntime, {threads} thread(s))"


def cpu_baseline(graph: onnx.ModelProto, x: np.ndarray | None = None, threads: int = 1,
                 budget_s: float = BUDGET_S) -> dict:
    """onnxruntime on this CPU (``graph`` from :func:`runnable_model`): see :func:`_summary`."""
    import onnxruntime as ort

    from hetero.frontend.onnxrt import fixed_batch, session

    sess = session(graph, threads=threads, as_defined=False)
    meter = energy.cpu_meter()
    sw = sweep(sess, _sample(sess, x), budget_s=budget_s, meter=meter, fixed=fixed_batch(graph))
    return _summary(cpu_name(threads), sw, None if meter else energy.cpu_tdp_power(threads),
                    meter.method if meter else None,
                    {"threads": threads, "runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider",
                     "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
                     "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None})


def gpu_baseline(graph: onnx.ModelProto, x: np.ndarray | None = None,
                 budget_s: float = BUDGET_S) -> tuple[dict | None, str]:
    """``(summary, note)`` for onnxruntime's CUDA provider, or ``(None, why it was skipped)``."""
    import onnxruntime as ort

    from hetero.frontend.onnxrt import fixed_batch, session

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        return None, ("no GPU: onnxruntime on this machine has no CUDAExecutionProvider "
                      f"(available: {', '.join(available)})")
    try:
        sess = session(graph, as_defined=False, providers=["CUDAExecutionProvider"])
    except UserError as e:
        return None, f"GPU skipped: {e}"
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        return None, "GPU skipped: onnxruntime fell back to the CPU (no usable CUDA device)"
    handle, name = energy.nvml_handle()
    meter = energy.NvmlMeter(handle) if handle is not None else None
    if meter is not None and meter.read() is None:
        meter = None
    sw = sweep(sess, _sample(sess, x), budget_s=budget_s, meter=meter, fixed=fixed_batch(graph))
    if meter is not None:
        power = None
    elif handle is not None:
        power = energy.nvml_power_limit(handle)
    else:
        power = energy.Power(None, False, f"no GPU power figure: {name}")
    device = name if handle is not None else "CUDA device 0"
    return _summary(device, sw, power, meter.method if meter else None,
                    {"runtime": f"onnxruntime {ort.__version__}, CUDAExecutionProvider "
                                "(inputs copied from host memory each run)"}), ""


def fpga_baseline(report: dict, board) -> dict:
    """Latency and throughput of the simulated design at the board's clock, with the power
    model's energy per inference (resources from synthesis where ``report`` has them). A design
    that does not fit the board (:func:`hetero.report.verdict.design_fits`) gets ``fits:
    false`` and no energy figures (null, the method says why): the power model would count
    resources the board does not have."""
    clock = float(report["clock_mhz"])
    latency_s = report["latency_cycles"] / (clock * 1e6)
    interval = report.get("interval_cycles")
    interval_s = interval / (clock * 1e6) if interval else None
    from hetero.report.verdict import design_fits, over_of
    from hetero.synthesis.estimate import describe_over

    resources = _resources(report)
    timing = {
        "device": f"{board.name} ({board.part}) at {clock:g} MHz",
        "measured": False,
        "source": f"cycles from the RTL simulation ({report['simulation']['simulator']}) at the "
                  "board's clock",
        "batch1_latency_us": round(latency_s * 1e6, 4),
        "best_throughput_per_s": round(1 / interval_s, 1) if interval_s else None,
        "best_batch": None,
    }
    if not design_fits(report):  # no power from resources the board does not have
        over = over_of(report)
        return {**timing,
                "energy": {"power_w": None, "batch1_uj": None, "throughput_uj": None,
                           "measured": False,
                           "method": f"not estimated: the design does not fit {board.name} "
                                     f"({describe_over(over) if over else 'over the board'})"},
                "fits": False}
    power = energy.fpga_power(board, resources[1] if resources else None, clock)
    return {
        **timing,
        "energy": {
            "power_w": power["total_w"],
            "batch1_uj": round(energy.energy_uj(power["total_w"], latency_s), 4),
            "throughput_uj": (round(energy.energy_uj(power["total_w"], interval_s), 4)
                              if interval_s else None),
            "measured": False,
            "method": power["method"] + (f"; resources from {resources[0]}" if resources else ""),
            "model": power,
            "modes": "throughput: power x interval / clock (inferences back to back); "
                     "batch1: power x latency / clock (one inference through an idle pipeline)",
        },
    }


def _resources(report: dict) -> tuple[str, dict] | None:
    """The resource counts to feed the power model: synthesis first, else any other source
    under ``resources`` that has LUT counts (e.g. an estimate)."""
    res = report.get("resources") or {}
    ordered = ["synth"] + [k for k in res if k != "synth"]
    for key in ordered:
        r = res.get(key)
        if isinstance(r, dict) and r.get("lut") is not None:
            tool = str(r["tool"]).split(" (")[0] if r.get("tool") else ""
            return (f"resources.{key}" + (f" ({tool})" if tool else ""), r)
    return None


def baselines(model: onnx.ModelProto, report: dict, board, x: np.ndarray | None = None,
              threads: int = 1, budget_s: float = BUDGET_S,
              runnable: tuple[onnx.ModelProto | None, str] | None = None) -> dict:
    """What ``report.json`` holds under ``baselines``: ``cpu`` (or null with ``cpu_note``),
    ``gpu`` (or null with ``gpu_note``), ``fpga``, and ``graph_timed`` (which ONNX graph the
    CPU and GPU ran). ``runnable``: :func:`runnable_model`'s answer, where already known."""
    graph, note = runnable or runnable_model(model)
    out: dict = {"graph_timed": note if graph is not None else None}
    if graph is None:
        out.update(cpu=None, cpu_note=f"CPU not timed: {note}", gpu=None,
                   gpu_note=f"GPU not timed: {note}")
    else:
        try:
            out["cpu"] = cpu_baseline(graph, x, threads, budget_s)
        except UserError as e:
            out.update(cpu=None, cpu_note=f"CPU not timed: {e}")
        gpu, gpu_note = gpu_baseline(graph, x, budget_s)
        out["gpu"] = gpu
        if gpu_note:
            out["gpu_note"] = gpu_note
    out["fpga"] = fpga_baseline(report, board)
    return out


# -- accuracy and fixed-point error -----------------------------------------------------------

def load_labels(path: str | Path, count: int) -> np.ndarray:
    """Class labels (.npy: integers, or one-hot / scores rows -> argmax) for ``count`` inputs;
    every problem is one UserError naming the file."""
    path = Path(path)
    y = load_npy(path, "labels")
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(1)
    y = y.reshape(len(y), -1) if y.ndim else y.reshape(1)
    if y.ndim == 2 and y.shape[1] != 1:
        raise UserError(f"{path}: labels must be one class per input (shape (N,) or (N, C)); got {list(y.shape)}")
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise UserError(f"{path}: labels must be integer class indices")
    if len(y) < count:
        raise UserError(f"{path}: {len(y)} labels for {count} inputs")
    return y[:count].astype(np.int64)


def to_classes(y: np.ndarray) -> np.ndarray:
    """Class per inference: class indices as they are, a 0.5 threshold on a single output,
    else the argmax."""
    n = len(y)
    if y.size == n and y.dtype.kind in "iu":
        return y.reshape(n).astype(np.int64)
    flat = y.reshape(n, -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] > 0.5).astype(np.int64)
    return flat.argmax(-1)


def accuracy(labels: np.ndarray, **predictions: np.ndarray | None) -> dict:
    """Top-1 of each named prediction batch (None entries stay None)."""
    return {name: (None if y is None else float(np.mean(to_classes(y) == labels)))
            for name, y in predictions.items()}


def fixed_point_errors(float_values: dict, fixed_graph, fixed_values: dict, bins: int = 41,
                       max_values: int = 200_000) -> list[dict]:
    """Per node of ``fixed_graph`` (whose output the float graph also has): the error of its
    fixed-point output against float, ``{layer, op, type, lsb, max_abs_error, rms_error,
    snr_db, hist: {edges, counts}}``; the histogram is over at most ``max_values`` values (a
    seeded sample). Argmax layers and layers without a float twin are left out; float values
    that are not finite (an overflow in float) are left out of the statistics, so every number
    is finite (report.json stays valid JSON)."""
    rows = []
    rng = np.random.default_rng(0)
    for node in fixed_graph.nodes:
        out = node.outputs[0]
        t = fixed_graph.tensors[out]
        if out not in float_values or out not in fixed_values or t.dtype is None:
            continue
        if node.attrs.get("strategy") == "argmax":
            continue
        f = np.asarray(float_values[out], dtype=np.float64)
        q = t.onnx_value(fixed_values[out])
        if q.shape != f.shape:
            continue
        err = (q - f).reshape(-1)
        finite = np.isfinite(err)  # a float value that overflowed (Inf, NaN) has no error to draw
        err, f = err[finite], f.reshape(-1)[finite]
        if err.size > max_values:
            err = rng.choice(err, max_values, replace=False)
        m = float(np.abs(err).max()) if err.size else 0.0
        lim = m if m > 0 else 1.0
        counts, edges = np.histogram(err, bins=bins, range=(-lim, lim))
        noise = float(np.mean(err ** 2)) if err.size else 0.0
        signal = float(np.mean(f ** 2)) if f.size else 0.0
        lsb = getattr(t.dtype, "frac_bits", None)
        rows.append({
            "layer": node.name, "op": node.op, "type": str(t.dtype),
            "lsb": (2.0 ** -lsb) * (t.scale or 1.0) if isinstance(lsb, int) else None,
            "max_abs_error": m, "rms_error": float(np.sqrt(noise)),
            "snr_db": round(10 * np.log10(signal / noise), 2) if noise > 0 and signal > 0 else None,
            "hist": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        })
    return rows


# -- the report sections ----------------------------------------------------------------------

ERROR_SAMPLES = 256  # inputs whose per-layer errors the histograms show


def hardware_predictions(graph, got: np.ndarray) -> np.ndarray:
    """The simulated hardware's raw outputs as :func:`hetero.reference.predict` gives the
    reference's: class indices for an argmax output, real values otherwise."""
    t = graph.tensors[graph.outputs[0]]
    if graph.producer(graph.outputs[0]).attrs.get("strategy") == "argmax":
        return np.asarray(got).astype(np.int64)
    return t.onnx_value(got)


def add_to_report(report: Report, onnx_model: onnx.ModelProto, float_graph, graph,
                  x: np.ndarray, values: dict, got: np.ndarray, board, *, config=None,
                  labels=None, threads: int = 1, budget_s: float = BUDGET_S,
                  stage=None) -> Report:
    """Set ``baselines``, ``fixed_point_error``, ``published`` (where known) and (with
    ``labels``: a .npy path or an array) ``accuracy`` of ``report``, in place; returns it. ``float_graph``: the imported
    (untyped) graph; ``graph``: the compiled one; ``values``: the reference's tensors on ``x``;
    ``got``: the simulated hardware's outputs; ``stage``: a context-manager factory
    (``StageTimer.stage``) that shows progress."""
    from contextlib import nullcontext

    from hetero.passes.pipeline import float_graph as pre_precision
    from hetero.reference import execute, predict
    from hetero.report.html import published_for

    stage = stage or (lambda name: nullcontext())
    with stage("compare: CPU/GPU"):
        runnable, note = runnable_model(onnx_model)
        report.baselines = baselines(onnx_model, report.to_json(), board, x, threads, budget_s,
                                     runnable=(runnable, note))
    with stage("compare: float vs fixed"):
        fg = pre_precision(float_graph, config, board)
        k = min(len(x), ERROR_SAMPLES)
        fv = execute(fg, x[:k])
        report.fixed_point_error = {"samples": int(k), "layers": fixed_point_errors(
            fv, graph, {name: v[:k] for name, v in values.items()})}
        if labels is not None:
            y = labels if isinstance(labels, np.ndarray) else load_labels(labels, len(x))
            y = np.asarray(y)[:len(x)]
            y_ort = None
            if runnable is not None:
                from hetero.frontend.onnxrt import run_float

                try:  # in the batches the graph accepts (hetero.frontend.onnxrt.run_float)
                    y_ort = run_float(runnable, x)
                except UserError:  # onnxruntime cannot run it after all: that column goes
                    y_ort = None
            acc = accuracy(y, float=predict(fg, x), onnxruntime=y_ort,
                           fixed_reference=predict(graph, x), hardware=hardware_predictions(graph, got))
            if y_ort is None:
                acc.pop("onnxruntime")
            report.accuracy = {"samples": int(len(x)),
                               "labels": str(labels) if not isinstance(labels, np.ndarray) else "array",
                               **acc}
    published = published_for(report.model, board.name)
    if published:
        report.published = published
    return report


def print_comparison(report: dict, console=None) -> None:
    """The side-by-side table (rich) on stdout: latency at batch 1, best throughput, energy per
    inference (throughput mode and batch 1) with measured/estimated, then the notes. Text from
    the model or the machine prints literally (:func:`hetero.ir.text.rich_markup`)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if Console().is_terminal else 160)
    b = report.get("baselines") or {}
    from hetero.ir.text import rich_markup as esc

    table = Table(title=f"{esc(Path(str(report['model'])).name)} on {esc(report['board'])}: where should it run?",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("", "latency b=1 (us)", "throughput (/s)", "energy (uJ/inf)", "energy b=1 (uJ)", "energy is", "device"):
        table.add_column(col, justify="right" if "(" in col else "left")
    rows = [("FPGA (simulated)", b.get("fpga")), ("CPU", b.get("cpu")), ("GPU", b.get("gpu"))]
    rows += [(p["label"], p) for p in report.get("published") or []]
    for name, e in rows:
        if not e:
            continue
        en = e.get("energy") or {}
        batch = f" (batch {e['best_batch']})" if e.get("best_batch") else ""
        table.add_row(esc(name), _fmt(e.get("batch1_latency_us")), _fmt(e.get("best_throughput_per_s")) + batch,
                      _fmt(en.get("throughput_uj")), _fmt(en.get("batch1_uj")),
                      "measured" if en.get("measured") else "estimated",
                      esc(e.get("device") or e.get("conditions", "")))
    console.print(table)
    for key in ("graph_timed", "cpu_note", "gpu_note"):
        if b.get(key):
            console.print(f"  {'CPU/GPU graph: ' if key == 'graph_timed' else ''}{esc(b[key])}", highlight=False)
    from hetero.report.verdict import verdict

    line = verdict(report, markup=False)
    if line:
        console.print(f"  {esc(line)}", highlight=False)
    acc = report.get("accuracy")
    if acc:
        parts = [f"{k} {100 * v:.1f} %" for k, v in acc.items() if isinstance(v, float)]
        console.print(f"  accuracy on {acc['samples']} labelled inputs: " + ", ".join(parts), highlight=False)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e5:
        return f"{v:,.0f}"
    return f"{v:.3g}"
