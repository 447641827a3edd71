"""Concat of computed tensors along a per-inference axis (``attrs["axis"]``, ONNX axis minus
one; the batch axis is refused, and so are constant inputs).

Typed: inputs of one type (FixedType, scale and zero point all equal) pass their raw values and
type through; otherwise each input is converted exactly to the config's ``result`` type
(:func:`hetero.ops.add.to_type`: a shift for plain fixed point, an integer requantization for a
model scale) and the output has that type.

Hardware (:class:`~hetero.hw.lanes.LaneJoin`, ports ``i0``, ``i1``, ... in node input order):
along the lanes only: the channels of an image (lanes of ``i0``, then ``i1``, ...; the first
per-inference axis of a channels-first tensor, the last of a channels-last one, as
:func:`hetero.hw.stream.tensor_layouts` lays them out) or the one axis of a vector (1-beat
tensors); a beat leaves when every input offers one (the top level adds
the FIFOs that balance the branches), each lane converted as the reference does, one register
stage: latency and interval ``beats``. Other axes are refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hetero.errors import UserError
from hetero.ops.onnx_context import attr, describe
from hetero.hw.lanes import LaneJoin, stream_cycles
from hetero.hw.fixed_hw import requantize as hw_requantize
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_expr
from hetero.hw.stream import tensor_layouts
from hetero.ir.quant import requant_to_fixed
from hetero.ops.add import to_type
from hetero.ops.base import Op, register
from hetero.ops.reshape import inference_axis, mark_integer, pass_type


class Concat(Op):
    name = "Concat"
    onnx_ops = ("Concat",)
    moves_values = True
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

    def hardware(self, node, graph):
        ts = [graph.tensors[i] for i in node.inputs]
        t_out = graph.tensors[node.outputs[0]]
        layouts = tensor_layouts(graph)
        lays = [layouts[i] for i in node.inputs]
        out = layouts[node.outputs[0]]
        rank = len(t_out.shape)
        lane_axis = rank - 1 if rank > 1 and out.channels_last else 0
        if any(lay.channels_last != out.channels_last for lay in lays):
            raise UserError(f"{node.source}: inputs laid out channels-first and channels-last "
                            f"{[lay.channels_last for lay in lays]}; hardware concatenates "
                            "tensors of one layout")
        if node.attrs["axis"] != lane_axis or len({lay.beats for lay in lays}) != 1:
            raise UserError(f"{node.source}: hardware concatenates along the channels (stream "
                            f"lanes, axis {lane_axis + 1}) only, not axis {node.attrs['axis'] + 1}")
        convert = node.attrs.get("convert")
        fns = [_converter(t, t_out.dtype) if convert else (lambda x: x) for t in ts]
        where = [(j, k) for j, lay in enumerate(lays) for k in range(lay.lanes)]
        return LaneJoin([shape_of(t.dtype) for t in ts], [lay.lanes for lay in lays],
                        shape_of(t_out.dtype), len(where),
                        lambda ps, k: fns[where[k][0]](ps[where[k][0]][where[k][1]]))

    def cycles(self, node, graph):
        return stream_cycles(tensor_layouts(graph)[node.outputs[0]].beats)

    def hls(self, node, graph):
        """hetero_elementwise.h ``concat2``: two inputs, each kept or converted as the reference's
        :func:`~hetero.ops.add.to_type` does."""
        from hetero.hw.hls_binding import HlsCall, int_array, no_requant, requant_config

        if len(node.inputs) != 2:
            return None
        ts = [graph.tensors[i] for i in node.inputs]
        t_out = graph.tensors[node.outputs[0]]
        axis = node.attrs["axis"]
        cfg = {"outer": int(np.prod(t_out.shape[:axis], dtype=np.int64))}
        nested, arrays = {}, []
        for j, t in enumerate(ts):
            cfg[f"size{j}"] = int(np.prod(t.shape[axis:], dtype=np.int64))
            p, mult = no_requant()[0], int_array([1])
            p.update(mode=0, frac=0, in_zero=0)
            if node.attrs.get("convert"):
                if t.scale is None and not t.zero_point:
                    p.update(mode=1, frac=t.dtype.frac_bits)
                else:
                    rq = requant_to_fixed(t.real_scale / t_out.dtype.lsb, 0.0, t_out.dtype, in_bits=t.dtype.width + 1)
                    p, rq_arrays = requant_config(rq)
                    p.update(mode=2, frac=0, in_zero=t.zero_point)
                    mult = rq_arrays[0][1]
            nested[f"p{j}"] = p
            arrays.append((f"mult{j}", mult))
        return HlsCall("concat2", "hetero_elementwise.h", cfg, nested=nested, arrays=tuple(arrays))


def _converter(t, t_out):
    """:func:`~hetero.ops.add.to_type` as logic on one lane."""
    if t.scale is None and not t.zero_point:
        return lambda x: hw_requantize(x, t.dtype.frac_bits, t_out)
    rq = requant_to_fixed(t.real_scale / t_out.lsb, 0.0, t_out, in_bits=t.dtype.width + 1)
    return lambda x: requant_expr(x - t.zero_point, rq)


register(Concat())
