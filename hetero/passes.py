"""Graph-to-graph passes and the flat pipeline that runs them.

Each pass is a plain function ``Graph -> Graph`` (with keyword settings bound by the pipeline);
one that changes nothing returns its input. :func:`check_graph` runs after every pass, and
:func:`run_pipeline` can hand every intermediate graph to a callback (``hetero import --dump``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Callable, Sequence

from .boards import Board
from .config import Config
from .errors import UserError
from .ir import Graph, Node, Tensor
from .ops import op_of
from .ops.gemm import folds

Pass = Callable[[Graph], Graph]

DSP_BUDGET = 0.9  # share of the board's DSPs the automatic folding may use


def check_graph(graph: Graph) -> Graph:
    """Invariants: every input is produced before use, every tensor has a shape."""
    known = set(graph.inputs)
    for n in graph.nodes:
        for i in n.inputs:
            if i not in known:
                raise UserError(f"{n.op} node '{n.name}': input '{i}' is not produced before it")
        known.update(n.outputs)
    for o in graph.outputs:
        if o not in known:
            raise UserError(f"graph output '{o}' is produced by no node")
    missing = known - set(graph.tensors)
    if missing:
        raise UserError(f"tensor(s) without a shape: {', '.join(sorted(missing))}")
    return graph


def fuse_bias_add(graph: Graph) -> Graph:
    """Fold ``Add(constant)`` that follows a Dense (its only consumer) into the Dense's bias."""
    for add in graph.nodes:
        if add.op != "Add":
            continue
        prod = graph.producer(add.inputs[0])
        if prod is None or prod.op != "Dense" or len(graph.consumers(add.inputs[0])) != 1:
            continue
        if add.inputs[0] in graph.outputs:
            continue
        fused = prod.evolve(outputs=add.outputs, params={"b": prod.params["b"] + add.params["B"]},
                            source=f"{prod.source} + {add.source}")
        nodes = [fused if n is prod else n for n in graph.nodes if n is not add]
        return fuse_bias_add(graph.with_nodes(nodes))
    return graph


def assign_precision(graph: Graph, config: Config) -> Graph:
    """Give every tensor a fixed-point type and quantize every param, from the config."""
    unknown = config.unknown_layer_names({n.name for n in graph.nodes} | set(graph.inputs))
    if unknown:
        raise UserError(f"{config.source}: LayerName {unknown[0]!r} matches no layer; layers are: "
                        f"{', '.join(list(graph.inputs) + [n.name for n in graph.nodes])}")
    tensors = dict(graph.tensors)
    for name in graph.inputs:
        cfg = config.for_layer(name, ("Input", "InputLayer"))
        tensors[name] = replace(tensors[name], dtype=cfg.type_of("result"))
    nodes = []
    for n in graph.nodes:
        op = op_of(n)
        cfg = config.for_layer(n.name, (op.name,) + op.layer_types)
        typed, outs = op.assign_types(n, [tensors[i] for i in n.inputs],
                                      [tensors[o] for o in n.outputs], cfg)
        nodes.append(typed)
        tensors.update({t.name: t for t in outs})
    return graph.with_nodes(nodes, tensors)


def choose_pe_simd(n_in: int, n_out: int, max_folds: int) -> tuple[int, int]:
    """The (pe, simd) with the fewest multipliers whose step count is at most ``max_folds``
    (ties: fewer steps, then more simd)."""
    best: tuple[int, int, int, int] | None = None
    for sf in range(1, n_in + 1):
        simd = math.ceil(n_in / sf)
        if math.ceil(n_in / simd) != sf:
            continue
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


def set_folding(graph: Graph, config: Config, board: Board | None) -> Graph:
    """Choose pe/simd for every Dense: from the config (PE/SIMD or ReuseFactor) where given;
    elsewhere the smallest common interval whose multipliers fit in the board's DSP budget
    (fully parallel without a board)."""
    dense = [n for n in graph.nodes if n.op == "Dense"]
    fixed: dict[str, tuple[int, int]] = {}
    for n in dense:
        cfg = config.for_layer(n.name, ("Dense",) + op_of(n).layer_types)
        n_in, n_out = n.attrs["n_in"], n.attrs["n_out"]
        if cfg.pe or cfg.simd:
            fixed[n.name] = (min(cfg.pe or n_out, n_out), min(cfg.simd or n_in, n_in))
        elif cfg.reuse_factor:
            fixed[n.name] = choose_pe_simd(n_in, n_out, cfg.reuse_factor)
    free = [n for n in dense if n.name not in fixed]
    chosen = dict(fixed)
    if free:
        budget = math.inf if board is None else DSP_BUDGET * board.dsp
        budget -= sum(pe * simd for pe, simd in fixed.values())

        def cost(t: int) -> tuple[int, dict]:
            pick = {n.name: choose_pe_simd(n.attrs["n_in"], n.attrs["n_out"], t) for n in free}
            return sum(pe * simd for pe, simd in pick.values()), pick

        hi = max(n.attrs["n_in"] * n.attrs["n_out"] for n in free)
        lo = 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cost(mid)[0] <= budget:
                hi = mid
            else:
                lo = mid + 1
        chosen.update(cost(lo)[1])
    nodes = [n.evolve(attrs={"pe": chosen[n.name][0], "simd": chosen[n.name][1]}) if n.name in chosen else n
             for n in graph.nodes]
    return graph.with_nodes(nodes)


def pipeline(config: Config, board: Board | None) -> list[tuple[str, Pass]]:
    """The passes from a float graph to a typed, folded graph ready for hardware."""
    return [
        ("fuse_bias_add", fuse_bias_add),
        ("assign_precision", partial(assign_precision, config=config)),
        ("set_folding", partial(set_folding, config=config, board=board)),
    ]


def run_pipeline(graph: Graph, passes: Sequence[tuple[str, Pass]],
                 dump: Callable[[str, Graph], None] | None = None) -> Graph:
    check_graph(graph)
    if dump:
        dump("import", graph)
    for name, p in passes:
        graph = check_graph(p(graph))
        if dump:
            dump(name, graph)
    return graph
