"""Transpose: a permutation of the per-inference axes. ``attrs["perm"]`` is the per-inference
permutation (ONNX perm minus one, batch dropped); an identity permutation vanishes at import.
Typed: raw values, type, scale and zero point pass through. Hardware
(:func:`~hetero.hw.lanes.movement_hardware`): a wire when the permutation keeps every element's
beat and lane (e.g. channels-last ``(H, W, C)`` to channels-first ``(C, H, W)`` when the tensors'
layouts say so), else the whole tensor is collected and re-sent
(:class:`~hetero.hw.lanes.Regroup`, latency and interval ``in_beats + out_beats - 1``).

A Transpose that moves the batch axis (``perm[0] != 0``) cannot exist in the IR, whose shapes
are per inference. Exporters write one around per-channel ops, though: Keras's BatchNormalization
of a ``[N, C]`` tensor is ``Transpose -> BatchNormalization on [C, N] -> Transpose``. So such a
Transpose opens a *pending* permutation (kept in ``ctx.pending_perm``, keyed by its output):

* its output keeps its input's layout in the IR, produced by a placeholder node;
* elementwise ops after it (activations, quantizers, a scale or bias that is one number) act
  on that layout unchanged, and BatchNormalization takes its channel axis through the
  permutation (:func:`pending_channel_axis`);
* the first Transpose whose permutation, composed with the pending one, puts the batch axis back
  first closes it: the placeholder goes, the ops in between run on the original layout, and what
  is left of the composed permutation (usually nothing) becomes an ordinary Transpose.

Anything else between the two (a layer, a per-element constant, a second use of an intermediate
tensor) is refused at the closing Transpose, naming the op. A pending permutation that nothing
closes stays a placeholder; typing it, running it or building its hardware raises UserError
naming the Transpose (:func:`finish_import` raises the same at the end of an import).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hetero.errors import UserError
from hetero.hw.lanes import movement_cycles, movement_hardware
from hetero.ops.onnx_context import attr, describe
from hetero.ops.base import Op, register
from hetero.ops.reshape import mark_integer, pass_type

# IR ops that act on every element alike (no axis, no per-element constant) when they have one
# data input: a batch-moving permutation passes through them unchanged
_ELEMENTWISE = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Selu", "Elu", "Softplus",
                "HardSigmoid", "Quantize", "Dequantize")


@dataclass
class Pending:
    """A batch-moving Transpose not closed yet."""

    perm: tuple[int, ...]  # its ONNX permutation (batch included)
    source: str  # its input: the layout the IR keeps
    placeholder: str  # the IR node standing for it until it closes
    opener: str  # "Transpose node '...'", for messages
    reaxed: set[str] = field(default_factory=set)  # IR nodes that took their axes through it


def _unresolved_message(opener: str, perm) -> str:
    return (f"{opener}: perm {list(perm)} moves the batch axis, and no later Transpose restores it "
            "with only elementwise ops or BatchNormalization in between; unsupported")


def find_pending(ctx, tensor: str, asker: str) -> tuple[str, Pending, list] | None:
    """If ``tensor`` lies after a batch-moving Transpose not closed yet: ``(its output, the
    Pending, the IR nodes from there to tensor)``; None if it does not. ``asker`` (the ONNX node
    that wants to know) is named when something in between cannot carry the permutation."""
    pending: dict[str, Pending] = ctx.pending_perm
    if not pending:
        return None
    producers = {o: n for n in ctx.nodes for o in n.outputs}
    t, chain = ctx.resolve(tensor), []
    while t not in pending:
        n = producers.get(t)
        if n is None:
            return None
        if len(n.inputs) != 1:
            _refuse_if_after_pending(n, pending, producers, asker)
            return None
        chain.append(n)
        t = n.inputs[0]
    info = pending[t]
    chain.reverse()
    for n in chain:
        if not _layout_free(n, info):
            raise UserError(f"{asker}: {n.source} lies between it and {info.opener}, whose perm "
                            f"{list(info.perm)} moves the batch axis; only elementwise ops and "
                            "BatchNormalization can lie between such a pair of Transposes")
    return t, info, chain


def _refuse_if_after_pending(n, pending, producers, asker: str) -> None:
    """A node of several inputs, any of which comes after a pending permutation, is refused."""
    stack, seen = list(n.inputs), set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in pending:
            raise UserError(f"{asker}: {n.source} lies between it and {pending[t].opener}, whose perm "
                            f"{list(pending[t].perm)} moves the batch axis; only elementwise ops and "
                            "BatchNormalization can lie between such a pair of Transposes")
        if t in producers:
            stack.extend(producers[t].inputs)


def _layout_free(n, info: Pending) -> bool:
    if n.name in info.reaxed:
        return True
    if n.op in _ELEMENTWISE:
        return True
    if n.op in ("ScaleShift", "Add") and n.params:  # Add: only by a constant (param "B")
        return all(np.asarray(v).size <= 1 or np.all(np.asarray(v) == np.asarray(v).flat[0])
                   for v in n.params.values())
    return False


def pending_channel_axis(ctx, node, tensor: str, channels: int) -> tuple[int, Pending] | None:
    """For a BatchNormalization ``node`` whose input ``tensor`` lies after a batch-moving
    Transpose: ``(the per-inference axis of tensor's IR layout that is its channel axis, the
    Pending)`` (register the node made in ``Pending.reaxed``); None otherwise.

    ONNX takes the channels on axis 1 of the transposed tensor, i.e. original axis ``perm[1]``.
    When that is the batch axis (Keras's ``[N, C] -> [C, N]``, which onnxruntime runs only when
    N == C) the exporter meant the axis it moved to the front, ``perm[0]``."""
    found = find_pending(ctx, tensor, describe(node))
    if found is None:
        return None
    _, info, _ = found
    axis = info.perm[1] if len(info.perm) > 1 and info.perm[1] != 0 else info.perm[0]
    shape = ctx.shape(tensor)
    if shape[axis - 1] != channels:
        raise UserError(f"{describe(node)}: after {info.opener} (perm {list(info.perm)}) its channel "
                        f"axis has {shape[axis - 1]} elements but it has {channels} scale values")
    return axis - 1, info


def finish_import(ctx) -> None:
    """Raise UserError for a batch-moving Transpose that no later Transpose closed (to be called
    once every node is imported)."""
    for info in ctx.pending_perm.values():
        raise UserError(_unresolved_message(info.opener, info.perm))


class Transpose(Op):
    name = "Transpose"
    onnx_ops = ("Transpose",)
    host_layout = True
    moves_values = True

    def host_float(self, node) -> bool:
        return True

    def import_onnx(self, node, ctx) -> None:
        src = node.input[0]
        shape = ctx.shape(src)
        full = len(shape) + 1
        perm = attr(node, "perm")
        perm = list(range(full))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(full)):
            raise UserError(f"{describe(node)}: perm {perm} is not a permutation of the {full} axes")
        found = find_pending(ctx, src, describe(node))
        if found is not None:
            t, info, chain = found
            composed = [info.perm[p] for p in perm]  # output axis i is source axis composed[i]
            if composed[0] != 0:
                raise UserError(f"{describe(node)}: perm {perm} after {info.opener} (perm "
                                f"{list(info.perm)}) still moves the batch axis; unsupported")
            src = self._close(ctx, node, t, info, chain)
            perm = composed
        elif perm[0] != 0:
            self._open(ctx, node, src, shape, perm)
            return
        inner = tuple(p - 1 for p in perm[1:])
        if inner == tuple(range(len(shape))):
            ctx.alias(node.output[0], src)
            return
        ctx.add(node, self.name, [src], [node.output[0]], [tuple(shape[p] for p in inner)],
                attrs={"perm": inner})
        mark_integer(ctx, node.output[0], src)

    def _open(self, ctx, node, src, shape, perm) -> None:
        """A batch-moving Transpose: a placeholder keeping the input's layout, and a Pending."""
        pending = ctx.pending_perm
        out = node.output[0]
        n = ctx.add(node, self.name, [src], [out], [shape],
                    attrs={"perm": tuple(range(len(shape))), "batch_perm": tuple(perm)})
        mark_integer(ctx, out, src)
        pending[out] = Pending(tuple(perm), ctx.resolve(src), n.name, describe(node))

    def _close(self, ctx, node, t: str, info: Pending, chain: list) -> str:
        """Run ``chain`` (the IR nodes from the pending output ``t`` on) on the source layout
        and return the tensor that ends it there. Its tensors get new names: the model's names
        denote the transposed layout (and may declare those shapes)."""
        for k, n in enumerate(chain):
            users = [u for u in ctx.nodes if n.outputs[0] in u.inputs]
            others = [u for u in users if k + 1 >= len(chain) or u is not chain[k + 1]]
            if others:
                raise UserError(f"{describe(node)}: '{n.outputs[0]}' (between it and {info.opener}, "
                                f"whose perm moves the batch axis) is also used by {others[0].source}; "
                                "unsupported")
        rename = {t: info.source}
        for n in chain:
            old = n.outputs[0]
            new, k = f"{old}.untransposed", 1
            while new in ctx.shapes or new in ctx.constants:
                new, k = f"{old}.untransposed{k}", k + 1
            rename[old] = new
            ctx.shapes[new] = ctx.shapes.pop(old)
            if old in ctx.integer:
                ctx.integer.discard(old)
                ctx.integer.add(new)
        members = {id(n) for n in chain}
        ctx.nodes[:] = [n.evolve(inputs=tuple(rename.get(i, i) for i in n.inputs),
                                 outputs=tuple(rename.get(o, o) for o in n.outputs))
                        if id(n) in members else n for n in ctx.nodes]
        if not any(t in n.inputs for n in ctx.nodes):  # no other use: the placeholder goes
            ctx.nodes[:] = [n for n in ctx.nodes if n.name != info.placeholder]
            ctx.shapes.pop(t, None)
            ctx.integer.discard(t)
            del ctx.pending_perm[t]
        return rename[chain[-1].outputs[0]] if chain else info.source

    def assign_types(self, node, inputs, outputs, cfg):
        self._refuse_placeholder(node)
        return node, [pass_type(outputs[0], inputs[0])]

    def reference(self, node, graph, inputs):
        self._refuse_placeholder(node)
        perm = node.attrs["perm"]
        return [np.transpose(inputs[0], (0,) + tuple(p + 1 for p in perm))]

    def hardware(self, node, graph):
        self._refuse_placeholder(node)
        return movement_hardware(graph, node, self._source(node, graph))

    def cycles(self, node, graph):
        self._refuse_placeholder(node)
        return movement_cycles(graph, node, self._source(node, graph))

    @staticmethod
    def _source(node, graph) -> np.ndarray:
        """The input's flat index of every output flat index."""
        shape = graph.tensors[node.inputs[0]].shape
        return np.transpose(np.arange(int(np.prod(shape))).reshape(shape), node.attrs["perm"]).reshape(-1)

    @staticmethod
    def _refuse_placeholder(node) -> None:
        if "batch_perm" in node.attrs:
            raise UserError(_unresolved_message(node.source, node.attrs["batch_perm"]))

    def hls(self, node, graph):
        """hetero_movement.h ``transpose`` (up to 4 axes) with the input's strides permuted."""
        from hetero.hw.hls_binding import HlsCall

        self._refuse_placeholder(node)
        shape = graph.tensors[node.inputs[0]].shape
        perm = tuple(node.attrs["perm"])
        if len(shape) > 4:
            return None
        strides = [int(s) for s in np.cumprod((1,) + tuple(shape[:0:-1]))[::-1]]
        pad = 4 - len(shape)
        dims = [1] * pad + [int(shape[p]) for p in perm]
        steps = [0] * pad + [strides[p] for p in perm]
        cfg = {"n": int(np.prod(shape)), **{f"d{k}": dims[k] for k in range(4)}, **{f"s{k}": steps[k] for k in range(4)}}
        return HlsCall("transpose", "hetero_movement.h", cfg)


    def resources(self, node, graph, family="xc7"):
        """:func:`hetero.hw.lanes.movement_resources` of the permutation (a wire, or a Regroup)."""
        from hetero.hw.lanes import movement_resources

        return movement_resources(graph, node, self._source(node, graph), family)

register(Transpose())
