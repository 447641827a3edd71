"""Elementwise ``y = x * a + b`` with constant ``a`` and ``b``: BatchNormalization (inference),
and Mul, Div and Sub by a constant.

After a dense or convolution layer it is folded into that layer (the ``fuse_epilogues`` pass):
into the float weights and bias, or, where the model quantized the weights, into the layer's
per-channel requantization. On its own, typed: ``(raw - zero_point) * a + b`` as one exact integer
requantization onto the config's ``result`` type (``a`` becomes an integer multiplier per
element).

Hardware (on its own): one requantization per lane (:func:`~hetero.hw.requant_hw.requant_unit`:
comparators for outputs of at most 16 levels, else a constant multiplier), one register stage.
The constants must be per channel (= per lane); ones that vary along spatial axes are refused.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hetero.errors import UserError
from hetero.hw.lanes import LaneMap, centred_range, lane_requants, stream_cycles, stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_unit
from hetero.ops.onnx_context import attr, describe
from hetero.ir.quant import requant_to_fixed
from hetero.ops.base import Op, register
from hetero.ops.transpose import pending_channel_axis


def per_inference(const: np.ndarray, shape: tuple[int, ...], node) -> np.ndarray:
    """A constant of an elementwise op, without its batch axis, broadcastable to ``shape``."""
    c = np.asarray(const, dtype=np.float64)
    while c.ndim > len(shape):
        if c.shape[0] != 1:
            raise UserError(f"{describe(node)}: constant of shape {list(const.shape)} varies along "
                            "the batch axis")
        c = c[0]
    try:
        np.broadcast_to(c, shape)
    except ValueError:
        raise UserError(f"{describe(node)}: constant of shape {list(np.shape(const))} does not "
                        f"broadcast to the per-inference shape {list(shape)}") from None
    return c


class ScaleShift(Op):
    name = "ScaleShift"
    onnx_ops = ("BatchNormalization", "Mul", "Div", "Sub")
    layer_types = ("BatchNormalization", "ScaleShift")

    def affine(self, node):
        return node.params["a"], node.params["b"]

    def host_float(self, node) -> bool:
        return True

    def import_onnx(self, node, ctx) -> None:
        if node.op_type == "BatchNormalization":
            x = node.input[0]
            shape = ctx.shape(x)
            if not shape:
                raise UserError(f"{describe(node)}: needs a channel axis")
            gamma, beta, mean, var = (np.asarray(ctx.const(node, k, what), dtype=np.float64)
                                      for k, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
            eps = float(attr(node, "epsilon", 1e-5))
            if attr(node, "training_mode", 0):
                raise UserError(f"{describe(node)}: training mode is not supported; export in eval mode")
            if len({np.shape(v) for v in (gamma, beta, mean, var)}) != 1 or np.ndim(var) != 1:
                raise UserError(f"{describe(node)}: scale, bias, mean and variance must be vectors of "
                                f"one size, got shapes {[list(np.shape(v)) for v in (gamma, beta, mean, var)]}")
            if not np.isfinite(eps) or not (var + eps > 0).all():
                raise UserError(f"{describe(node)}: variance + epsilon must be positive, got "
                                f"{float(np.min(var + eps)):g} (onnxruntime computes NaN): refused")
            a = gamma / np.sqrt(var + eps)
            b = beta - mean * a
            # channels: per-inference axis 0 (ONNX axis 1), or, after a Transpose that moves the
            # batch axis, the axis of the untransposed layout they lie on
            through = pending_channel_axis(ctx, node, x, a.size)
            axis = 0 if through is None else through[0]
            if {np.shape(v) for v in (gamma, beta, mean, var)} != {(shape[axis],)}:
                raise UserError(f"{describe(node)}: scale, bias, mean and variance must be vectors of "
                                f"the {shape[axis]} channels, got shapes "
                                f"{[list(np.shape(v)) for v in (gamma, beta, mean, var)]}")
            cshape = [1] * len(shape)
            cshape[axis] = shape[axis]
            made = ctx.add(node, self.name, [x], [node.output[0]], [shape],
                           params={"a": a.reshape(cshape), "b": b.reshape(cshape)})
            if through is not None:
                through[1].reaxed.add(made.name)
            return
        x, c = node.input[0], node.input[1]
        if not ctx.is_const(x) and not ctx.is_const(c) and node.op_type in ("Sub", "Mul"):
            from hetero.ops.add import import_two_tensors  # of two computed tensors: elementwise ops

            return import_two_tensors(node, ctx)
        if node.op_type == "Mul" and ctx.is_const(x) and not ctx.is_const(c):
            x, c = c, x
        if not ctx.is_const(c) or ctx.is_const(x):
            raise UserError(f"{describe(node)}: {node.op_type} of two computed tensors is not supported "
                            "(only by a constant)")
        if node.op_type == "Sub" and ctx.is_const(node.input[0]):
            raise UserError(f"{describe(node)}: constant minus tensor is not supported")
        shape = ctx.shape(x)
        k = per_inference(ctx.constants[c], shape, node)
        if node.op_type == "Mul":
            a, b = k, np.zeros(())
        elif node.op_type == "Div":
            if np.any(k == 0):
                raise UserError(f"{describe(node)}: division by zero")
            a, b = 1.0 / k, np.zeros(())
        else:
            a, b = np.ones(()), -k
        ctx.add(node, self.name, [x], [node.output[0]], [shape], params={"a": np.asarray(a), "b": np.asarray(b)},
                attrs={"divide": node.op_type == "Div"})

    def assign_types(self, node, inputs, outputs, cfg):
        t_in, t_out = inputs[0], cfg.type_of("result")
        shape = t_in.shape
        a = np.broadcast_to(node.params["a"], shape) if node.params["a"].ndim else node.params["a"]
        rq = requant_to_fixed(np.asarray(a) * t_in.real_scale / t_out.lsb,
                              np.asarray(node.params["b"]) / t_out.lsb, t_out, in_bits=t_in.dtype.width + 1)
        return node.evolve(attrs={"requant": rq}), [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            if node.attrs.get("divide"):  # as ONNX computes it (x / k, not x * (1/k))
                return [x / (1.0 / node.params["a"]) + node.params["b"]]
            return [x * node.params["a"] + node.params["b"]]
        return [node.attrs["requant"](x.astype(np.int64) - t_in.zero_point)]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        layout = stream_layout(graph, node.inputs[0])
        rqs = lane_requants(node.attrs["requant"], t_in.shape, layout, node)
        lo, hi, z = *centred_range(t_in), t_in.zero_point
        return LaneMap(shape_of(t_in.dtype), shape_of(t_out.dtype), layout.lanes,
                       lambda x, k: requant_unit(x - z if z else x, rqs[k], 0, lo, hi))

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_elementwise.h ``requant_map``: the reference's requantization per element."""
        from hetero.hw.hls_binding import HlsCall, requant_config

        t = graph.tensors[node.inputs[0]]
        if t.dtype is None:
            return None
        rq, arrays = requant_config(node.attrs["requant"], shape=t.shape)
        return HlsCall("requant_map", "hetero_elementwise.h",
                       {"n": t.size, "zero_point": t.zero_point, "bipolar": False}, nested={"rq": rq},
                       arrays=arrays)


register(ScaleShift())
