"""Render the HLS C++ project of a typed graph: ``parameters.h`` (tensor types and one config
struct per layer), ``weights.h`` (constant arrays), ``hetero_top.cpp`` (the top function),
``hetero_tb.cpp`` (a test bench reading and writing binary beat files) and ``build_prj.tcl``
(Vitis HLS), with the kernel headers of ``hdl_templates/hls`` copied beside them.

The top takes and gives the same beats as the RTL top (:mod:`hetero.backends.rtl.top`): the hardware part
of the graph (:func:`~hetero.dataflow.hardware_part`), AXI4-Stream in and out, TDATA lane ``k``
at bits ``[k*W +: W]``, TLAST on the last beat of an inference. Python renders only
configuration values, arrays and call sites (Jinja2); all C++ logic lives in the templates.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from hetero.errors import UserError
from hetero.ir.graph import Graph
from hetero.ops import op_of
from hetero.hw.hls_binding import Cpp, HlsCall

__all__ = ["templates_dir", "HlsProject", "render_project", "write_project", "TOP_NAME"]

TOP_NAME = "hetero_top"
KERNEL_HEADERS = ("hetero_common.h", "hetero_csim_shim.h", "hetero_mac.h", "hetero_pool.h",
                  "hetero_activation.h", "hetero_elementwise.h", "hetero_movement.h", "hetero_csim.cpp")


def templates_dir() -> Path:
    """``hdl_templates/hls``: beside the package in a source checkout, in the installed data
    otherwise (the wheel ships it as ``hetero/hdl_templates``)."""
    here = Path(__file__).resolve().parents[2]  # the hetero package
    for base in (here / "hdl_templates", here.parent / "hdl_templates"):
        if (base / "hls" / "hetero_common.h").is_file():
            return base / "hls"
    raise UserError("the HLS templates (hdl_templates/hls) are missing from this installation; "
                    "reinstall hetero")


@dataclass(frozen=True)
class HlsProject:
    """The rendered files (name -> text) and what a test bench needs to know."""

    files: dict[str, str]
    in_tensor: str
    out_tensor: str
    in_beats: int
    in_lanes: int
    out_beats: int
    out_lanes: int


def _cint(v) -> str:
    if isinstance(v, Cpp):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    v = int(v)
    return f"{v}LL" if not -(1 << 31) <= v < (1 << 31) else str(v)


def _ctype(a: np.ndarray) -> str:
    lo, hi = int(a.min()), int(a.max())
    for bits, name in ((8, "signed char"), (16, "short"), (32, "int")):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return name
    return "long long"


def _member(name: str, v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return f"static const bool {name} = {_cint(v)};"
    if isinstance(v, Cpp) or -(1 << 31) <= int(v) < (1 << 31):
        return f"static const int {name} = {_cint(v)};"
    return f"static const long long {name} = {_cint(v)};"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["cint"] = _cint
    env.filters["member"] = lambda kv: _member(*kv)
    env.filters["values"] = lambda a: ", ".join(str(int(v)) for v in np.asarray(a).reshape(-1))
    return env


def render_project(graph: Graph, part_name: str = "xc7z020clg400-1", clock_ns: float = 10.0) -> HlsProject:
    """The HLS project of ``graph``'s hardware part for the FPGA ``part_name`` at ``clock_ns``
    (build_prj.tcl). Raises UserError naming the node whose op has no HLS kernel."""
    from hetero.dataflow import hardware_part
    from hetero.hw.stream import tensor_layouts

    part = hardware_part(graph)
    layouts = tensor_layouts(graph)
    tensors = [part.input] + [o for n in part.nodes for o in n.outputs]
    tid = {t: k for k, t in enumerate(tensors)}
    types = []
    for t in tensors:
        tt, lay = graph.tensors[t], layouts[t]
        types.append({"id": tid[t], "cpp": tt.dtype.cpp(), "beats": lay.beats, "lanes": lay.lanes,
                      "cl": lay.channels_last})
    consumers: dict[str, list[tuple[int, int]]] = {t: [] for t in tensors}
    for k, n in enumerate(part.nodes):
        for j, i in enumerate(n.inputs):
            consumers[i].append((k, j))
    # streams: every tensor, plus one per consumer where it forks
    stream_of: dict[tuple[int, int], str] = {}
    forks = []
    for t in tensors:
        readers = consumers[t] + ([(-1, 0)] if t == part.output else [])
        if len(readers) > 3:
            raise UserError(f"tensor read by {len(readers)} layers: the HLS top forks a stream to at most 3")
        if len(readers) == 1:
            stream_of[readers[0]] = f"s{tid[t]}"
        else:
            names = [f"s{tid[t]}_{r}" for r in range(len(readers))]
            forks.append({"src": f"s{tid[t]}", "dsts": names, "type": tid[t]})
            for r, name in zip(readers, names):
                stream_of[r] = name
    layers = []
    headers = []
    for k, n in enumerate(part.nodes):
        call: HlsCall | None = op_of(n).hls(n, graph)
        if call is None:
            raise UserError(f"{n.source}: no HLS C++ kernel for {n.op} in this form yet")
        if call.header not in headers:
            headers.append(call.header)
        ins = [tid[i] for i in n.inputs]
        out = tid[n.outputs[0]]
        common: dict = {}
        if len(ins) == 1:
            common.update({"in_beats": types[ins[0]]["beats"], "in_lanes": types[ins[0]]["lanes"],
                           "in_cl": types[ins[0]]["cl"]})
        for j, i in enumerate(ins):
            common.update({f"in{j}_beats": types[i]["beats"], f"in{j}_lanes": types[i]["lanes"],
                           f"in{j}_cl": types[i]["cl"]})
        common.update({"out_beats": types[out]["beats"], "out_lanes": types[out]["lanes"],
                       "out_cl": types[out]["cl"]})
        typedefs = {"out_t": f"t{out}_t"}
        if len(ins) == 1:
            typedefs["in_t"] = f"t{ins[0]}_t"
        typedefs.update({f"in{j}_t": f"t{i}_t" for j, i in enumerate(ins)})
        typedefs.update({name: t.cpp() for name, t in call.types.items()})
        arrays = [{"name": f"layer{k}_{a}", "member": a, "ctype": _ctype(v), "data": v, "size": v.size}
                  for a, v in call.arrays]
        layers.append({
            "k": k, "op": n.op, "kernel": call.kernel, "typedefs": typedefs,
            "members": list({**common, **call.config}.items()),
            "nested": {name: list(v.items()) for name, v in call.nested.items()}, "arrays": arrays,
            "ins": [stream_of[(k, j)] for j in range(len(ins))], "out": f"s{out}",
        })
    t_in, t_out = types[tid[part.input]], types[tid[part.output]]
    ctx = {"types": types, "layers": layers, "headers": headers, "forks": forks,
           "input": t_in, "output": t_out, "part": part_name, "clock_ns": clock_ns,
           "out_stream": stream_of.get((-1, 0), f"s{t_out['id']}"), "top": TOP_NAME,
           "in_width": t_in["lanes"] * graph.tensors[part.input].dtype.width,
           "out_width": t_out["lanes"] * graph.tensors[part.output].dtype.width,
           "in_signed": graph.tensors[part.input].dtype.signed,
           "out_signed": graph.tensors[part.output].dtype.signed}
    ctx["max_width"] = max(1024, ctx["in_width"], ctx["out_width"])
    env = _env()
    files = {name: env.get_template(f"{name}.j2").render(**ctx)
             for name in ("parameters.h", "weights.h", "hetero_top.h", "hetero_top.cpp", "build_prj.tcl")}
    files["hetero_tb.cpp"] = (templates_dir() / "hetero_tb.cpp").read_text()
    for h in KERNEL_HEADERS:
        files[h] = (templates_dir() / h).read_text()
    return HlsProject(files, part.input, part.output, t_in["beats"], t_in["lanes"], t_out["beats"],
                      t_out["lanes"])


def write_project(project: HlsProject, folder: str | Path) -> Path:
    """Write the project's files into ``folder`` (created); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in project.files.items():
        (folder / name).write_text(text)
    return folder
