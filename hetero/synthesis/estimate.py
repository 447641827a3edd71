"""Fast analytic estimates of a compiled graph's hardware: resources per layer (each op's
``resources`` facet, :mod:`hetero.hw.cost`), the FIFOs and forks the top level adds, the
interval and latency (:func:`hetero.dataflow.cycle_model`: the ops' cycle models and the
beat-level latency of :mod:`hetero.hw.beats`), and the fit check against a board. Pure arithmetic on the graph: no Amaranth elaboration, no tool runs.

Contract of :func:`estimate`: returns an :class:`Estimate` whose ``layers`` has one row per
hardware node (graph order) plus one row per FIFO/fork group (``op`` ``"Fifo"``/``"Fork"``) and
``totals`` sums them; ``utilization`` is percent of the board per estimated resource (LUT, FF,
DSP, 36 kb block RAM: the model places no UltraRAM) by :meth:`hetero.hw.cost.Resources.utilization`,
the one rule synthesis results use too; ``over`` lists the resources that do not fit, each with
how much is needed and available. :meth:`Estimate.to_json` is ``hetero estimate --json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hetero.boards import Board
from hetero.errors import UserError
from hetero.hw.stream import tensor_layouts
from hetero.dataflow import cycle_model, fifo_depth, hardware_part, path_latency
from hetero.ir.graph import Graph
from hetero.ops import op_of
from hetero.hw.cycles import Cycles
from hetero.hw.cost import Resources, coeffs, memory, model_version

__all__ = ["Estimate", "estimate", "fifo_plan", "graph_resources", "describe_over", "refuse_grossly_over",
           "GROSS_OVER"]

#: the resources the analytic model estimates (it maps no memory to UltraRAM)
ESTIMATED = ("lut", "ff", "dsp", "bram36")


@dataclass(frozen=True)
class Estimate:
    """What :func:`estimate` returns; :meth:`to_json` is the ``--json`` form."""

    board: Board
    layers: list[dict]
    totals: Resources
    latency_cycles: int
    interval_cycles: int

    @property
    def utilization(self) -> dict[str, float]:
        """Percent of the board per estimated resource (:data:`ESTIMATED`)."""
        u = self.totals.utilization(self.board)
        return {k: u[k] for k in ESTIMATED}

    @property
    def over(self) -> list[dict]:
        """The resources that exceed the board (:meth:`Resources.over`)."""
        return self.totals.over(self.board)

    @property
    def fits(self) -> bool:
        return not self.over

    def to_json(self) -> dict:
        """``{board, part, family, clock_mhz, model_version, resources {lut, ff, dsp, bram36,
        lutram}, latency_cycles, interval_cycles, latency_us, throughput_per_s, utilization,
        fits, over, layers}`` (JSON types)."""
        t = self.totals.as_dict()
        clock = self.board.clock_mhz
        return {
            "board": self.board.name, "part": self.board.part, "family": self.board.family,
            "clock_mhz": clock, "model_version": model_version(),
            "resources": {"lut": t["lut"], "ff": t["ff"], "dsp": t["dsp"], "bram36": t["bram36"],
                          "lutram": t["lutram"]},
            "latency_cycles": self.latency_cycles, "interval_cycles": self.interval_cycles,
            "latency_us": self.latency_cycles / clock,
            "throughput_per_s": clock * 1e6 / self.interval_cycles if self.interval_cycles else None,
            "utilization": {k: round(v, 2) for k, v in self.utilization.items()},
            "fits": self.fits, "over": self.over, "layers": self.layers,
        }

    as_dict = to_json  #: the same as :meth:`to_json`


def fifo_plan(graph: Graph, cycles: dict[str, Cycles] | None = None) -> list[tuple[str, int, int]]:
    """``(name, depth, width)`` of every FIFO :class:`hetero.backends.rtl.top.Top` inserts (its depths:
    :func:`hetero.dataflow.fifo_depth`) and ``(name, 0, width)`` for every fork. ``cycles``: the
    hardware nodes' cycle models where the caller has them."""
    part = hardware_part(graph)
    layouts = tensor_layouts(graph)
    delay = path_latency(graph, part, cycles)
    consumers: dict[str, list] = {}
    for n in part.nodes:
        for name in n.inputs:
            consumers.setdefault(name, []).append(n)
    out = []
    for t in [part.input] + [o for n in part.nodes for o in n.outputs]:
        lay = layouts[t]
        width = lay.lanes * graph.tensors[t].dtype.width
        dsts = consumers.get(t, []) + ([None] if t == part.output else [])
        if len(dsts) > 1:
            out.append((f"fork {t}", 0, width))
        for node in dsts:
            depth = 0 if node is None else fifo_depth(graph, part, layouts, delay, t, node)
            if depth:
                out.append((f"fifo {t} -> {node.name}", depth, width))
    return out


