"""Identity, Dropout, Flatten, Reshape, Squeeze and Unsqueeze: no arithmetic. Identity and
Dropout (inference mode; a constant ``training_mode`` true with a nonzero ratio is refused)
vanish at import; the others keep the batch axis and only rename the per-inference shape
(row-major order is kept, so the hardware is a wire).

* Squeeze: ``axes`` as an attribute (opset < 13) or a constant input (opset >= 13); without axes,
  every per-inference axis of size 1 goes (the batch axis always stays, whatever its size).
* Unsqueeze: ``axes`` as an attribute or a constant input; inserting before the batch axis is
  refused.
* Flatten with ``axis`` k >= 1 gives ``[N * d1 * ... * d(k-1), dk * ...]``: that keeps the batch
  axis only when ``d1 * ... * d(k-1) == 1`` (always so for k = 1); otherwise it is refused.

Typed: raw values, type, scale and zero point pass through. Hardware
(:func:`~hetero.hw.lanes.movement_hardware`): a wire where every element keeps its beat and
lane (a vector to a vector, ``(C, H, W)`` to ``(C, H*W)``); otherwise the tensor is collected and
sent in the new beats (:class:`~hetero.hw.lanes.Regroup`): an image to a vector is one beat
whose lanes follow the IR's flat order (channels-first ``c*H*W + p``, channels-last ``p*C + c``),
a vector to an image the reverse; latency and interval ``in_beats + out_beats - 1``. This module also holds the small
helpers the other data-movement ops share (:func:`pass_type`, :func:`inference_axis`,
:func:`onnx_opset`, :func:`mark_integer`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hetero.errors import UserError
from hetero.hw.lanes import movement_cycles, movement_hardware
from hetero.ir.graph import Tensor
from hetero.ops.onnx_context import attr, describe
from hetero.ops.base import Op, register


def pass_type(out: Tensor, t: Tensor) -> Tensor:
    """``out`` typed like ``t``: same raw values, type, scale and zero point (data movement)."""
    return replace(out, dtype=t.dtype, scale=t.scale, zero_point=t.zero_point, integer=t.integer)


def onnx_opset(ctx) -> int:
    """The model's default-domain opset version (13 when the model does not say)."""
    for o in getattr(ctx, "opsets", None) or []:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 13


def inference_axis(node, axis: int, rank: int, what: str = "axis") -> int:
    """The per-inference axis of the ONNX ``axis`` of a tensor whose per-inference rank is
    ``rank`` (ONNX rank ``rank + 1``); the batch axis and out-of-range axes raise UserError."""
    full = rank + 1
    a = int(axis)
    if not -full <= a < full:
        raise UserError(f"{describe(node)}: {what} {a} out of range for a rank-{full} tensor")
    a = a + full if a < 0 else a
    if a == 0:
        raise UserError(f"{describe(node)}: {what} {int(axis)} is the batch axis; only per-inference "
                        "axes (1 and up) are supported")
    return a - 1


def axes_input(node, ctx, index: int, what: str = "axes") -> list[int] | None:
    """Integer list from the attribute ``what`` (old opsets) or the constant input ``index``
    (new opsets); None when neither is given."""
    value = attr(node, what)
    if value is not None:
        return [int(v) for v in value]
    if len(node.input) > index and node.input[index]:
        return [int(v) for v in np.asarray(ctx.const(node, index, what)).reshape(-1)]
    return None


def mark_integer(ctx, out: str, *inputs: str) -> None:
    """An output of data movement holds ONNX integers when all its inputs do."""
    if inputs and all(ctx.resolve(i) in ctx.integer for i in inputs):
        ctx.integer.add(out)


