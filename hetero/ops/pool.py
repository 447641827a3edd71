"""Pooling: ONNX ``MaxPool`` / ``GlobalMaxPool`` (op ``MaxPool``) and ``AveragePool`` /
``GlobalAveragePool`` (op ``AveragePool``), 1D and 2D (any number of spatial axes in the
reference), channels-first or channels-last (the QONNX ``channels_last`` domains: the standard
op on a transposed input, same attributes). A global pool is a pool whose kernel is the whole
spatial extent (``attrs["global"]``); its output keeps the spatial axes with size 1.

Geometry as ONNX and onnxruntime define it: ``kernel_shape``, ``strides``, ``pads`` or
``auto_pad``, ``dilations``, ``ceil_mode`` (a window may then run past the end padding, but may
not start in it; the cells past the padding never count). ``storage_order`` only concerns the
optional indices output, which is refused.

Float reference: the ONNX definition in float64; AveragePool divides each window's sum by the
number of cells it covers: input cells only (``count_include_pad=0``) or input and pad cells
(``count_include_pad=1``).

Typed reference:

* MaxPool passes raw values through: the output has the input's type, scale and zero point;
  padding is the type's minimum.
* AveragePool sums ``raw - zero_point`` over each window exactly (padding adds 0), then one
  :class:`~hetero.quant.Requant` onto the config's ``result`` type with ratio
  ``in.real_scale / (count * out_lsb)``; where the count varies by position
  (``count_include_pad=0`` next to the padding, ceil mode) the multiplier is an array over the
  output positions (``(1, *out)`` channels-first, ``(*out, 1)`` channels-last).

Hardware: not yet (issue 4).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import UserError
from ..fixed import type_for_range
from ..ir import Node
from ..onnx_import import CHANNELS_LAST_DOMAINS, attr, describe
from ..quant import requant_to_fixed
from .base import Op, register
from .conv import from_channels_first, geometry, join_shape, spatial_split, to_channels_first, windows
from .reshape import mark_integer, pass_type


class _Pool(Op):
    hardware_note = "streaming pooling: issue 4"

    # -- import -------------------------------------------------------------------------------
    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        channels_last = node.domain in CHANNELS_LAST_DOMAINS
        c, sizes = spatial_split(node, ctx.shape(x), channels_last)
        n = len(sizes)
        if len(node.output) > 1 and node.output[1]:
            raise UserError(f"{describe(node)}: the Indices output is not supported")
        is_global = node.op_type.startswith("Global")
        if is_global:
            kernel = tuple(sizes)
            geo = {"strides": (1,) * n, "dilations": (1,) * n, "pads": (0,) * (2 * n),
                   "out": (1,) * n, "extra": (0,) * n}
            ceil_mode = False
        else:
            given = attr(node, "kernel_shape", None)
            if given is None or len(given) != n:
                raise UserError(f"{describe(node)}: kernel_shape must give {n} sizes (one per "
                                f"spatial axis), got {given}")
            kernel = tuple(int(k) for k in given)
            ceil_mode = bool(attr(node, "ceil_mode", 0))
            geo = geometry(node, sizes, kernel, ceil_mode)
        if min(geo["out"]) < 1:
            raise UserError(f"{describe(node)}: empty output (spatial sizes {list(geo['out'])})")
        attrs = {"channels_last": channels_last, "global": is_global, "kernel_shape": kernel,
                 "strides": geo["strides"], "dilations": geo["dilations"], "pads": geo["pads"],
                 "extra": geo["extra"], "ceil_mode": ceil_mode, "channels": c,
                 "in_size": tuple(sizes), "out_size": geo["out"]}
        attrs.update(self.extra_attrs(node))
        ctx.add(node, self.name, [x], [node.output[0]], [join_shape(c, geo["out"], channels_last)],
                attrs=attrs)
        if self.name == "MaxPool":
            mark_integer(ctx, node.output[0], x)  # the max of ONNX integers is one of them

    def extra_attrs(self, node) -> dict:
        return {}

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _windows(node: Node, x: np.ndarray, fill) -> np.ndarray:
        """[N, C, *out, *kernel] windows of a batch in the node's layout."""
        a = node.attrs
        return windows(to_channels_first(x, a["channels_last"]), a["kernel_shape"], a["strides"],
                       a["dilations"], a["pads"], a["extra"], fill)

    @staticmethod
    def _kernel_axes(node: Node) -> tuple[int, ...]:
        n = len(node.attrs["kernel_shape"])
        return tuple(range(2 + n, 2 + 2 * n))


