"""Graph-to-graph passes and the one flat pipeline that runs them.

Each pass is a plain function ``Graph -> Graph`` (with keyword settings bound by the pipeline);
one that changes nothing returns its input. :func:`pipeline` is the list, in order, from an
imported float graph to a typed, folded one; every flow runs it or a prefix of it
(``stop_before=``): :func:`simplify` (the structural fusions: ``predict --float``) and
:func:`float_graph` (the last untyped graph: calibration, the float side of the fixed-point
error) are such prefixes. :func:`check_graph` runs after every pass, and :func:`run_pipeline`
hands every intermediate graph to a ``dump`` callback (``hetero import --dump`` prints them,
:func:`dump_folder` writes them as files: ``hetero synth --dump DIR``).
"""

from __future__ import annotations

import re

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hetero.boards import Board
from hetero.ir.config import Config, ConfigError
from hetero.ir.fixed import WidthError
from hetero.errors import UserError
from hetero.ir.graph import Graph, Node
from hetero.ir.quant import QuantSpec
from hetero.ops import op_of
from hetero.passes.folding import FoldingTarget, set_folding

Pass = Callable[[Graph], Graph]
Dump = Callable[[str, Graph], None]

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


def fuse_quant_clip(graph: Graph) -> Graph:
    """Narrow a QuantizeLinear by the Clip on its integers that follows it (how qonnx's QCDQ
    form writes bit widths below 8: QuantizeLinear -> Clip(-4, 3) -> DequantizeLinear)."""
    for q in graph.nodes:
        if q.outputs[0] in graph.outputs:
            continue
        users = graph.consumers(q.outputs[0])
        bounds = op_of(users[0]).clip_bounds(users[0]) if len(users) == 1 else None
        if bounds is None:
            continue
        clip = users[0]
        fused = op_of(q).fuse_clip(q, clip, *bounds)
        if fused is None:
            continue
        nodes = [fused if n is q else n for n in graph.nodes if n is not clip]
        return fuse_quant_clip(graph.with_nodes(nodes))
    return graph


def fuse_epilogues(graph: Graph) -> Graph:
    """Fold into each dense or convolution layer what follows it per output channel: bias Adds,
    scale/shift (batch norm, Mul/Div/Sub by constants), and, in front of a model quantizer, a
    ReLU and the quantizer itself (its output type becomes the layer's). A quantizer after a
    softmax is folded into it too (the probabilities are computed exactly, then quantized)."""
    for n in graph.nodes:
        if n.outputs[0] in graph.outputs:
            continue
        consumers = graph.consumers(n.outputs[0])
        if len(consumers) != 1:
            continue
        fused = _fuse_into(graph, n, consumers[0])
        if fused is not None:
            nodes = [fused if m is n else m for m in graph.nodes if m is not consumers[0]]
            return fuse_epilogues(graph.with_nodes(nodes))
    return graph


def _fuse_into(graph: Graph, n: Node, c: Node) -> Node | None:
    """``n`` and its sole reader ``c`` as one node (:meth:`~hetero.ops.base.Op.fuse_epilogue`),
    or None."""
    return op_of(n).fuse_epilogue(n, c, graph)


def fold_input_affine(graph: Graph) -> Graph:
    """Fold constant ``x * a + c`` nodes (ScaleShift, Add of a constant) between a graph input and
    a dense layer with model-quantized weights into that layer: ``W (a x + c) + b`` is
    ``(a W) x + (W c + b)``, so the hardware takes the input as the model receives it (FINN's
    bipolar-to-binary ``(x + 1) / 2`` prefix). ``a`` must be one scalar (the integer weights stay
    as they are, their scale absorbs it); anything else is left alone."""
    for name in graph.inputs:
        chain, cur = [], name
        while cur not in graph.outputs and len(graph.consumers(cur)) == 1:
            u = graph.consumers(cur)[0]
            if op_of(u).affine(u) is None or len(u.inputs) != 1:
                break
            chain.append(u)
            cur = u.outputs[0]
        users = graph.consumers(cur)
        if not chain or cur in graph.outputs or len(users) != 1:
            continue
        dense = users[0]
        shape = graph.tensors[cur].shape
        a, c = np.ones(shape), np.zeros(shape)
        for u in chain:
            ua, ub = (np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for v in op_of(u).affine(u))
            a, c = a * ua, c * ua + ub
        folded = op_of(dense).absorb_input_affine(dense, a.reshape(-1), c.reshape(-1))
        if folded is None:
            continue
        folded = folded.evolve(inputs=(name,), source=" + ".join([u.source for u in chain] + [dense.source]))
        drop = {u.name for u in chain}
        return fold_input_affine(graph.with_nodes([folded if n is dense else n for n in graph.nodes
                                                    if n.name not in drop]))
    return graph


def float_prefix(graph: Graph) -> set[str]:
    """Nodes between real-valued graph inputs and the model's input quantizers (e.g. FINN's
    ``Mul``/``Sub`` input scaling before the first ``Quant``). They run in floating point before
    the hardware, as the model defines them, and stay untyped."""
    floats = {i for i in graph.inputs if not graph.tensors[i].integer}
    cand: list[Node] = []
    for n in graph.nodes:
        if op_of(n).host_float(n) and all(i in floats for i in n.inputs):
            cand.append(n)
            floats.update(n.outputs)
    kept = {n.name for n in cand}
    changed = True
    while changed:
        changed = False
        for n in cand:
            if n.name not in kept:
                continue
            for o in n.outputs:
                users = graph.consumers(o)
                if o in graph.outputs or not users or any(op_of(u).quantizer(u) is None and u.name not in kept
                                                          for u in users):
                    kept.discard(n.name)
                    changed = True
                    break
    return kept


