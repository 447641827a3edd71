"""Transpose: a permutation of the per-inference axes (``perm[0]`` must be 0: the batch axis
stays first). ``attrs["perm"]`` is the per-inference permutation (ONNX perm minus one, batch
dropped); an identity permutation vanishes at import. Typed: raw values, type, scale and zero
point pass through. No hardware yet."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..onnx_import import attr, describe
from .base import Op, register
from .reshape import mark_integer, pass_type


class Transpose(Op):
    name = "Transpose"
    onnx_ops = ("Transpose",)

    def import_onnx(self, node, ctx) -> None:
        src = node.input[0]
        shape = ctx.shape(src)
        full = len(shape) + 1
        perm = attr(node, "perm")
        perm = list(range(full))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(full)):
            raise UserError(f"{describe(node)}: perm {perm} is not a permutation of the {full} axes")
        if perm[0] != 0:
            raise UserError(f"{describe(node)}: perm {perm} moves the batch axis; only permutations "
                            "that keep axis 0 first are supported")
        inner = tuple(p - 1 for p in perm[1:])
        if inner == tuple(range(len(shape))):
            ctx.alias(node.output[0], src)
            return
        ctx.add(node, self.name, [src], [node.output[0]], [tuple(shape[p] for p in inner)],
                attrs={"perm": inner})
        mark_integer(ctx, node.output[0], src)

    def assign_types(self, node, inputs, outputs, cfg):
        return node, [pass_type(outputs[0], inputs[0])]

    def reference(self, node, graph, inputs):
        perm = node.attrs["perm"]
        return [np.transpose(inputs[0], (0,) + tuple(p + 1 for p in perm))]


register(Transpose())
