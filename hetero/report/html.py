"""The report a user reads: ``OUT/report.html`` (static, self-contained: styles inline, figures
as base64 PNG, no external URL, no script) and ``OUT/report.md`` (tables, figures under
``OUT/figures/``), both rendered from ``report.json`` alone with Jinja2
(``hetero/templates/report.html.j2``) and :mod:`hetero.report.plots`.

Sections: where to run it (FPGA / CPU / GPU cards and a verdict), the comparison figure and
table (with published figures for the same network where ``hetero/data/published.json`` knows
the model file), throughput over batch size, accuracy (``--labels``), the FPGA design (cycles,
resources, utilization, layers), fixed-point error histograms per layer, how every energy figure
was obtained, and every other report.json section (``timing``, ``csim``, ...) rendered
generically.
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import cache
from pathlib import Path
from typing import Any

from hetero.ir.text import markdown as md, printable
from hetero.report import plots

_HANDLED = {"model", "board", "part", "clock_mhz", "latency_cycles", "interval_cycles", "latency_us",
            "throughput_per_s", "layers", "simulation", "resources", "utilization", "fits",
            "baselines", "accuracy", "fixed_point_error", "published", "stages_s",
            "saturation", "fit_advice"}
_DATA = Path(__file__).resolve().parents[1] / "data" / "published.json"


# -- published figures ------------------------------------------------------------------------

@cache
def _published_db() -> dict:
    return json.loads(_DATA.read_text())["models"]


def published_for(model: str | Path, board: str) -> list[dict]:
    """Published figures for this exact model file (by SHA-256) on ``board``, or []."""
    try:
        digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    except OSError:
        return []
    db = _published_db()
    entry = db.get(digest, {})
    if "same_as" in entry:
        entry = db.get(entry["same_as"], {})
    return [dict(row) for row in entry.get("boards", {}).get(board, [])]


# -- formatting -------------------------------------------------------------------------------

def _num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.{digits}g} M"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _fmt_parallel(p: Any) -> str:
    if not p:
        return ""
    if isinstance(p, dict):
        return ", ".join(f"{k} {v}" for k, v in p.items())
    return str(p)


def _render_value(v: Any) -> str:
    """A report.json value as HTML: nested tables for mappings and lists of mappings."""
    if isinstance(v, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_render_value(x)}</td></tr>" for k, x in v.items())
        return f"<table>{rows}</table>"
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        keys = list(dict.fromkeys(k for x in v for k in x))
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{_render_value(x.get(k, ''))}</td>" for k in keys) + "</tr>" for x in v)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(v, list):
        return html.escape(", ".join(str(x) for x in v))
    if isinstance(v, float):
        return html.escape(f"{v:.6g}")
    return html.escape(str(v))


# -- what the template shows --------------------------------------------------------------------

def _entries(report: dict) -> list[tuple[str, str, dict | None, str]]:
    """(title, kind, entry or None, why absent) for FPGA, CPU, GPU and published rows."""
    b = report.get("baselines") or {}
    out = [("FPGA: " + report["board"] + " (simulated)", "fpga", b.get("fpga"), "no FPGA figures"),
           ("CPU: onnxruntime", "cpu", b.get("cpu"), b.get("cpu_note", "CPU not timed")),
           ("GPU: onnxruntime CUDA", "gpu", b.get("gpu"), b.get("gpu_note", "GPU not timed"))]
    for p in report.get("published") or []:
        out.append((p["label"], "published", p, ""))
    return out


def _card(title: str, kind: str, e: dict | None, absent: str) -> dict:
    if not e:
        return {"title": title, "kind": kind, "entry": None, "absent": absent}
    en = e.get("energy") or {}
    return {"title": title, "kind": kind, "entry": e, "latency": _num(e.get("batch1_latency_us")),
            "throughput": _num(e.get("best_throughput_per_s")), "energy": _num(en.get("throughput_uj")),
            "measured": bool(en.get("measured")), "power": _num(en.get("power_w")) if en.get("power_w") else None,
            "device": e.get("device") or e.get("conditions", "")}


def _verdict(report: dict) -> str:
    """The verdict sentence (:func:`hetero.report.verdict.verdict`), HTML."""
    from hetero.report.verdict import verdict

    return verdict(report)


def _table(report: dict) -> list[dict]:
    rows = []
    for title, kind, e, _ in _entries(report):
        if not e:
            continue
        en = e.get("energy") or {}
        how = ("measured" if kind != "fpga" else "simulated cycles x clock")
        if kind == "published":
            how = f"{e.get('conditions', '')}. Source: {e.get('source', '')}"
        elif kind in ("cpu", "gpu"):
            how = (f"measured, {e.get('runtime', '')}; energy {'measured' if en.get('measured') else 'estimated'}")
        else:
            how = f"{e.get('source', '')}; energy estimated (power model, {_num(en.get('power_w'))} W)"
        rows.append({"label": title, "device": e.get("device", ""), "latency": _num(e.get("batch1_latency_us")),
                     "throughput": _num(e.get("best_throughput_per_s")),
                     "energy_t": _num(en.get("throughput_uj")), "energy_1": _num(en.get("batch1_uj")), "how": how})
    return rows


def _compare_notes(report: dict) -> list[str]:
    b = report.get("baselines") or {}
    notes = []
    if b.get("graph_timed"):
        notes.append(f"CPU/GPU graph timed: {b['graph_timed']}.")
    cpu = b.get("cpu") or {}
    if cpu:
        load = cpu.get("load_average")
        notes.append(f"CPU: {cpu.get('device')}, {cpu.get('machine', '')}; fastest of 5 timed chunks per batch size"
                     + (f"; load average {load} while timing" if load is not None else "") + ".")
        if cpu.get("sweep_note"):
            notes.append(f"CPU: {cpu['sweep_note']}.")
    for k in ("cpu_note", "gpu_note"):
        if b.get(k):
            notes.append(b[k] + ".")
    if report.get("published"):
        notes.append("Published figures were measured on boards by their authors (including the board's "
                     "driver overhead); ours come from cycle-accurate simulation at the nominal clock, "
                     "without a host driver.")
    return notes


def _energy_methods(report: dict) -> list[tuple[str, str]]:
    out = []
    for title, kind, e, _ in _entries(report):
        en = (e or {}).get("energy") or {}
        if en.get("method"):
            text = en["method"]
            if en.get("modes"):
                text += f". Modes: {en['modes']}"
            out.append((title, text))
    return out


def _accuracy(report: dict) -> dict | None:
    acc = report.get("accuracy")
    if not acc:
        return None
    names = [("float", "float (hetero reference, float graph)"), ("onnxruntime", "float (onnxruntime, timed graph)"),
             ("fixed_reference", "fixed-point reference"), ("hardware", "simulated hardware")]
    rows = [(label, _pct(acc.get(k))) for k, label in names if k in acc]
    for p in report.get("published") or []:
        if p.get("accuracy") is not None:
            rows.append((p["label"], _pct(p["accuracy"])))
    return {"samples": acc.get("samples"), "rows": rows,
            "note": f"Labels: {acc.get('labels', '')}. Top-1: class index or argmax of the output "
                    "(a 0.5 threshold for a single output)."}


def _figures(report: dict) -> dict[str, bytes | None]:
    return {
        "comparison": plots.comparison(report, report.get("published")),
        "throughput": plots.throughput_curve(report),
        "utilization": plots.utilization(report),
        "cycles": plots.layer_cycles(report),
        "layer_resources": plots.layer_resources(report),
        "errors": plots.error_histograms((report.get("fixed_point_error") or {}).get("layers", [])),
    }


def _context(report: dict, figs: dict[str, str | None]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("hetero")
    except PackageNotFoundError:
        ver = "dev"
    err = report.get("fixed_point_error") or {}
    return {
        "r": report, "model_name": Path(str(report["model"])).name, "version": ver,
        "cards": [_card(*e) for e in _entries(report)], "verdict": _verdict(report),
        "table": _table(report), "compare_notes": _compare_notes(report),
        "published": report.get("published"), "accuracy": _accuracy(report),
        "res": (report.get("resources") or {}).get("synth"), "figs": figs,
        "errors": err.get("layers", []), "error_samples": err.get("samples"),
        "energy_methods": _energy_methods(report),
        "extra": [(k, v) for k, v in report.items() if k not in _HANDLED and v not in (None, [], {})]
                 + ([("stages_s", report["stages_s"])] if report.get("stages_s") else []),
    }


def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("hetero", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt_parallel"] = _fmt_parallel
    from markupsafe import Markup

    env.filters["render_value"] = lambda v: Markup(_render_value(v))
    return env


def render_html(report: dict) -> str:
    """The self-contained HTML report for ``report`` (a report.json dict)."""
    figs = {k: (plots.data_uri(v) if v else None) for k, v in _figures(report).items()}
    return _env().get_template("report.html.j2").render(**_context(report, figs))


def _prose(text) -> str:
    """Text from the report (notes, device names, methods) for report.md: one line, no HTML,
    no table cell boundary; Markdown emphasis left to hetero's own wording."""
    return html.escape(printable(text), quote=False).replace("|", "\\|")