def assign_precision(graph: Graph, config: Config) -> Graph:
    """Give every tensor a fixed-point type and quantize every param, from the config."""
    unknown = config.unknown_layer_names({n.name for n in graph.nodes} | set(graph.inputs))
    if unknown:
        raise ConfigError(f"{config.source}: LayerName {unknown[0]!r} matches no layer; layers are: "
                        f"{', '.join(list(graph.inputs) + [n.name for n in graph.nodes])}")
    tensors = dict(graph.tensors)
    prefix = float_prefix(graph)
    for name in graph.inputs:
        t = tensors[name]
        if t.integer and t.quant is not None:  # integers as the model declares them
            if isinstance(t.quant, QuantSpec):
                dtype, scale, zero = t.quant.ir_type()
                tensors[name] = replace(t, dtype=dtype, scale=scale, zero_point=zero)
            else:
                tensors[name] = replace(t, dtype=t.quant)
            continue
        users = graph.consumers(name)
        if users and all(u.name in prefix or op_of(u).quantizer(u) is not None for u in users):
            continue  # real numbers for the model's input quantizer
        cfg = config.for_layer(name, ("Input", "InputLayer"))
        tensors[name] = replace(tensors[name], dtype=cfg.type_of("result"))
    nodes = []
    for n in graph.nodes:
        if n.name in prefix:
            nodes.append(n)
            continue
        op = op_of(n)
        cfg = config.for_layer(n.name, (op.name,) + op.layer_types)
        try:
            typed, outs = op.assign_types(n, [tensors[i] for i in n.inputs],
                                          [tensors[o] for o in n.outputs], cfg)
        except WidthError as e:  # e.g. an accumulator the config's types make too wide
            raise UserError(f"{n.source or n.name}: {e} (the raw values live in 64-bit integers); "
                            "choose narrower types for this layer in the config") from None
        nodes.append(typed)
        tensors.update({t.name: t for t in outs})
    return graph.with_nodes(nodes, tensors)


def pipeline(config: Config | None = None, board: Board | None = None,
             target: FoldingTarget = FoldingTarget(), *,
             stop_before: str | None = None) -> list[tuple[str, Pass]]:
    """The passes, as ``(name, pass)`` in order, from an imported float graph to a typed,
    folded graph ready for hardware: ``config`` (None: the defaults) types it, ``board`` and
    ``target`` (the interval the folding aims at, see :mod:`hetero.passes.folding`) fold it.
    ``stop_before``: only the passes before the one of that name (ValueError, naming the passes,
    when there is none)."""
    config = config if config is not None else Config()
    passes: list[tuple[str, Pass]] = [
        ("fuse_quant_clip", fuse_quant_clip),
        ("fuse_epilogues", fuse_epilogues),
        ("fold_input_affine", fold_input_affine),
        ("assign_precision", partial(assign_precision, config=config)),
        ("set_folding", partial(set_folding, config=config, board=board, target=target)),
    ]
    if stop_before is None:
        return passes
    names = [name for name, _ in passes]
    if stop_before not in names:
        raise ValueError(f"no pass {stop_before!r} in the pipeline ({', '.join(names)})")
    return passes[:names.index(stop_before)]


def run_pipeline(graph: Graph, passes: Sequence[tuple[str, Pass]], dump: Dump | None = None) -> Graph:
    """``graph`` through ``passes`` in order, :func:`check_graph` before the first and after
    each. ``dump`` gets ``("import", graph)`` and then ``(name, result)`` of every pass."""
    check_graph(graph)
    if dump:
        dump("import", graph)
    for name, p in passes:
        graph = check_graph(p(graph))
        if dump:
            dump(name, graph)
    return graph


def simplify(graph: Graph) -> Graph:
    """``graph`` through the pipeline's structural fusions (the passes before
    ``fold_input_affine``): quantizer clips and layer epilogues fused, no types, no board. The
    result still runs in float and equals the model (``hetero predict --float``)."""
    return run_pipeline(graph, pipeline(stop_before="fold_input_affine"))


def float_graph(graph: Graph, config: Config | None = None, board: Board | None = None) -> Graph:
    """The float graph that :func:`assign_precision` types: ``graph`` through the pipeline's
    passes before it (for ``config`` and ``board``)."""
    return run_pipeline(graph, pipeline(config, board, stop_before="assign_precision"))


#: the files :func:`dump_folder` writes
_DUMP_FILE = re.compile(r"\d{2,}-[A-Za-z0-9_]+\.txt")


def dump_folder(folder: str | Path) -> Dump:
    """A ``dump`` for :func:`run_pipeline` that writes every graph it gets, as ``str(graph)``
    prints it, to ``folder`` (created if missing): ``00-import.txt``, ``01-fuse_quant_clip.txt``,
    ... numbered in the order they come. A folder holding anything but such files is refused
    (UserError) before any work; an earlier dump's files in it are removed first."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: dump path exists and is not a folder")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if not _DUMP_FILE.fullmatch(p.name)
                         or not p.is_file() or p.is_symlink())
        if foreign:
            raise UserError(f"{folder}: the dump folder holds files hetero did not write "
                            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                            "give an empty or new folder")
        for p in folder.iterdir():  # an earlier dump's files: none may outlive this one
            p.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{folder}: cannot create the dump folder ({e.strerror})") from None
    count = [0]

    def dump(name: str, graph: Graph) -> None:
        (folder / f"{count[0]:02d}-{name}.txt").write_text(f"{graph}\n")
        count[0] += 1

    return dump