class Reshape(Op):
    name = "Reshape"
    onnx_ops = ("Identity", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze")
    host_layout = True
    moves_values = True

    def host_float(self, node) -> bool:
        return True

    def import_onnx(self, node, ctx) -> None:
        src = node.input[0]
        shape = ctx.shape(src)
        size = int(np.prod(shape))
        if node.op_type in ("Identity", "Dropout"):
            if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
                training = bool(np.asarray(ctx.const(node, 2, "training_mode")).reshape(-1)[0])
                ratio = 0.5
                if len(node.input) > 1 and node.input[1]:
                    ratio = float(np.asarray(ctx.const(node, 1, "ratio")).reshape(-1)[0])
                if training and ratio != 0:
                    raise UserError(f"{describe(node)}: training mode (random masks) is not supported; "
                                    "export the model for inference")
            ctx.alias(node.output[0], src)
            return
        if node.op_type == "Flatten":
            axis = attr(node, "axis", 1)
            full = len(shape) + 1
            if not -full <= axis <= full:
                raise UserError(f"{describe(node)}: axis {axis} out of range for a rank-{full} tensor")
            axis = axis + full if axis < 0 else axis
            lead = int(np.prod(shape[:max(axis - 1, 0)]))
            if axis == 0 and ctx.batch_one:
                axis = 1  # the model runs one inference at a time: [1, size] either way
            if axis == 0 or lead != 1:
                raise UserError(f"{describe(node)}: Flatten with axis={axis} would merge the batch "
                                "axis into its first output dimension; only axis=1 (or an axis after "
                                "dimensions of size 1) is supported")
            target: tuple[int, ...] = (size,)
        elif node.op_type == "Squeeze":
            axes = axes_input(node, ctx, 1)
            if axes is None:
                target = tuple(d for d in shape if d != 1)
            else:
                drop = {inference_axis(node, a, len(shape), "axes entry") for a in axes}
                bad = [a for a in sorted(drop) if shape[a] != 1]
                if bad:
                    raise UserError(f"{describe(node)}: cannot squeeze axis {bad[0] + 1} of size "
                                    f"{shape[bad[0]]} (per-inference shape {list(shape)})")
                target = tuple(d for i, d in enumerate(shape) if i not in drop)
            if not target:
                raise UserError(f"{describe(node)}: squeezing every per-inference axis of "
                                f"{list(shape)} leaves a scalar per inference; not supported")
        elif node.op_type == "Unsqueeze":
            axes = axes_input(node, ctx, 1)
            if axes is None:
                raise UserError(f"{describe(node)}: missing axes")
            out_rank = len(shape) + len(axes)
            new = sorted({inference_axis(node, a, out_rank, "axes entry") for a in axes})
            if len(new) != len(axes):
                raise UserError(f"{describe(node)}: repeated axes {axes}")
            dims = iter(shape)
            target = tuple(1 if i in new else next(dims) for i in range(out_rank))
        else:
            spec = ctx.const(node, 1, "shape")
            if np.ndim(spec) != 1 or np.asarray(spec).dtype.kind not in "iu":
                raise UserError(f"{describe(node)}: shape must be a vector of integers, got "
                                f"{np.asarray(spec).dtype.name} of shape {list(np.shape(spec))}")
            spec = [int(d) for d in spec]
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
            mark_integer(ctx, node.output[0], src)

    def assign_types(self, node, inputs, outputs, cfg):
        return node, [pass_type(outputs[0], inputs[0])]

    def reference(self, node, graph, inputs):
        shape = graph.tensors[node.outputs[0]].shape
        return [inputs[0].reshape((inputs[0].shape[0],) + shape)]

    def hardware(self, node, graph):
        return movement_hardware(graph, node, np.arange(graph.tensors[node.inputs[0]].size))

    def cycles(self, node, graph):
        return movement_cycles(graph, node, np.arange(graph.tensors[node.inputs[0]].size))

    def hls(self, node, graph):
        """hetero_movement.h ``copy``: the bits pass unchanged."""
        from hetero.hw.hls_binding import HlsCall

        return HlsCall("copy", "hetero_movement.h", {"n": graph.tensors[node.inputs[0]].size})

    def resources(self, node, graph, family="xc7"):
        """:func:`hetero.hw.lanes.movement_resources` of the flat order (a wire, or a Regroup)."""
        from hetero.hw.lanes import movement_resources

        return movement_resources(graph, node, np.arange(graph.tensors[node.inputs[0]].size), family)

register(Reshape())
