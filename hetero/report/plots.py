"""The report's figures, drawn with matplotlib's Agg backend (no display, no pyplot state: safe in
threads) from ``report.json`` alone. Each function returns PNG bytes, or None where the report
lacks what the figure shows; :func:`data_uri` embeds them in HTML.
"""

from __future__ import annotations

import base64
import io
import math

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from hetero.ir.text import plot_label, printable

COLORS = {"fpga": "#2a9d8f", "cpu": "#264653", "gpu": "#e9c46a", "published": "#e76f51",
          "interval": "#8ab17d", "grid": "#d9d9d9"}
_DPI = 110


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="x", color=COLORS["grid"], linewidth=0.6)
    ax.set_axisbelow(True)


def _short(name: str, n: int = 28) -> str:
    """A layer name (model text) as a literal label, cut to ``n`` characters (no mathtext, no
    control characters: :func:`hetero.ir.text.plot_label`)."""
    name = printable(name)
    return plot_label(name if len(name) <= n else name[: n - 1] + "\u2026")


def layer_cycles(report: dict) -> bytes | None:
    """Per FPGA layer: latency and interval cycles (cycle models), horizontal bars."""
    rows = [r for r in report.get("layers", []) if r.get("cycles")]
    if not rows:
        return None
    names = [_short(r["name"]) for r in rows]
    lat = [r["cycles"]["latency"] for r in rows]
    ivl = [r["cycles"]["interval"] for r in rows]
    fig = Figure(figsize=(7.5, 0.9 + 0.32 * len(rows)))
    ax = fig.subplots()
    y = range(len(rows))
    ax.barh([k - 0.2 for k in y], lat, height=0.4, color=COLORS["fpga"], label="latency")
    ax.barh([k + 0.2 for k in y], ivl, height=0.4, color=COLORS["interval"], label="interval")
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    if max(lat + ivl) / max(1, min(v for v in lat + ivl if v) or 1) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("cycles (per-layer cycle model)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    _style(ax)
    return _png(fig)


def _layer_resources(row: dict) -> dict | None:
    for key in ("resources", "estimate"):
        r = row.get(key)
        if isinstance(r, dict):
            if any(isinstance(r.get(k), (int, float)) for k in ("lut", "ff", "dsp", "bram36")):
                return r
            for v in r.values():  # e.g. {"estimate": {...}}
                if isinstance(v, dict) and any(isinstance(v.get(k), (int, float)) for k in ("lut", "dsp")):
                    return v
    return None


def layer_resources(report: dict) -> bytes | None:
    """Per layer LUT / FF / DSP / BRAM36 where the report's layers carry resource figures
    (an estimate); None otherwise (synthesis counts the whole design only)."""
    rows = [(r["name"], _layer_resources(r)) for r in report.get("layers", [])]
    rows = [(n, r) for n, r in rows if r]
    if not rows:
        return None
    kinds = [k for k in ("lut", "ff", "dsp", "bram36") if any(r.get(k) for _, r in rows)]
    fig = Figure(figsize=(3.0 * len(kinds), 0.9 + 0.3 * len(rows)))
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    y = list(range(len(rows)))
    for ax, k in zip(axes, kinds):
        ax.barh(y, [float(r.get(k) or 0) for _, r in rows], color=COLORS["fpga"])
        ax.set_title(k.upper(), fontsize=9)
        _style(ax)
    axes[0].set_yticks(y, [_short(n) for n, _ in rows], fontsize=8)
    axes[0].invert_yaxis()
    return _png(fig)


def utilization(report: dict) -> bytes | None:
    """Percent of the board's LUT / FF / DSP / BRAM36 used (synthesis), against 100 %."""
    util = report.get("utilization")
    if not util:
        return None
    kinds = [k for k in ("lut", "ff", "dsp", "bram36") if k in util]
    vals = [float(util[k]) for k in kinds]
    fig = Figure(figsize=(6.5, 2.3))
    ax = fig.subplots()
    colors = [COLORS["published"] if v > 100 else COLORS["fpga"] for v in vals]
    ax.barh(range(len(kinds)), vals, color=colors)
    for k, v in enumerate(vals):
        ax.text(v + 1, k, f"{v:.1f} %", va="center", fontsize=8)
    ax.axvline(100, color="#555555", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(kinds)), [k.upper() for k in kinds], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(110, max(vals) * 1.15))
    ax.set_xlabel(f"utilization of {report.get('board', 'the board')} ({report.get('part', '')}), %")
    _style(ax)
    return _png(fig)


def _entries(report: dict, published: list[dict] | None) -> list[tuple[str, str, dict]]:
    """(label, color key, entry) for FPGA, CPU, GPU and published rows that exist."""
    b = report.get("baselines") or {}
    out = []
    if b.get("fpga"):
        out.append(("FPGA (ours, simulated)", "fpga", b["fpga"]))
    if b.get("cpu"):
        out.append(("CPU (onnxruntime)", "cpu", b["cpu"]))
    if b.get("gpu"):
        out.append(("GPU (onnxruntime CUDA)", "gpu", b["gpu"]))
    for p in published or []:
        out.append((p["label"], "published", p))
    return out


