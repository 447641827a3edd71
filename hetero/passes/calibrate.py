"""Automatic precision for float models: profile every tensor on calibration data with the float
reference, then give every layer fixed-point types that do not overflow on that data.

* :func:`profile` runs the untyped graph (:func:`hetero.reference.execute` in float) and records
  a :class:`Range` per tensor, and per node for each float param (``W``, ``b``, ...).
* :func:`choose_types` turns a profile into a :class:`~hetero.ir.config.Config` whose ``LayerName``
  entries give every input and node ``result`` (and ``weight`` / ``bias``) types of one width:
  just enough integer bits for the largest magnitude seen (a sign bit only where negative values
  occur, so a ReLU output is unsigned), plus :data:`HEADROOM_BITS` (one) more for every layer's
  result, every other bit a fraction bit; RND and SAT as hetero's default.
* :func:`merge_config` fills the user's config from the calibrated one: types the user wrote
  win; ``auto`` ones (``Precision: auto`` at any level, or any of its keys) and the built-in
  default are filled from calibration. :func:`calibrated_config` does all three on a model.
* :func:`calibration_report` compares the typed graph against the float one, layer by layer.

Used by ``hetero predict/synth --calibrate X.npy`` (:func:`load_calibration` checks the file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hetero.ir.config import AUTO, DEFAULT_PRECISION, Config
from hetero.ir.npy import load_npy
from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.ir.graph import Graph
from hetero.passes.pipeline import float_graph
from hetero.reference import check_inputs, execute

_PRECISION_KEYS = ("default", "weight", "bias", "result", "accum", "table")
# float params and the config precision key that types them
PARAM_KEYS = {"W": "weight", "weight": "weight", "kernel": "weight",
              "b": "bias", "B": "bias", "bias": "bias"}
#: integer bits every calibrated layer result gets beyond the calibration data's range
HEADROOM_BITS = 1
_BATCH = 4096  # samples per reference run while profiling, at most...
_VALUES = 1 << 25  # ...and at most this many tensor values in all (256 MiB of float64)


@dataclass(frozen=True)
class Range:
    """What calibration saw of one tensor or param: extremes, the largest magnitude and the
    root mean square (the signal power a quantization error is measured against)."""

    min: float
    max: float
    max_abs: float
    rms: float
    count: int

    @property
    def negative(self) -> bool:
        return self.min < 0

    @classmethod
    def of(cls, a: np.ndarray) -> "Range":
        a = np.asarray(a, dtype=np.float64)
        if a.size == 0:
            return cls(0.0, 0.0, 0.0, 0.0, 0)
        return cls(float(a.min()), float(a.max()), float(np.abs(a).max()),
                   float(np.sqrt(np.mean(np.square(a)))), int(a.size))

    def merge(self, other: "Range") -> "Range":
        if not self.count:
            return other
        if not other.count:
            return self
        n = self.count + other.count
        power = (self.rms ** 2 * self.count + other.rms ** 2 * other.count) / n
        return Range(min(self.min, other.min), max(self.max, other.max),
                     max(self.max_abs, other.max_abs), math.sqrt(power), n)


class Profile(dict):
    """Range per tensor name (``profile[name]``); ``params[node][param]`` for each node's float
    params; ``samples``: how many inferences were profiled."""

    def __init__(self, tensors: Mapping[str, Range], params: Mapping[str, Mapping[str, Range]],
                 samples: int):
        super().__init__(tensors)
        self.params = {k: dict(v) for k, v in params.items()}
        self.samples = samples


def profile(graph: Graph, x: np.ndarray | Sequence[np.ndarray]) -> Profile:
    """Run the untyped ``graph`` on the batch ``x`` (one array per graph input for several) and
    record the range of every tensor and of every node's float params."""
    typed = [t.name for t in graph.tensors.values() if t.dtype is not None]
    if typed:
        raise ValueError(f"profile needs the float (untyped) graph; '{typed[0]}' is typed")
    xs = [x] if len(graph.inputs) == 1 and not isinstance(x, (list, tuple)) else list(x)
    if len(xs) != len(graph.inputs):
        raise UserError(f"the model has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); "
                        f"got {len(xs)} arrays")
    xs = [check_inputs(graph, xk, index=k) for k, xk in enumerate(xs)]
    n = len(xs[0])
    per_sample = sum(t.size for t in graph.tensors.values())  # values one inference holds
    batch = max(1, min(_BATCH, _VALUES // max(per_sample, 1)))
    ranges: dict[str, Range] = {}
    for start in range(0, max(n, 1), batch):
        chunk = [xk[start:start + batch] for xk in xs]
        values = execute(graph, chunk if len(chunk) > 1 else chunk[0])
        for name, v in values.items():
            r = Range.of(v)
            ranges[name] = ranges[name].merge(r) if name in ranges else r
    params = {node.name: {p: Range.of(v) for p, v in node.params.items() if _is_float(v)}
              for node in graph.nodes}
    return Profile(ranges, params, n)


def _is_float(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def type_for(r: Range, width: int, rounding: str = "RND", overflow: str = "SAT") -> FixedType:
    """The ``width``-bit type with the fewest integer bits that holds every value in ``r``
    without overflow after rounding (signed only if ``r`` has negative values)."""
    signed = r.negative
    if r.max_abs == 0 or not math.isfinite(r.max_abs):
        int_bits = 1 if signed else 0
    else:
        # 2**(e-1) <= max_abs < 2**e: no fewer than e - 1 magnitude bits; the loop adds what
        # the extremes (after rounding) need
        int_bits = math.frexp(r.max_abs)[1] - 1 + signed
    while True:
        t = FixedType(width, int_bits, signed, rounding, overflow)
        scale = 2.0 ** t.frac_bits
        if math.floor(r.max * scale + 0.5) <= t.max_raw and math.floor(r.min * scale + 0.5) >= t.min_raw:
            return t
        int_bits += 1


def default_width() -> int:
    return FixedType.parse(DEFAULT_PRECISION).width


def choose_types(graph: Graph, prof: Profile, width: int | None = None, *, rounding: str = "RND",
                 overflow: str = "SAT", headroom: int = HEADROOM_BITS) -> Config:
    """Per-layer types from a profile: a Config with a ``LayerName`` entry per graph input
    (``result``) and per node (``result`` from its first output, ``weight``/``bias`` from its
    float params), all ``width`` bits (default: the width of hetero's default type).

    Every node's ``result`` type has ``headroom`` integer bits more than the profile needs
    (default :data:`HEADROOM_BITS`: values up to about twice the calibration data's extremes do not
    saturate, at the cost of that many fraction bits); graph inputs and params (constants,
    and inputs whose range the data defines) get exactly what they need."""
    width = width or default_width()

    def pick(r: Range) -> FixedType:
        return type_for(r, width, rounding, overflow)

    chosen: dict[str, dict[str, FixedType]] = {}
    for name in graph.inputs:
        if name in prof:
            chosen[name] = {"result": pick(prof[name])}
    for node in graph.nodes:
        types: dict[str, FixedType] = {}
        if node.outputs and node.outputs[0] in prof:
            t = pick(prof[node.outputs[0]])
            types["result"] = replace(t, int_bits=t.int_bits + headroom)
        by_key: dict[str, Range] = {}
        for p, r in prof.params.get(node.name, {}).items():
            key = PARAM_KEYS.get(p)
            if key:
                by_key[key] = by_key[key].merge(r) if key in by_key else r
        types.update({key: pick(r) for key, r in by_key.items()})
        if "bias" in types:
            types["bias"] = _cap_bias(types, _input_type(graph, node, chosen), width)
        if types:
            chosen[node.name] = types
    layer_name = {name: {"Precision": {k: str(t) for k, t in types.items()}} for name, types in chosen.items()}
    return Config(layer_name=layer_name, source="<calibration>")


def _input_type(graph: Graph, node, chosen) -> FixedType | None:
    if not node.inputs:
        return None
    src = node.inputs[0]
    if src in graph.inputs:
        return chosen.get(src, {}).get("result")
    prod = graph.producer(src)
    return chosen.get(prod.name, {}).get("result") if prod is not None and prod.outputs[0] == src else None


def _cap_bias(types: dict[str, FixedType], t_in: FixedType | None, width: int) -> FixedType:
    """A bias of tiny magnitude needs no fraction bits beyond what the sum it joins carries
    (more would only widen the adder): at most the product's (or input's) fraction bits."""
    t_b = types["bias"]
    fracs = [t.frac_bits for t in (types.get("result"),) if t is not None]
    if t_in is not None:
        fracs.append(t_in.frac_bits + (types["weight"].frac_bits if "weight" in types else 0))
    if not fracs or t_b.frac_bits <= max(fracs):
        return t_b
    return FixedType(width, width - max(fracs), t_b.signed, t_b.rounding, t_b.overflow)


def layer_types_of(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Every layer name the config can address (inputs, then nodes) with its LayerType keys, as
    :func:`hetero.passes.pipeline.assign_precision` looks them up."""
    from hetero.ops import op_of

    out = {name: ("Input", "InputLayer") for name in graph.inputs}
    for n in graph.nodes:
        op = op_of(n)
        out[n.name] = (op.name,) + tuple(op.layer_types)
    return out


def merge_config(user: Config | None, calibrated: Config, graph: Graph) -> Config:
    """The user's config with its ``auto`` precisions, and those it leaves to the built-in
    default, taken from ``calibrated``; every type the user wrote (at any level that applies)
    stays. Other settings (ReuseFactor, Strategy, ...) are the user's."""
    user = user or Config()
    # a probe in which the built-in default reads as auto, so user-written types stand out
    model = dict(user.model)
    prec = model.get("Precision")
    if prec is None:
        model["Precision"] = AUTO
    elif isinstance(prec, Mapping) and "default" not in prec:
        model["Precision"] = {"default": AUTO, **prec}
    probe = Config(model, user.layer_type, user.layer_name, user.source)

    layers = layer_types_of(graph)
    # the precision now lives per layer (LayerName entries that match no layer are kept as they
    # are, for assign_precision to reject); other settings stay where the user put them
    layer_name = {k: ({kk: vv for kk, vv in v.items() if kk != "Precision"} if k in layers else dict(v))
                  for k, v in user.layer_name.items()}
    for name, types in layers.items():
        given = probe.for_layer(name, types).precision
        calib = calibrated.for_layer(name, types).precision if name in calibrated.layer_name else {}
        auto_default = given["default"] == AUTO
        final: dict[str, str] = {}
        for key in _PRECISION_KEYS[1:]:
            if key in given and given[key] != AUTO:
                final[key] = str(given[key])  # written by the user
            elif (key in given or auto_default) and key in calib:
                final[key] = str(calib[key])
            # else: the layer's default; an auto accum is left out (the exact width), an auto
            # table follows the default as without calibration
        final["default"] = str(calib.get("result", DEFAULT_PRECISION)) if auto_default else str(given["default"])
        layer_name.setdefault(name, {})["Precision"] = final

    def strip(section: Mapping[str, Any]) -> dict:
        return {k: v for k, v in section.items() if k != "Precision"}

    return Config(strip(user.model), {k: strip(v) for k, v in user.layer_type.items()}, layer_name,
                  user.source)


def calibrated_config(graph: Graph, x: np.ndarray, config: Config | None = None, board=None,
                      width: int | None = None) -> Config:
    """``config`` (None: the default) with its ``auto`` and default precisions chosen by
    calibrating the imported float ``graph`` on ``x``."""
    fg = float_graph(graph, config, board)
    return merge_config(config, choose_types(fg, profile(fg, x), width), fg)


def load_calibration(source: str | Path | np.ndarray, graph: Graph) -> np.ndarray:
    """Calibration data as a float batch for ``graph``'s input, from a .npy file or an array;
    every problem is one UserError naming the file."""
    if isinstance(source, np.ndarray):
        x, where = source, "calibration data"
    else:
        where = str(source)
        x = load_npy(source, "calibration")
    if len(graph.inputs) != 1:
        raise UserError(f"{where}: calibration takes one array for a model with one input; "
                        f"this one has {len(graph.inputs)} ({', '.join(graph.inputs)})")
    x = check_inputs(graph, x, where)
    if len(x) == 0:
        raise UserError(f"{where}: no calibration samples (the batch axis is empty)")
    return x


# -- report -------------------------------------------------------------------------------------

def calibration_report(graph_float: Graph, graph_fixed: Graph, x: np.ndarray) -> list[dict]:
    """Per layer (inputs, then nodes of ``graph_fixed``): its types and how far its output is
    from the float graph's on ``x``: max and mean absolute error and SNR in dB (null when exact).
    An argmax layer reports ``class_agreement`` instead."""
    fv = execute(graph_float, x)
    qv = execute(graph_fixed, x)
    rows = []
    for name in graph_fixed.inputs:
        rows.append(_row(name, "Input", graph_fixed.tensors[name], None, fv.get(name), qv[name]))
    for node in graph_fixed.nodes:
        out = node.outputs[0]
        rows.append(_row(node.name, node.op, graph_fixed.tensors[out], node, fv.get(out), qv[out]))
    return rows


def _row(name, op, tensor, node, f, raw) -> dict:
    types = node.types if node is not None else {}
    row: dict[str, Any] = {
        "layer": name, "op": op, "result_type": str(tensor.dtype),
        "weight_type": str(types["weight"]) if "weight" in types else None,
        "bias_type": str(types["bias"]) if "bias" in types else None,
        "max_abs_error": None, "mean_abs_error": None, "snr_db": None,
    }
    if f is None:
        return row
    n = len(raw)
    if node is not None and node.attrs.get("strategy") == "argmax":
        row["class_agreement"] = float((raw.reshape(n) == f.reshape(n, -1).argmax(-1)).mean())
        return row
    q = tensor.onnx_value(raw) if tensor.dtype is not None else raw
    if q.shape != f.shape:
        return row
    err = np.abs(q - f)
    row["max_abs_error"] = float(err.max()) if err.size else 0.0
    row["mean_abs_error"] = float(err.mean()) if err.size else 0.0
    noise, signal = float(np.sum(np.square(err))), float(np.sum(np.square(f)))
    if noise > 0 and signal > 0:
        row["snr_db"] = round(10 * math.log10(signal / noise), 2)
    return row


def summary(graph_float: Graph, graph_fixed: Graph, x: np.ndarray) -> dict:
    """What report.json holds under ``calibration``."""
    return {"samples": int(len(x)), "headroom_bits": HEADROOM_BITS,
            "headroom": f"every layer's result type has {HEADROOM_BITS} integer bit(s) beyond the "
                        "calibration data's range (values up to about twice its extremes do not "
                        "saturate); the inputs' types hold the data's range exactly",
            "layers": calibration_report(graph_float, graph_fixed, x)}


def model_summary(model, graph_fixed: Graph, calibrate: str | Path | np.ndarray) -> dict:
    """:func:`summary` for an ONNX model compiled with ``calibrate`` (a .npy file or a batch)."""
    from hetero.frontend.onnx import import_onnx

    graph = import_onnx(model)
    return summary(graph, graph_fixed, load_calibration(calibrate, graph))


def print_report(report: dict, console=None) -> None:
    """The per-layer table (rich) on stderr, or on ``console``; layer names print literally."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from hetero.ir.text import rich_markup as esc

    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:  # a log or a pipe: full lines rather than 80 columns
            console = Console(stderr=True, width=200)
    table = Table(title=f"calibration on {report['samples']} samples: fixed point against float",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("layer", "op", "result", "weight", "max |err|", "mean |err|", "SNR dB"):
        table.add_column(col, justify="right" if "err" in col or "dB" in col else "left", no_wrap=True)
    for r in report["layers"]:
        if "class_agreement" in r:
            err = ["", "", f"{100 * r['class_agreement']:.2f} % same class"]
        elif r["max_abs_error"] is None:
            err = ["", "", ""]
        else:
            snr = "exact" if r["max_abs_error"] == 0 else ("" if r["snr_db"] is None else f"{r['snr_db']:.1f}")
            err = [f"{r['max_abs_error']:.3g}", f"{r['mean_abs_error']:.3g}", snr]
        table.add_row(esc(r["layer"]), esc(r["op"]), r["result_type"], r["weight_type"] or "", *err)
    console.print(table)
    if report.get("headroom"):
        console.print(f"headroom: {report['headroom']}", highlight=False, soft_wrap=True)
