"""Add, Sub and Mul.

* ``Add`` of a constant (a bias): params ``B``. After a Dense it is folded into the Dense's bias
  by the ``fuse_epilogues`` pass; on its own its hardware adds the bias per lane (one value per
  channel), one register stage.
* ``Add``, ``Sub`` and ``Mul`` of two computed tensors (a residual Add, a gate): no params, two
  inputs, ONNX (numpy) broadcasting between their per-inference shapes. Both inputs must have
  the same rank: with different ranks ONNX broadcasting would align the batch axis of one with
  a per-inference axis of the other. (Sub and Mul by a constant are ScaleShift's; ONNX ``Sub``
  and ``Mul`` reach :func:`import_two_tensors` through it.)

Typed, two computed tensors: the output type is the config's ``result``; the arithmetic is exact
on the centred integers ``a - za``, ``b - zb`` with one rounding (the output type's) at the end:

* Add/Sub: both inputs plain fixed point (no model scale): aligned by shifting to the larger
  number of fraction bits, then :func:`~hetero.ir.fixed.requantize`. Otherwise each input gets an
  integer multiplier of its real scale over the output LSB with a common shift
  (:func:`~hetero.ir.quant.requant_to_fixed` on both ratios at once):
  ``round_shift(a * ma + b * mb, shift)`` (exact whenever the ratios are powers of two).
* Mul: the integer product, with real scale ``sa * sb``, requantized the same way.

Hardware of two tensors (:class:`~hetero.hw.lanes.LaneJoin`): ports ``i0``, ``i1`` in node input
order, both streaming the same shape alike (no broadcasting); a beat is computed when both
inputs offer one (the top level adds the FIFOs that balance the two branches), one register
stage: latency and interval ``beats``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hetero.errors import UserError
from hetero.hw.lanes import LaneJoin, LaneMap, lane_values, stream_cycles, stream_layout
from hetero.hw.fixed_hw import requantize as hw_requantize
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_expr
from hetero.ir.fixed import FixedType, quantize, requantize
from hetero.ir.graph import Tensor
from hetero.ops.onnx_context import describe
from hetero.ir.quant import Requant, requant_to_fixed
from hetero.ops.base import Op, register

_MAX_BITS = 61  # headroom of exact int64 arithmetic (sums of two terms stay below 2**62)


def to_type(raw: np.ndarray, t: Tensor, t_out: FixedType) -> np.ndarray:
    """Raw values of the typed tensor ``t`` converted exactly to ``t_out`` (its rounding and
    overflow): a shift for plain fixed point, else an integer requantization of ``raw - zero``."""
    raw = np.asarray(raw, dtype=np.int64)
    if t.scale is None and not t.zero_point:
        return requantize(raw, t.dtype.frac_bits, t_out)
    rq = requant_to_fixed(t.real_scale / t_out.lsb, 0.0, t_out, in_bits=t.dtype.width + 1)
    return rq(raw - t.zero_point)


def _final(rq: Requant) -> Requant:
    """``rq`` with multiplier 1 and no offset: only the rounding shift and the overflow."""
    return replace(rq, mult=np.ones((), dtype=np.int64), add=np.zeros((), dtype=np.int64))


def import_two_tensors(node, ctx, op: str | None = None) -> None:
    """Import an ONNX Add, Sub or Mul whose two inputs are both computed tensors."""
    op = op or node.op_type
    a, b = node.input[0], node.input[1]
    if ctx.is_const(a) or ctx.is_const(b):
        raise UserError(f"{describe(node)}: {op} of a constant is not supported here; expected two "
                        "computed tensors")
    sa, sb = ctx.shape(a), ctx.shape(b)
    if len(sa) != len(sb):
        raise UserError(f"{describe(node)}: inputs of per-inference shapes {list(sa)} and {list(sb)} "
                        "have different ranks: broadcasting would mix the batch axis in; reshape "
                        "one of them first")
    try:
        shape = tuple(np.broadcast_shapes(sa, sb))
    except ValueError:
        raise UserError(f"{describe(node)}: shapes {list(sa)} and {list(sb)} do not broadcast") from None
    ctx.add(node, op, [a, b], [node.output[0]], [shape])


class TwoTensorOp(Op):
    """Elementwise arithmetic of two computed tensors (``Add`` without ``B``, ``Sub``, ``Mul``)."""

    def import_onnx(self, node, ctx) -> None:
        import_two_tensors(node, ctx, self.name)

    def assign_types(self, node, inputs, outputs, cfg):
        ta, tb = inputs
        if self.name == "Mul" and ta.dtype.width + tb.dtype.width + 2 > _MAX_BITS:
            raise UserError(f"{node.source}: inputs of {ta.dtype.width} and {tb.dtype.width} bits "
                            f"are too wide for an exact product; use at most {_MAX_BITS - 2} bits together")
        t_out = cfg.type_of("result")
        return node, [replace(outputs[0], dtype=t_out, scale=None, zero_point=0, integer=False)]

    def reference(self, node, graph, inputs):
        ta, tb = (graph.tensors[i] for i in node.inputs)
        a, b = inputs
        if ta.dtype is None or tb.dtype is None:
            if ta.dtype is not None or tb.dtype is not None:
                raise UserError(f"{node.source}: one input typed and one not")
            return [{"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[self.name](a, b)]
        t_out = graph.tensors[node.outputs[0]].dtype
        a = np.asarray(a, dtype=np.int64) - ta.zero_point
        b = np.asarray(b, dtype=np.int64) - tb.zero_point
        plain = ta.scale is None and tb.scale is None
        if self.name == "Mul":
            prod = a * b
            if plain:
                return [requantize(prod, ta.dtype.frac_bits + tb.dtype.frac_bits, t_out)]
            rq = requant_to_fixed(ta.real_scale * tb.real_scale / t_out.lsb, 0.0, t_out,
                                  in_bits=ta.dtype.width + tb.dtype.width + 2)
            return [rq(prod)]
        if self.name == "Sub":
            b = -b
        fa, fb = ta.dtype.frac_bits, tb.dtype.frac_bits
        f = max(fa, fb)
        if plain and max(ta.dtype.width + f - fa, tb.dtype.width + f - fb) + 1 < _MAX_BITS:
            return [requantize((a << (f - fa)) + (b << (f - fb)), f, t_out)]
        rq = requant_to_fixed(np.array([ta.real_scale, tb.real_scale]) / t_out.lsb, 0.0, t_out,
                              in_bits=max(ta.dtype.width, tb.dtype.width) + 2)
        return [_final(rq)(a * rq.mult[0] + b * rq.mult[1])]

    def hardware(self, node, graph):
        ta, tb = (graph.tensors[i] for i in node.inputs)
        t_out = graph.tensors[node.outputs[0]].dtype
        la, lb = (stream_layout(graph, i) for i in node.inputs)
        if ta.shape != tb.shape or la != lb:
            raise UserError(f"{node.source}: no hardware for broadcasting shapes {list(ta.shape)} and "
                            f"{list(tb.shape)}; both inputs must stream alike")
        fn = self.lane_function(ta, tb, t_out)
        return LaneJoin([shape_of(ta.dtype), shape_of(tb.dtype)], [la.lanes] * 2, shape_of(t_out),
                        la.lanes, lambda ps, k: fn(ps[0][k], ps[1][k]))

    def lane_function(self, ta: Tensor, tb: Tensor, t_out: FixedType):
        """The reference's arithmetic on one lane of each input, as logic."""
        za, zb = ta.zero_point, tb.zero_point
        plain = ta.scale is None and tb.scale is None
        fa, fb = ta.dtype.frac_bits, tb.dtype.frac_bits
        if self.name == "Mul":
            if plain:
                return lambda a, b: hw_requantize((a - za) * (b - zb), fa + fb, t_out)
            rq = requant_to_fixed(ta.real_scale * tb.real_scale / t_out.lsb, 0.0, t_out,
                                  in_bits=ta.dtype.width + tb.dtype.width + 2)
            return lambda a, b: requant_expr((a - za) * (b - zb), rq)
        sign = -1 if self.name == "Sub" else 1
        f = max(fa, fb)
        if plain and max(ta.dtype.width + f - fa, tb.dtype.width + f - fb) + 1 < _MAX_BITS:
            def aligned(a, b):
                x, y = (a - za) << (f - fa), (b - zb) << (f - fb)
                return hw_requantize(x - y if sign < 0 else x + y, f, t_out)

            return aligned
        rq = requant_to_fixed(np.array([ta.real_scale, tb.real_scale]) / t_out.lsb, 0.0, t_out,
                              in_bits=max(ta.dtype.width, tb.dtype.width) + 2)
        ma, mb = int(rq.mult[0]), sign * int(rq.mult[1])
        return lambda a, b: requant_expr((a - za) * ma + (b - zb) * mb, _final(rq))

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_elementwise.h ``add2`` (inputs of one shape and layout), as the reference
        computes: plain alignment, or one requantization of both."""
        from hetero.hw.hls_binding import HlsCall, int_array, no_requant, requant_config
        from hetero.hw.stream import tensor_layouts

        ta, tb = (graph.tensors[i] for i in node.inputs)
        t_out = graph.tensors[node.outputs[0]].dtype
        lays = tensor_layouts(graph)
        if ta.dtype is None or tb.dtype is None or ta.shape != tb.shape \
                or lays[node.inputs[0]] != lays[node.inputs[1]]:
            return None
        plain = ta.scale is None and tb.scale is None
        fa, fb = ta.dtype.frac_bits, tb.dtype.frac_bits
        f = max(fa, fb)
        cfg = {"n": ta.size, "op": ("Add", "Sub", "Mul").index(self.name), "zero0": ta.zero_point,
               "zero1": tb.zero_point, "shift0": f - fa, "shift1": f - fb, "sum_frac": f}
        rq, arrays = no_requant()
        mult = int_array([1, 1])
        if self.name == "Mul":
            cfg["sum_frac"] = fa + fb
            if not plain:
                rq, arrays = requant_config(requant_to_fixed(
                    ta.real_scale * tb.real_scale / t_out.lsb, 0.0, t_out, in_bits=ta.dtype.width + tb.dtype.width + 2))
                mult = arrays[0][1]
        elif not (plain and max(ta.dtype.width + f - fa, tb.dtype.width + f - fb) + 1 < _MAX_BITS):
            plain = False
            full = requant_to_fixed(np.array([ta.real_scale, tb.real_scale]) / t_out.lsb, 0.0, t_out,
                                    in_bits=max(ta.dtype.width, tb.dtype.width) + 2)
            rq, _ = requant_config(_final(full))
            mult = int_array(full.mult)
        cfg["plain"] = plain
        return HlsCall("add2", "hetero_elementwise.h", cfg, nested={"rq": rq}, arrays=(("mult", mult),))


class Add(TwoTensorOp):
    name = "Add"
    onnx_ops = ("Add",)
    layer_types = ("Add", "Merge")

    def affine(self, node):
        """``x + B`` where the node adds a constant (None: a sum of two computed tensors)."""
        return (np.ones(()), node.params["B"]) if "B" in node.params else None

    def host_float(self, node) -> bool:
        return "B" in node.params

    def import_onnx(self, node, ctx) -> None:
        a, b = node.input[0], node.input[1]
        if ctx.is_const(a) and not ctx.is_const(b):
            a, b = b, a
        if not ctx.is_const(b):
            import_two_tensors(node, ctx, self.name)
            return
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
        if "B" not in node.params:
            return super().assign_types(node, inputs, outputs, cfg)
        t_in, t_b, t_out = inputs[0].dtype, cfg.type_of("bias"), cfg.type_of("result")
        node = node.evolve(params={"B": quantize(node.params["B"], t_b)}, types={"bias": t_b})
        return node, [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        if "B" not in node.params:
            return super().reference(node, graph, inputs)
        t_in = graph.tensors[node.inputs[0]].dtype
        if t_in is None:
            return [inputs[0] + node.params["B"]]
        t_b, t_out = node.types["bias"], graph.tensors[node.outputs[0]].dtype
        frac = max(t_in.frac_bits, t_b.frac_bits)
        total = (inputs[0] << (frac - t_in.frac_bits)) + (node.params["B"] << (frac - t_b.frac_bits))
        return [requantize(total, frac, t_out)]

    def hardware(self, node, graph):
        if "B" not in node.params:
            return super().hardware(node, graph)
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]].dtype
        t_b = node.types["bias"]
        layout = stream_layout(graph, node.inputs[0])
        bias = lane_values(node.params["B"], t_in.shape, layout, node, "the bias")
        frac = max(t_in.dtype.frac_bits, t_b.frac_bits)
        fi, fb = frac - t_in.dtype.frac_bits, frac - t_b.frac_bits
        return LaneMap(shape_of(t_in.dtype), shape_of(t_out), layout.lanes,
                       lambda x, k: hw_requantize((x << fi) + (int(bias[k]) << fb), frac, t_out))

    def cycles(self, node, graph):
        if "B" not in node.params:
            return super().cycles(node, graph)
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_elementwise.h ``bias_add`` for a constant bias (one per element); two tensors:
        :meth:`TwoTensorOp.hls`."""
        if "B" not in node.params:
            return super().hls(node, graph)
        from hetero.hw.hls_binding import HlsCall, int_array

        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return None
        t_b = node.types["bias"]
        frac = max(t_in.dtype.frac_bits, t_b.frac_bits)
        b = np.asarray(node.params["B"])
        b = int_array(b if b.size == 1 else np.broadcast_to(b, t_in.shape))
        return HlsCall("bias_add", "hetero_elementwise.h",
                       {"n": t_in.size, "n_b": int(b.size), "x_shift": frac - t_in.dtype.frac_bits,
                        "b_shift": frac - t_b.frac_bits, "sum_frac": frac}, arrays=(("b", b),))


class Sub(TwoTensorOp):
    name = "Sub"
    layer_types = ("Merge",)


class Mul(TwoTensorOp):
    name = "Mul"
    layer_types = ("Merge",)

    def macs(self, node, graph) -> int:
        return graph.tensors[node.outputs[0]].size


register(Add())
register(Sub())
register(Mul())
