"""Folding: how many multipliers each MAC layer gets (each hardware node whose op is
``foldable``: Dense, Conv), i.e. its ``pe`` (outputs per step) and ``simd`` (inputs per step).
The hardware nodes are :func:`hetero.dataflow.host_and_hardware`'s.

Three ways to choose, in order of precedence per layer:

1. the config (``PE``/``SIMD`` or ``ReuseFactor`` for that layer);
2. a target interval (``--target-interval CYCLES``, or ``--target-fps`` at the board's clock):
   every layer gets the fewest multipliers whose interval, from the op's own cycle model, is at
   most the target; the whole design then takes a new inference every ``target`` cycles or
   faster (its interval is the largest layer interval);
3. by default with a board: the fastest design whose estimated resources fit the board
   (:func:`layer_cost`: each op's calibrated ``resources`` facet, :mod:`hetero.hw.cost`,
   summed over every hardware layer, the FIFOs and forks of the top level left out, against
   :data:`LUT_BUDGET`, :data:`FF_BUDGET`, :data:`DSP_BUDGET` and :data:`BRAM_BUDGET` of the
   board's LUTs, flip-flops, DSPs and block RAM); without a board: fully parallel.

Layers that are not MAC layers (window generators, pools, ...) have a fixed interval: a target
below the largest of them is refused with a one-line error naming the layer.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hetero.boards import Board
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.ir.graph import Graph, Node
from hetero.ops import op_of
from hetero.dataflow import host_and_hardware
from hetero.hw.mvau import folds

if TYPE_CHECKING:
    from hetero.hw.cost import Family

__all__ = ["FoldingTarget", "choose_pe_simd", "folds", "mac_dims", "set_folding", "layer_cost",
           "estimate_fits", "DSP_BUDGET", "LUT_BUDGET", "FF_BUDGET", "BRAM_BUDGET"]

DSP_BUDGET = 0.9  #: share of the board's DSPs the automatic folding may use
LUT_BUDGET = 0.8  #: share of the board's LUTs the layers' estimate may use
FF_BUDGET = 0.8  #: share of the board's flip-flops the whole design may use
BRAM_BUDGET = 0.9  #: share of the board's block RAM the automatic folding may use


@dataclass(frozen=True)
class FoldingTarget:
    """What the automatic folding aims at: an interval in cycles, or None (fastest that fits)."""

    interval: int | None = None

    @staticmethod
    def from_options(interval: int | None, fps: float | None, board: Board | None) -> "FoldingTarget":
        """From the CLI options; ``fps`` needs a board (its clock)."""
        if interval is not None and fps is not None:
            raise UserError("--target-interval and --target-fps: give one of them")
        if interval is not None:
            if interval < 1:
                raise UserError(f"--target-interval must be at least 1 cycle, got {interval}")
            return FoldingTarget(int(interval))
        if fps is not None:
            if board is None:
                raise UserError("--target-fps needs a board (its clock turns fps into cycles)")
            if fps <= 0:
                raise UserError(f"--target-fps must be positive, got {fps}")
            cycles = int(board.clock_mhz * 1e6 // fps)
            if cycles < 1:
                raise UserError(f"--target-fps {fps:g} is above one inference per cycle at "
                                f"{board.clock_mhz:g} MHz")
            return FoldingTarget(cycles)
        return FoldingTarget()


@functools.lru_cache(maxsize=1024)
def _step_counts(n_in: int) -> tuple[int, ...]:
    """Every input step count ``sf`` some ``simd`` gives exactly (``ceil(n_in/simd) == sf`` and
    back), ascending: the values ``ceil(n_in/simd)`` for ``simd`` up to ``sqrt(n_in)`` and the
    small ``sf`` themselves cover them all."""
    r = math.isqrt(n_in) + 1
    cands = {math.ceil(n_in / s) for s in range(1, r + 1)} | set(range(1, min(r, n_in) + 1))
    return tuple(sorted(sf for sf in cands if math.ceil(n_in / math.ceil(n_in / sf)) == sf))


@functools.lru_cache(maxsize=1 << 16)
def choose_pe_simd(n_in: int, n_out: int, max_folds: int) -> tuple[int, int]:
    """The (pe, simd) with the fewest multipliers whose step count is at most ``max_folds``
    (ties: fewer steps, then more simd)."""
    best: tuple[int, int, int, int] | None = None
    for sf in _step_counts(n_in):
        simd = math.ceil(n_in / sf)
        nf_max = max_folds // sf
        if nf_max < 1:
            break
        pe = math.ceil(n_out / min(nf_max, n_out))
        steps = math.prod(folds(n_in, n_out, pe, simd))
        key = (pe * simd, steps, -simd, pe)
        if best is None or key < best:
            best = key
    if best is None:
        return 1, 1
    return best[3], -best[2]


def mac_dims(node: Node) -> tuple[int, int]:
    """(n_in, n_out) of a MAC layer's matrix-vector unit (:meth:`~hetero.ops.base.Op.mac_dims`:
    a grouped convolution sums the taps of one group's channels)."""
    return op_of(node).mac_dims(node)


def _with(node: Node, pe: int, simd: int) -> Node:
    return op_of(node).with_folding(node, pe, simd)


