"""Add of a constant (a bias). After a Dense it is folded into the Dense's bias by the
``fuse_bias_add`` pass; on its own it runs in the reference but has no hardware yet."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import UserError
from ..fixed import quantize, requantize
from ..onnx_import import describe
from .base import Op, register


class Add(Op):
    name = "Add"
    onnx_ops = ("Add",)
    layer_types = ("Add", "Merge")

    def import_onnx(self, node, ctx) -> None:
        a, b = node.input[0], node.input[1]
        if ctx.is_const(a) and not ctx.is_const(b):
            a, b = b, a
        if not ctx.is_const(b):
            raise UserError(f"{describe(node)}: adding two computed tensors (residual Add) is not "
                            "supported yet; only adding a constant")
        shape = ctx.shape(a)
        const = np.asarray(ctx.constants[b], dtype=np.float64)
        while const.ndim > len(shape) and const.shape[0] == 1:
            const = const[0]
        try:
            const = np.broadcast_to(const, shape).copy()
        except ValueError:
            raise UserError(f"{describe(node)}: constant of shape {list(ctx.constants[b].shape)} does "
                            f"not broadcast to the per-inference shape {list(shape)}") from None
        ctx.add(node, self.name, [a], [node.output[0]], [shape], params={"B": const})

    def assign_types(self, node, inputs, outputs, cfg):
        t_in, t_b, t_out = inputs[0].dtype, cfg.type_of("bias"), cfg.type_of("result")
        node = node.evolve(params={"B": quantize(node.params["B"], t_b)}, types={"bias": t_b})
        return node, [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        t_in = graph.tensors[node.inputs[0]].dtype
        if t_in is None:
            return [inputs[0] + node.params["B"]]
        t_b, t_out = node.types["bias"], graph.tensors[node.outputs[0]].dtype
        frac = max(t_in.frac_bits, t_b.frac_bits)
        total = (inputs[0] << (frac - t_in.frac_bits)) + (node.params["B"] << (frac - t_b.frac_bits))
        return [requantize(total, frac, t_out)]


register(Add())
