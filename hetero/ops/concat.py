"""Concat of computed tensors along a per-inference axis (``attrs["axis"]``, ONNX axis minus
one; the batch axis is refused, and so are constant inputs).

Typed: inputs of one type (FixedType, scale and zero point all equal) pass their raw values and
type through; otherwise each input is converted exactly to the config's ``result`` type
(:func:`hetero.ops.add.to_type`: a shift for plain fixed point, an integer requantization for a
model scale) and the output has that type. No hardware yet."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import UserError
from ..onnx_import import attr, describe
from .add import to_type
from .base import Op, register
from .reshape import inference_axis, mark_integer, pass_type


class Concat(Op):
    name = "Concat"
    onnx_ops = ("Concat",)
    layer_types = ("Concatenate",)

    def import_onnx(self, node, ctx) -> None:
        ins = [i for i in node.input if i]
        consts = [i for i in ins if ctx.is_const(i)]
        if consts:
            raise UserError(f"{describe(node)}: input '{consts[0]}' is a constant; only concatenating "
                            "computed tensors is supported")
        shapes = [ctx.shape(i) for i in ins]
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise UserError(f"{describe(node)}: inputs of different ranks {[list(s) for s in shapes]}")
        if attr(node, "axis") is None:
            raise UserError(f"{describe(node)}: missing the axis attribute")
        axis = inference_axis(node, attr(node, "axis"), len(shapes[0]))
        for s in shapes[1:]:
            if s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                raise UserError(f"{describe(node)}: per-inference shapes {[list(s) for s in shapes]} "
                                f"differ outside the concatenation axis {axis + 1}")
        if len(ins) == 1:
            ctx.alias(node.output[0], ins[0])
            return
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        ctx.add(node, self.name, ins, [node.output[0]], [tuple(out)], attrs={"axis": axis})
        mark_integer(ctx, node.output[0], *ins)

    def assign_types(self, node, inputs, outputs, cfg):
        first = inputs[0]
        if all((t.dtype, t.scale, t.zero_point, t.integer) == (first.dtype, first.scale, first.zero_point, first.integer)
               for t in inputs):
            return node.evolve(attrs={"convert": False}), [pass_type(outputs[0], first)]
        t_out = cfg.type_of("result")
        out = replace(outputs[0], dtype=t_out, scale=None, zero_point=0, integer=False)
        return node.evolve(attrs={"convert": True}), [out]

    def reference(self, node, graph, inputs):
        axis = node.attrs["axis"] + 1
        t_out = graph.tensors[node.outputs[0]]
        if t_out.dtype is None or not node.attrs.get("convert"):
            return [np.concatenate(inputs, axis=axis)]
        parts = [to_type(x, graph.tensors[name], t_out.dtype) for x, name in zip(inputs, node.inputs)]
        return [np.concatenate(parts, axis=axis)]


register(Concat())