class _Layers:
    """One folding run's per-layer answers, by (node name, pe, simd): on one graph a layer's
    interval and cost depend on its folding only, and the search asks for the same ones many
    times. Created by each :func:`set_folding` call and dropped with it."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._memo: dict = {}

    def _get(self, kind, node: Node, compute):
        key = (kind, node.name, node.attrs.get("pe"), node.attrs.get("simd"))
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def interval(self, node: Node) -> int:
        """The interval of ``node`` as folded (its op's cycle model)."""
        return self._get("interval", node, lambda: int(op_of(node).cycles(node, self.graph).interval))

    def interval_at(self, node: Node, pe: int, simd: int) -> int:
        """:meth:`interval` of ``node`` folded to ``(pe, simd)``; a memo hit builds no node."""
        key = ("interval", node.name, pe, simd)
        if key in self._memo:
            return self._memo[key]
        return self.interval(_with(node, pe, simd))

    def cost(self, node: Node, family) -> dict[str, float]:
        """:func:`layer_cost` of ``node`` as folded."""
        return self._get(("resources", family), node, lambda: layer_cost(node, self.graph, family))


def layer_cost(node: Node, graph: Graph, family: "Family" = "xc7") -> dict[str, float]:
    """Resources of a layer as folded, by its op's calibrated ``resources`` facet
    (:mod:`hetero.hw.cost`; ``family``: a family name or a
    :class:`~hetero.hw.cost.Calibration`): ``{lut, ff, dsp, bram36}``."""
    r = op_of(node).resources(node, graph, family)
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram36": r.bram36}


def _fits(cost: dict[str, float], board: Board) -> bool:
    return (cost["dsp"] <= DSP_BUDGET * board.dsp and cost["lut"] <= LUT_BUDGET * board.lut
            and cost["ff"] <= FF_BUDGET * board.ff and cost["bram36"] <= BRAM_BUDGET * board.bram36)


def set_folding(graph: Graph, config: Config, board: Board | None,
                target: FoldingTarget = FoldingTarget()) -> Graph:
    """Choose ``pe``/``simd`` for every MAC layer (see the module docstring)."""
    layers = _Layers(graph)
    hardware = host_and_hardware(graph)[1]
    macs = [n for n in hardware if op_of(n).foldable]
    by_name = {n.name: n for n in graph.nodes}
    chosen: dict[str, tuple[int, int]] = {}
    for n in macs:
        cfg = config.for_layer(n.name, (n.op,) + op_of(n).layer_types)
        n_in, n_out = mac_dims(n)
        if cfg.pe or cfg.simd:
            chosen[n.name] = (min(cfg.pe or n_out, n_out), min(cfg.simd or n_in, n_in))
        elif cfg.reuse_factor:
            chosen[n.name] = choose_pe_simd(n_in, n_out, cfg.reuse_factor)
    free = [n for n in macs if n.name not in chosen]

    def pick(t: int) -> dict[str, tuple[int, int]]:
        """Fewest multipliers per free layer with interval <= t (fully parallel if none is)."""
        out = {}
        for n in free:
            n_in, n_out = mac_dims(n)
            lo, hi = 1, n_in * n_out  # largest step budget whose interval still meets t
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if layers.interval_at(n, *choose_pe_simd(n_in, n_out, mid)) <= t:
                    lo = mid
                else:
                    hi = mid - 1
            out[n.name] = choose_pe_simd(n_in, n_out, lo)
        return out

    if free and (target.interval is not None or board is not None):
        floor = _fixed_floor(layers, hardware, free, chosen)
        if target.interval is not None:
            if target.interval < floor[0]:
                raise UserError(f"--target-interval {target.interval}: layer '{floor[1]}' needs at "
                                f"least {floor[0]} cycles per inference")
            chosen.update(pick(target.interval))
        else:
            free_names = {n.name for n in free}
            fixed = {n.name: (_with(n, *chosen[n.name]) if n.name in chosen else n)
                     for n in hardware if n.name not in free_names}
            fixed_cost = _cost(layers, fixed.values(), board.family)
            hi = max(layers.interval(_with(n, 1, 1)) for n in free)
            lo = floor[0]
            while lo < hi:  # the smallest interval whose design fits
                mid = (lo + hi) // 2
                trial = {k: _with(by_name[k], *v) for k, v in pick(mid).items()}
                c = _cost(layers, trial.values(), board.family)
                if _fits({k: c[k] + fixed_cost[k] for k in c}, board):
                    hi = mid
                else:
                    lo = mid + 1
            chosen.update(pick(lo))
    if not chosen:
        return graph
    nodes = [_with(n, *chosen[n.name]) if n.name in chosen else n for n in graph.nodes]
    return graph.with_nodes(nodes)


def _cost(layers: _Layers, nodes, family) -> dict[str, float]:
    total = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram36": 0.0}
    for n in nodes:
        for k, v in layers.cost(n, family).items():
            total[k] += v
    return total


def _fixed_floor(layers: _Layers, hardware, free: list[Node],
                 chosen: dict[str, tuple[int, int]]) -> tuple[int, str]:
    """(smallest interval the design can reach, the layer that sets it): layers that fold
    nothing (or whose folding the config fixed) at their interval, free MAC layers fully
    parallel."""
    free_names = {n.name for n in free}
    worst = (1, "")
    for n in hardware:
        if n.name in free_names:
            n_in, n_out = mac_dims(n)
            n = _with(n, n_out, n_in)
        elif n.name in chosen:
            n = _with(n, *chosen[n.name])
        t = layers.interval(n)
        if t > worst[0]:
            worst = (t, n.name)
    return worst


def estimate_fits(graph: Graph, board: Board) -> bool:
    """Whether ``graph`` as folded fits ``board``'s budgets by :func:`layer_cost` over every
    hardware layer (a quick screen; synthesis decides)."""
    return _fits(_cost(_Layers(graph), host_and_hardware(graph)[1], board.family), board)