def fifo_resources(depth: int, width: int, family: str) -> Resources:
    """Amaranth's ``SyncFIFOBuffered``: a memory of ``depth - 1`` words, an output register
    and the pointers and level counter."""
    c = coeffs(family)
    ptr = max(1, (depth - 1).bit_length())
    mem = memory(depth - 1, width, family, rom=False) if depth > 2 else Resources(ff=width)
    return mem + Resources(lut=c["fifo_lut"] + 3 * ptr, ff=width + 3 * ptr + 2)


def graph_resources(graph: Graph, family: str,
                    cycles: dict[str, Cycles] | None = None) -> tuple[list[dict], Resources]:
    """Rows (one per hardware node, then FIFOs and forks) and their sum. ``cycles``: the
    hardware nodes' cycle models where the caller has them."""
    rows = []
    total = Resources()
    nodes = hardware_part(graph).nodes
    cycles = cycles or {n.name: op_of(n).cycles(n, graph) for n in nodes}
    for n in nodes:
        r = op_of(n).resources(n, graph, family)
        total = total + r
        c = cycles[n.name]
        rows.append({"name": n.name, "op": n.op, **r.as_dict(),
                     "cycles": {"latency": int(c.latency), "interval": int(c.interval)},
                     "parallelism": op_of(n).parallelism(n)})
    for name, depth, width in fifo_plan(graph, cycles):
        r = fifo_resources(depth, width, family) if depth else Resources(lut=coeffs(family)["fifo_lut"] / 2,
                                                                         ff=2)
        total = total + r
        rows.append({"name": name, "op": "Fifo" if depth else "Fork", **r.as_dict(),
                     "depth": depth, "width": width})
    return rows, total


def describe_over(over: list[dict]) -> str:
    """One line naming each resource over the board and by how much."""
    return "; ".join(f"{o['resource'].upper()} {o['needed']:g} of {o['available']:g}"
                     + (f" (+{o['over_by_percent']:g} %)" if o["over_by_percent"] is not None else "")
                     for o in over)


def estimate(graph: Graph, board: Board) -> Estimate:
    """The analytic estimate of ``graph`` (typed and folded) on ``board``; see the module
    docstring."""
    cycles = {n.name: op_of(n).cycles(n, graph) for n in hardware_part(graph).nodes}  # once
    rows, total = graph_resources(graph, board.family, cycles)
    model = cycle_model(graph, cycles)
    return Estimate(board, rows, total, int(model["latency"]), int(model["interval"]))


#: a design whose estimate needs more than this many times the board's LUTs, FFs, DSPs or block
#: RAM is refused before hardware is generated (:func:`refuse_grossly_over`)
GROSS_OVER = 4.0


def refuse_grossly_over(graph: Graph, board: Board) -> Estimate:
    """The :func:`estimate` of ``graph`` on ``board``, or a UserError with its numbers when some
    resource needs more than :data:`GROSS_OVER` times what the board has: generating,
    simulating and synthesizing such a design takes minutes to hours for a sure "does not
    fit". ``HETERO_ALLOW_OVERSIZED=1`` in the environment lets it through."""
    est = estimate(graph, board)
    if os.environ.get("HETERO_ALLOW_OVERSIZED", "") not in ("", "0"):
        return est
    gross = [o for o in est.over if not o["available"] or o["needed"] > GROSS_OVER * o["available"]]
    if gross:
        worst = max(gross, key=lambda o: o["needed"] / o["available"] if o["available"] else float("inf"))
        factor = (f"{worst['needed'] / worst['available']:.0f}x" if worst["available"]
                  else "some, of none")
        raise UserError(f"the estimate needs {describe_over(est.over)} on {board.name}: {factor} "
                        f"the board's {worst['resource'].upper()}, more than {GROSS_OVER:g}x; stopped "
                        "before generating hardware (fold more with --target-interval or a config's "
                        "ReuseFactor, pick a larger board, or set HETERO_ALLOW_OVERSIZED=1 to go on)")
    return est