def comparison(report: dict, published: list[dict] | None = None) -> bytes | None:
    """Three panels, log scales: latency at batch 1 (us), best throughput (inferences/s),
    energy per inference (uJ, throughput mode; hatched where estimated)."""
    entries = _entries(report, published)
    if not entries:
        return None
    panels = [("latency, batch 1 (\u00b5s)", lambda e: e.get("batch1_latency_us")),
              ("throughput, best batch (inferences/s)", lambda e: e.get("best_throughput_per_s")),
              ("energy per inference (\u00b5J)",
               lambda e: (e.get("energy") or {}).get("throughput_uj"))]
    fig = Figure(figsize=(11, 0.9 + 0.45 * len(entries)))
    axes = fig.subplots(1, 3, sharey=True)
    y = list(range(len(entries)))
    for ax, (title, get) in zip(axes, panels):
        vals = [get(e) for _, _, e in entries]
        for k, ((label, color, e), v) in enumerate(zip(entries, vals)):
            if v is None:
                ax.text(0.02, k, "n/a", va="center", fontsize=8, color="#777777",
                        transform=ax.get_yaxis_transform())
                continue
            estimated = "energy" in title and not (e.get("energy") or {}).get("measured", False)
            ax.barh(k, v, color=COLORS[color], hatch="//" if estimated else None,
                    edgecolor="white" if estimated else None)
            ax.text(v, k, f" {_fmt(v)}", va="center", fontsize=8)
        present = [v for v in vals if v]
        if present:
            ax.set_xscale("log")
            lo, hi = min(present), max(present)
            ax.set_xlim(lo / 3, hi * 12)
        ax.set_title(title, fontsize=9)
        _style(ax)
    axes[0].set_yticks(y, [label for label, _, _ in entries], fontsize=8)
    axes[0].invert_yaxis()
    axes[2].set_xlabel("hatched: estimated (power model, TDP); solid: measured", fontsize=7,
                       color="#555555")
    return _png(fig)


def throughput_curve(report: dict) -> bytes | None:
    """CPU (and GPU) throughput over batch size with the FPGA's streaming throughput as a
    line (an FPGA dataflow pipeline needs no batch)."""
    b = report.get("baselines") or {}
    curves = [(k, b[k]) for k in ("cpu", "gpu") if b.get(k) and b[k].get("throughput")]
    fpga = (b.get("fpga") or {}).get("best_throughput_per_s")
    if not curves and not fpga:
        return None
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    for k, e in curves:
        xs = [r["batch"] for r in e["throughput"]]
        ax.plot(xs, [r["per_s"] for r in e["throughput"]], marker="o", color=COLORS[k],
                label=f"{k.upper()} (onnxruntime)")
    if fpga:
        ax.axhline(fpga, color=COLORS["fpga"], linestyle="--", label="FPGA, streaming (simulated)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("inferences / s")
    ax.grid(True, which="major", color=COLORS["grid"], linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def error_histograms(rows: list[dict], columns: int = 4, limit: int = 16) -> bytes | None:
    """Small multiples: per layer, the histogram of fixed point minus float (as
    :func:`hetero.report.baselines.fixed_point_errors` gives it), titled with max |error| and SNR."""
    rows = [r for r in rows if r.get("hist")][:limit]
    if not rows:
        return None
    cols = min(columns, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(3.0 * cols, 2.2 * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, rows):
        edges, counts = r["hist"]["edges"], r["hist"]["counts"]
        exact = r["max_abs_error"] == 0
        if exact:
            ax.bar([0], [sum(counts)], width=0.6, color=COLORS["fpga"])
            ax.set_xlim(-1, 1)
            ax.set_xticks([0], ["0 (exact)"])
        else:
            widths = [b - a for a, b in zip(edges, edges[1:])]
            ax.bar(edges[:-1], counts, width=widths, align="edge", color=COLORS["cpu"])
            if r.get("lsb"):
                for s in (-0.5, 0.5):
                    if abs(s * r["lsb"]) <= edges[-1]:
                        ax.axvline(s * r["lsb"], color=COLORS["published"], linewidth=0.8, linestyle=":")
        if max(counts) > 50 * max(1, sorted(counts)[len(counts) // 2]):
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        snr = "" if r.get("snr_db") is None else f", SNR {r['snr_db']:.0f} dB"
        ax.set_title(f"{_short(r['layer'], 22)} ({_short(r['op'])})\nmax|err| {r['max_abs_error']:.2g}{snr}",
                     fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def _fmt(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.3g} M"
    if v >= 1e4:
        return f"{v / 1e3:.3g} k"
    return f"{v:.3g}"