def render_markdown(report: dict, figures: dict[str, str | None]) -> str:
    """report.md: the same tables in Markdown; ``figures`` maps figure names to relative paths.
    Model text (the model's file name, layer names) is literal (:func:`hetero.ir.text.markdown`:
    no HTML, no heading, no extra cell), other text one escaped line each."""
    ctx = _context(report, figures)
    r = report
    lines = [f"# {md(ctx['model_name'])} on {md(r['board'])} ({md(r['part'])}) at {_prose(r['clock_mhz'])} MHz", ""]
    sim = r["simulation"]
    lines.append(_prose(f"Latency {r['latency_cycles']} cycles ({r['latency_us']:.3f} us), interval "
                        f"{r['interval_cycles']} cycles; {sim['inferences']} inferences simulated, "
                        f"bit-exact: {sim['bit_exact']}; fits: {r.get('fits')}."))
    if ctx["verdict"]:
        lines += ["", ctx["verdict"].replace("<b>", "**").replace("</b>", "**")]
    lines += ["", "## FPGA vs CPU vs GPU", "",
              "| device | latency, batch 1 (us) | best throughput (/s) | energy, throughput mode (uJ) | energy, batch 1 (uJ) | how |",
              "|---|---|---|---|---|---|"]
    for row in ctx["table"]:
        lines.append(f"| {_prose(row['label'])} ({_prose(row['device'])}) | {row['latency']} | {row['throughput']} | "
                     f"{row['energy_t']} | {row['energy_1']} | {_prose(row['how'])} |")
    for c in ctx["cards"]:
        if not c["entry"]:
            lines.append(f"\n{_prose(c['title'])}: {_prose(c['absent'])}")
    lines += [""] + [f"* {_prose(n)}" for n in ctx["compare_notes"]]
    if ctx["accuracy"]:
        a = ctx["accuracy"]
        lines += ["", f"## Accuracy ({_prose(a['samples'])} labelled inputs)", "",
                  "| " + " | ".join(_prose(k) for k, _ in a["rows"]) + " |", "|" + "---|" * len(a["rows"]),
                  "| " + " | ".join(_prose(v) for _, v in a["rows"]) + " |"]
    if ctx["energy_methods"]:
        lines += ["", "## Energy: how", ""] + [f"* **{_prose(w)}**: {_prose(h)}" for w, h in ctx["energy_methods"]]
    if ctx["errors"]:
        lines += ["", "## Fixed point against float", "", "| layer | op | type | max abs error | SNR (dB) |", "|---|---|---|---|---|"]
        lines += [f"| {md(e['layer'])} | {md(e['op'])} | {_prose(e['type'])} | {e['max_abs_error']:.3g} | {e['snr_db'] if e['snr_db'] is not None else ''} |"
                  for e in ctx["errors"]]
    if r.get("saturation"):
        lines += ["", "## Saturation on the simulated inputs", "", "| layer | type | spans | saturated | of | share |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {md(s['layer'])} | {_prose(s['type'])} | {s['min']:g}..{s['max']:g} | {s['saturated']} | "
                  f"{s['total']} | {100 * s['share']:.3g} % |" for s in r["saturation"]]
    lines += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in figures.items() if v]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: str | Path) -> list[Path]:
    """Write ``out/report.html``, ``out/report.md`` and ``out/figures/*.png``; return the
    paths written."""
    out = Path(out)
    pngs = _figures(report)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    written, rel = [], {}
    for name, png in pngs.items():
        if png:
            p = out / "figures" / f"{name}.png"
            p.write_bytes(png)
            written.append(p)
            rel[name] = f"figures/{name}.png"
    page = _env().get_template("report.html.j2").render(
        **_context(report, {k: (plots.data_uri(v) if v else None) for k, v in pngs.items()}))
    (out / "report.html").write_text(page)
    (out / "report.md").write_text(render_markdown(report, rel))
    return written + [out / "report.html", out / "report.md"]
