"""Whether the FPGA design may be recommended, and what to do when it does not fit the board.

A design that does not fit its board (synthesis' counts where the report has them, else the
analytic estimate) is never recommended, whatever its simulated speed: :func:`verdict` leaves
the FPGA out of every "best at" and says why; :func:`fit_advice` (``report.json``
``fit_advice``) says what to do: fold it (``--target-interval``, the automatic folding's fastest
fitting design, :mod:`hetero.passes.folding`) or take a board whose resources hold it, and gives
the nearest fitting design's figures; where even the smallest (most folded) design does not
fit, which resource and by how much.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["design_fits", "fit_advice", "verdict"]

_NAMES = {"fpga": "the FPGA", "cpu": "the CPU", "gpu": "the GPU"}


def design_fits(report: dict) -> bool:
    """Whether the report's design fits its board: synthesis' answer where there is one
    (``fits``), else the estimate's (``estimate.fits``); True when neither is known."""
    if report.get("fits") is not None:
        return bool(report["fits"])
    est = report.get("estimate") or {}
    return est.get("fits") is not False


def over_of(report: dict) -> list[dict]:
    """The resources over the board: synthesis' where it ran, else the estimate's."""
    if report.get("fits") is not None:
        return list(report.get("over") or [])
    return list((report.get("estimate") or {}).get("over") or [])


def _describe(over: list[dict]) -> str:
    from hetero.synthesis.estimate import describe_over

    return describe_over(over) if over else "a resource beyond the board"


def fit_advice(float_graph, config, board, report: dict) -> dict[str, Any] | None:
    """None when the report's design fits ``board``; else ``{fits: false, over, advice,
    nearest}``: ``nearest`` is the automatic folding's design (no target, the same config) as
    the estimate sees it, ``{fits, interval_cycles, latency_cycles, throughput_per_s,
    resources, utilization, over, parallelism, target_interval}`` (``parallelism``: ``[layer,
    {pe, simd, ...}]`` per foldable layer; ``target_interval``: the ``--target-interval`` that gives
    it); ``advice`` one sentence for the user. ``float_graph``: the imported graph the
    pipeline starts from."""
    if design_fits(report):
        return None
    from hetero.boards import all_boards
    from hetero.ops import op_of
    from hetero.passes.folding import FoldingTarget
    from hetero.passes.pipeline import pipeline, run_pipeline
    from hetero.synthesis.estimate import estimate

    over = over_of(report)
    graph = run_pipeline(float_graph, pipeline(config, board, FoldingTarget()))
    est = estimate(graph, board).to_json()
    par = [[n.name, op_of(n).parallelism(n)] for n in graph.nodes if op_of(n).foldable]
    nearest = {"fits": est["fits"], "interval_cycles": est["interval_cycles"],
               "latency_cycles": est["latency_cycles"], "throughput_per_s": est["throughput_per_s"],
               "resources": est["resources"], "utilization": est["utilization"], "over": est["over"],
               "parallelism": par, "target_interval": est["interval_cycles"]}
    used = (report.get("resources") or {}).get("synth") or (report.get("resources") or {}).get("estimate") or {}
    # boards (smallest first) whose counts hold this design as it is or, where no folding fits
    # this board, the smallest design (the estimate's counts: indicative across families)
    need = used if est["fits"] and used.get("lut") is not None else est["resources"]
    bigger = [b.name for b in sorted(all_boards(), key=lambda b: b.lut) if b.name != board.name and all(
        (need.get(k) or 0) <= (getattr(b, k, 0) or 0) for k in ("lut", "ff", "dsp", "bram36"))]
    what = "it as it is" if est["fits"] else "its smallest design"
    where = f"a board that holds {what} ({', '.join(bigger[:3])})" if bigger else "a bigger board"
    if est["fits"]:
        advice = (f"does not fit {board.name} ({_describe(over)}): fold it, "
                  f"--target-interval {est['interval_cycles']} (the fastest design that fits: "
                  f"interval {est['interval_cycles']} cycles, {est['resources']['lut']:g} LUT, "
                  f"{est['resources']['dsp']:g} DSP), or use {where}")
    else:
        advice = (f"does not fit {board.name} ({_describe(over)}), and even the smallest design "
                  f"(most folded) needs {_describe(est['over'])}: use {where}")
    return {"fits": False, "over": over, "advice": advice, "nearest": nearest}


def verdict(report: dict, markup: bool = True) -> str:
    """The "where should it run" sentence: per figure (lowest latency, highest throughput,
    least energy per inference) the best device and its margin over the next; a design that
    does not fit its board is left out of every comparison, and the sentence says so and what
    to do (``fit_advice``). ``markup``: the winners in ``<b>`` (text HTML-escaped), else plain."""
    b = report.get("baselines") or {}
    fpga_fits = design_fits(report)
    present = {k: b[k] for k in ("fpga", "cpu", "gpu") if b.get(k) and (k != "fpga" or fpga_fits)}
    bold = (lambda s: f"<b>{s}</b>") if markup else (lambda s: s)
    esc = html.escape if markup else (lambda s: s)
    parts = []
    if len(present) >= 2:
        for label, get, better in (
                ("lowest latency", lambda e: e.get("batch1_latency_us"), min),
                ("highest throughput", lambda e: e.get("best_throughput_per_s"), max),
                ("least energy per inference", lambda e: (e.get("energy") or {}).get("throughput_uj"), min)):
            vals = {k: get(e) for k, e in present.items() if get(e)}
            if len(vals) < 2:
                continue
            win = better(vals, key=vals.get)
            other = sorted((v for k, v in vals.items() if k != win), reverse=better is max)[0]
            ratio = max(vals[win], other) / min(vals[win], other)
            parts.append(f"{label}: {bold(_NAMES[win])} ({ratio:.1f}x)")
    text = "; ".join(parts) + "." if parts else ""
    if not fpga_fits and b.get("fpga"):
        advice = (report.get("fit_advice") or {}).get("advice") or (
            f"does not fit {report.get('board')} ({_describe(over_of(report))})")
        note = f"The FPGA design is not recommended: it {esc(advice)}."
        text = f"{note} {text}".strip()
    return text
