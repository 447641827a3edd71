"""Identity, Dropout, Flatten and Reshape: no arithmetic. Identity and Dropout (inference mode)
vanish at import; Flatten and Reshape keep the batch axis and only rename the per-inference
shape (row-major order is kept, so the hardware is a wire)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from dataclasses import replace

from ..hw.common import Passthrough
from ..onnx_import import attr, describe
from .base import Cycles, Op, register



class Reshape(Op):
    name = "Reshape"
    onnx_ops = ("Identity", "Dropout", "Flatten", "Reshape")

    def import_onnx(self, node, ctx) -> None:
        src = node.input[0]
        shape = ctx.shape(src)
        size = int(np.prod(shape))
        if node.op_type in ("Identity", "Dropout"):
            ctx.alias(node.output[0], src)
            return
        if node.op_type == "Flatten":
            axis = attr(node, "axis", 1)
            axis = axis + len(shape) + 1 if axis < 0 else axis
            if axis != 1:
                raise UserError(f"{describe(node)}: Flatten with axis={axis} would merge the batch "
                                "axis; only axis=1 is supported")
            target: tuple[int, ...] = (size,)
        else:
            spec = [int(d) for d in ctx.const(node, 1, "shape")]
            rest = spec[1:]
            for i, d in enumerate(rest):
                if d == 0:
                    if i >= len(shape):
                        raise UserError(f"{describe(node)}: shape {spec} copies a missing dimension")
                    rest[i] = shape[i]
            if rest.count(-1) == 1:
                known = int(np.prod([d for d in rest if d != -1]))
                if known == 0 or size % known:
                    raise UserError(f"{describe(node)}: cannot reshape {list(shape)} to {spec}")
                rest[rest.index(-1)] = size // known
            if int(np.prod(rest)) != size or any(d <= 0 for d in rest):
                raise UserError(f"{describe(node)}: reshape of {list(shape)} to {spec} moves data "
                                "across the batch axis; not supported")
            target = tuple(rest)
        if target == shape:
            ctx.alias(node.output[0], src)
        else:
            ctx.add(node, self.name, [src], [node.output[0]], [target])

    def assign_types(self, node, inputs, outputs, cfg):
        return node, [replace(outputs[0], dtype=inputs[0].dtype)]

    def reference(self, node, graph, inputs):
        shape = graph.tensors[node.outputs[0]].shape
        return [inputs[0].reshape((inputs[0].shape[0],) + shape)]

    def hardware(self, node, graph):
        t = graph.tensors[node.inputs[0]]
        return Passthrough(t.dtype, t.size)

    def cycles(self, node, graph):
        return Cycles(0, 1)


register(Reshape())