class MaxPool(_Pool):
    name = "MaxPool"
    onnx_ops = ("MaxPool", "GlobalMaxPool")
    layer_types = ("MaxPool", "GlobalMaxPool", "MaxPooling1D", "MaxPooling2D",
                   "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Pooling1D", "Pooling2D")

    def assign_types(self, node, inputs, outputs, cfg):
        t_in = inputs[0]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        return node, [pass_type(outputs[0], t_in)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            fill = -np.inf
            x = np.asarray(x, dtype=np.float64)
        else:
            fill = t_in.dtype.min_raw
            x = np.asarray(x).astype(np.int64, copy=False)
        y = self._windows(node, x, fill).max(axis=self._kernel_axes(node))
        return [from_channels_first(y, node.attrs["channels_last"])]


class AveragePool(_Pool):
    name = "AveragePool"
    onnx_ops = ("AveragePool", "GlobalAveragePool")
    layer_types = ("AveragePool", "GlobalAveragePool", "AveragePooling1D", "AveragePooling2D",
                   "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Pooling1D", "Pooling2D")

    def extra_attrs(self, node) -> dict:
        return {"count_include_pad": bool(attr(node, "count_include_pad", 0))}

    def counts(self, node: Node) -> np.ndarray:
        """How many cells each output position divides by, shaped like the output's spatial
        axes (int64)."""
        a = node.attrs
        sizes, pads, extra = a["in_size"], a["pads"], a["extra"]
        n = len(sizes)
        mask = np.ones((1, 1) + tuple(sizes), dtype=np.int64)
        if a["count_include_pad"]:  # pad cells count; ceil-mode cells past the padding do not
            mask = np.pad(mask, [(0, 0), (0, 0)] + [(pads[k], pads[n + k]) for k in range(n)],
                          constant_values=1)
            pads = (0,) * (2 * n)
        w = windows(mask, a["kernel_shape"], a["strides"], a["dilations"], pads, extra, 0)
        return w.sum(axis=self._kernel_axes(node))[0, 0]

    def _per_position(self, node: Node, v: np.ndarray) -> np.ndarray:
        """Per-output-position values shaped to broadcast against the per-inference output."""
        v = np.asarray(v)
        if v.size and np.all(v == v.reshape(-1)[0]):
            return v.reshape(-1)[0]
        return v[..., None] if node.attrs["channels_last"] else v[None]

    def assign_types(self, node, inputs, outputs, cfg):
        t_in = inputs[0]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        t_out = cfg.type_of("result")
        counts = self.counts(node)
        if counts.min() < 1:
            raise UserError(f"{node.source}: a window covers no input cell")
        amax = max(abs(t_in.dtype.min_raw - t_in.zero_point), abs(t_in.dtype.max_raw - t_in.zero_point))
        bound = amax * int(np.prod(node.attrs["kernel_shape"]))
        t_sum = type_for_range(-bound, bound, t_in.dtype.frac_bits)
        if t_sum.width > 62:
            raise UserError(f"{node.source}: the exact window sum needs {t_sum.width} bits")
        ratio = t_in.real_scale / (counts.astype(np.float64) * t_out.lsb)
        rq = requant_to_fixed(self._per_position(node, ratio), 0.0, t_out, in_bits=t_sum.width)
        node = node.evolve(attrs={"requant": rq}, types={"sum": t_sum})
        return node, [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        cl = node.attrs["channels_last"]
        axes = self._kernel_axes(node)
        if t_in.dtype is None:
            s = self._windows(node, np.asarray(x, dtype=np.float64), 0.0).sum(axis=axes)
            return [from_channels_first(s / self.counts(node), cl)]
        centred = np.asarray(x).astype(np.int64) - t_in.zero_point
        s = from_channels_first(self._windows(node, centred, 0).sum(axis=axes), cl)
        return [node.attrs["requant"](s)]


register(MaxPool())
register(AveragePool())
