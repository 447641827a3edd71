"""Convolution: ONNX ``Conv`` in 1D and 2D (any number of spatial axes in the reference), with
strides, explicit pads or ``auto_pad``, dilations, groups (depthwise included) and an optional
bias; channels-first as standard ONNX, or channels-last for the QONNX domains
``qonnx.custom_op.channels_last`` / ``finn.custom_op.channels_last``.

Layouts. Per inference, a channels-first tensor is ``(C, L)`` or ``(C, H, W)``; a channels-last
one ``(L, C)`` or ``(H, W, C)``. QONNX defines its channels-last Conv as "transpose every input
to channels-first, run the standard Conv, transpose back", and that includes the weight: its
weights are laid out ``(O, kH, kW, I)`` (``OHWI``; the shipped hls4ml models have e.g. a
depthwise ``(3, 3, 3, 1)`` and a pointwise ``(16, 1, 1, 3)`` weight). Attributes mean the same
as in the standard op (``pads`` ``[H_begin, W_begin, H_end, W_end]``). At import the weights
are moved to ``OIHW`` whatever the domain, so ``params["W"]`` is always ``(O, I/group, *k)``.

Arithmetic: a :class:`~hetero.ops.mac.MacOp`. :meth:`Conv.linear` zero-pads, takes every
window with ``numpy.lib.stride_tricks.sliding_window_view`` and multiplies them by the weights
of each group in one batched matrix product. On int64 it is exact: in float64 (BLAS) while
``max|x| * max_o sum|W[o]|`` stays below 2**53, where every partial sum is an exact integer,
else in int64.

Hardware (1D and 2D): a :class:`~hetero.hw.window.WindowGenerator` (padding with the input's
zero point, i.e. 0 in the ``x - zero_point`` domain the reference computes in) feeding the MAC
unit of :meth:`~hetero.ops.mac.MacOp.mac_hardware`, which treats each window beat as one vector
of ``K_h*K_w*C_in`` lanes in ``(ky, kx, c)`` order and returns one output pixel of ``C_out``
lanes. Groups (depthwise included) make a grouped unit: each output channel multiplies only the
``K_h*K_w*C_in/group`` lanes of its group (:meth:`Conv.window_weights`, :meth:`Conv.window_lanes`),
so folding a depthwise layer steps over its taps, not over every channel's zeros. Cycles: :meth:`WindowGeometry.cycles
<hetero.hw.window.WindowGeometry.cycles>` with the MAC unit's own latency and interval.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hetero.errors import UserError
from hetero.hw.fixed_hw import shape_of
from hetero.hw.window import Chain, WindowGenerator, WindowGeometry, require_typed
from hetero.ir.graph import Graph, Node
from hetero.ops.onnx_context import CHANNELS_LAST_DOMAINS, attr, describe
from hetero.hw.cycles import Cycles
from hetero.ops.base import register
from hetero.ops.mac import MacOp

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# -- geometry shared with the pooling ops -----------------------------------------------------
def _ints(node, name: str, n: int, default: int) -> tuple[int, ...]:
    v = attr(node, name, None)
    if v is None:
        return (default,) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise UserError(f"{describe(node)}: {name} has {len(v)} values; expected {n} (one per "
                        "spatial axis)")
    return v


def spatial_split(node, shape: Sequence[int], channels_last: bool) -> tuple[int, tuple[int, ...]]:
    """(channels, spatial sizes) of a per-inference shape."""
    if len(shape) < 2:
        raise UserError(f"{describe(node)}: input has per-inference shape {list(shape)}; expected "
                        "channels and at least one spatial axis (rank 3 or 4 with the batch axis)")
    if channels_last:
        return int(shape[-1]), tuple(int(d) for d in shape[:-1])
    return int(shape[0]), tuple(int(d) for d in shape[1:])


def join_shape(channels: int, spatial: Sequence[int], channels_last: bool) -> tuple[int, ...]:
    return tuple(spatial) + (channels,) if channels_last else (channels,) + tuple(spatial)


def geometry(node, in_sizes: Sequence[int], kernel: Sequence[int], ceil_mode: bool = False) -> dict:
    """Strides, dilations, resolved pads and output sizes of a Conv or pooling node.

    Returns ``strides``, ``dilations``, ``pads`` (``begin... + end...`` as in ONNX, auto_pad
    resolved), ``out`` (output spatial sizes) and ``extra`` (cells past the end pad that a
    ``ceil_mode`` window reads: they never count, neither as data nor as padding).
    """
    n = len(in_sizes)
    strides = _ints(node, "strides", n, 1)
    dilations = _ints(node, "dilations", n, 1)
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations) or any(k < 1 for k in kernel):
        raise UserError(f"{describe(node)}: strides, dilations and kernel sizes must be positive")
    auto = attr(node, "auto_pad", "NOTSET")
    auto = (auto.decode() if isinstance(auto, bytes) else str(auto)) or "NOTSET"
    if auto not in AUTO_PADS:
        raise UserError(f"{describe(node)}: auto_pad '{auto}' not one of {', '.join(AUTO_PADS)}")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [math.ceil(i / s) for i, s in zip(in_sizes, strides)]
        total = [max(0, (o - 1) * s + sp - i) for o, s, sp, i in zip(out, strides, spans, in_sizes)]
        if auto == "SAME_UPPER":
            begin = [t // 2 for t in total]
        else:
            begin = [t - t // 2 for t in total]
        end = [t - b for t, b in zip(total, begin)]
    else:
        pads = (0,) * (2 * n) if auto == "VALID" else _ints(node, "pads", 2 * n, 0)
        if any(p < 0 for p in pads):
            raise UserError(f"{describe(node)}: negative pads {list(pads)} are not supported")
        begin, end = list(pads[:n]), list(pads[n:])
        out = []
        for i, b, e, sp, s in zip(in_sizes, begin, end, spans, strides):
            full = i + b + e - sp
            if full < 0:
                raise UserError(f"{describe(node)}: the kernel (extent {sp}) is larger than the "
                                f"padded input ({i + b + e})")
            o = (-(-full // s) if ceil_mode else full // s) + 1
            if ceil_mode and (o - 1) * s >= i + b:
                o -= 1  # a window may not start in the end padding (ONNX, onnxruntime, PyTorch)
            out.append(o)
    extra = [max(0, (o - 1) * s + sp - (i + b + e))
             for o, s, sp, i, b, e in zip(out, strides, spans, in_sizes, begin, end)]
    return {"strides": tuple(strides), "dilations": tuple(dilations),
            "pads": tuple(int(p) for p in list(begin) + list(end)), "out": tuple(int(o) for o in out),
            "extra": tuple(int(e) for e in extra)}


def windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
            pads: Sequence[int], extra: Sequence[int] = (), fill=0) -> np.ndarray:
    """Every window of a channels-first batch ``x`` [N, C, *spatial]: an array
    [N, C, *out, *kernel] (a view where no padding is needed). ``pads`` begin... + end...;
    ``extra`` more cells at each end (ceil mode); both filled with ``fill``."""
    n = len(kernel)
    extra = tuple(extra) or (0,) * n
    width = [(0, 0), (0, 0)] + [(pads[a], pads[n + a] + extra[a]) for a in range(n)]
    if any(p for w in width for p in w):
        x = np.pad(x, width, mode="constant", constant_values=fill)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    axes = tuple(range(2, 2 + n))
    v = sliding_window_view(x, spans, axis=axes)
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) \
        + tuple(slice(None, None, d) for d in dilations)
    return v[index]


def to_channels_first(x: np.ndarray, channels_last: bool) -> np.ndarray:
    """[N, *spatial, C] -> [N, C, *spatial] when ``channels_last``."""
    return np.moveaxis(x, -1, 1) if channels_last else x


def from_channels_first(y: np.ndarray, channels_last: bool) -> np.ndarray:
    return np.moveaxis(y, 1, -1) if channels_last else y


# -- the op ------------------------------------------------------------------------------------
class Conv(MacOp):
    name = "Conv"
    onnx_ops = ("Conv",)
    layer_types = ("Conv", "Conv1D", "Conv2D", "Convolution", "DepthwiseConv2D", "SeparableConv2D")
    weight_out_axis = 0

    # -- import -------------------------------------------------------------------------------
    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        channels_last = node.domain in CHANNELS_LAST_DOMAINS
        in_shape = ctx.shape(x)
        c_in, in_sizes = spatial_split(node, in_shape, channels_last)
        n = len(in_sizes)
        w_name = node.input[1] if len(node.input) > 1 else ""
        w = np.asarray(ctx.const(node, 1, "weight"), dtype=np.float64)
        if w.ndim != n + 2:
            raise UserError(f"{describe(node)}: weight shape {list(w.shape)} does not fit a "
                            f"{n}D convolution (expected rank {n + 2})")

        def transform(a: np.ndarray) -> np.ndarray:  # the model's weight layout -> OIHW
            return np.moveaxis(a, -1, 1) if channels_last else a

        w = transform(w)
        c_out, c_per_group = int(w.shape[0]), int(w.shape[1])
        kernel = tuple(int(k) for k in w.shape[2:])
        given = attr(node, "kernel_shape", None)
        if given is not None and tuple(int(k) for k in given) != kernel:
            raise UserError(f"{describe(node)}: kernel_shape {list(given)} does not match the "
                            f"weight shape {list(ctx.constants[w_name].shape)}")
        group = int(attr(node, "group", 1))
        if group < 1 or c_in % group or c_out % group or c_in // group != c_per_group:
            raise UserError(f"{describe(node)}: {c_in} input channels, group={group} and weight "
                            f"shape {list(ctx.constants[w_name].shape)} do not fit together")
        geo = geometry(node, in_sizes, kernel)
        if min(geo["out"]) < 1:
            raise UserError(f"{describe(node)}: empty output (spatial sizes {list(geo['out'])})")
        if len(node.input) > 2 and node.input[2]:
            b = np.asarray(ctx.const(node, 2, "bias"), dtype=np.float64).reshape(-1)
            if b.size != c_out:
                raise UserError(f"{describe(node)}: bias has {b.size} values for {c_out} output channels")
        else:
            b = np.zeros(c_out)
        params = {"W": np.ascontiguousarray(w), "b": b.copy()}
        ints = self.model_weights(ctx, w_name, w, transform, 0)
        if ints is not None:
            params.update(ints)
        attrs = {"channels_last": channels_last, "kernel_shape": kernel, "strides": geo["strides"],
                 "dilations": geo["dilations"], "pads": geo["pads"], "group": group,
                 "in_channels": c_in, "out_channels": c_out, "in_size": tuple(in_sizes),
                 "out_size": geo["out"]}
        out_shape = join_shape(c_out, geo["out"], channels_last)
        ctx.add(node, self.name, [x], [node.output[0]], [out_shape], params=params, attrs=attrs)

    # -- arithmetic ---------------------------------------------------------------------------
    def linear(self, node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        a = node.attrs
        cl = bool(a["channels_last"])
        xs = to_channels_first(np.asarray(x), cl)
        if xs.dtype.kind not in "iub":
            y = self._sums(node, xs.astype(np.float64, copy=False), np.asarray(w, dtype=np.float64))
        else:
            xs, w = xs.astype(np.int64, copy=False), np.asarray(w).astype(np.int64, copy=False)
            # every product and partial sum is an integer of magnitude at most
            # max|x| * max_o sum|w[o]|: below 2**53, float64 (BLAS, in any summation order) is
            # exact and much faster than numpy's int64 matmul; otherwise int64
            bound = int(np.abs(xs).max(initial=0)) * int(np.abs(w).reshape(len(w), -1).sum(axis=1).max(initial=0))
            if bound < 2 ** 53:
                y = np.rint(self._sums(node, xs.astype(np.float64), w.astype(np.float64))).astype(np.int64)
            else:
                y = self._sums(node, xs, w)
        return y if cl else np.moveaxis(y, -1, 1)

    @staticmethod
    def _sums(node: Node, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The convolution of a channels-first batch [N, C, *in] as [N, *out, O]."""
        a = node.attrs
        kernel, group = tuple(a["kernel_shape"]), int(a["group"])
        win = windows(xs, kernel, a["strides"], a["dilations"], a["pads"])  # [N, C, *out, *k]
        nb, c = win.shape[0], win.shape[1]
        out = win.shape[2:2 + len(kernel)]
        p, k = int(np.prod(out, dtype=np.int64)), int(np.prod(kernel, dtype=np.int64))
        cg, og = c // group, w.shape[0] // group
        # [N, G, Cg, P, K] -> [N, G, P, Cg*K] (a copy) @ [G, Cg*K, Og] -> [N, G, P, Og]
        cols = win.reshape(nb, group, cg, p, k).transpose(0, 1, 3, 2, 4).reshape(nb, group, p, cg * k)
        wm = w.reshape(group, og, cg * k).transpose(0, 2, 1)
        y = np.matmul(cols, wm)
        return y.transpose(0, 2, 1, 3).reshape((nb,) + tuple(out) + (group * og,))

    def channel_shape(self, node: Node) -> tuple[int, ...]:
        c = int(node.attrs["out_channels"])
        return (c,) if node.attrs["channels_last"] else (c,) + (1,) * len(node.attrs["kernel_shape"])

    def macs(self, node: Node, graph: Graph) -> int:
        a = node.attrs
        per_output = a["in_channels"] // a["group"] * int(np.prod(a["kernel_shape"]))
        return int(graph.tensors[node.outputs[0]].size * per_output)

    # -- hardware -----------------------------------------------------------------------------
    def mac_dims(self, node: Node) -> tuple[int, int]:
        """(n_in, n_out) of the unit: the kernel taps times the input channels of one group
        (a depthwise unit sums ``K_h*K_w`` products per output), and the output channels."""
        a = node.attrs
        return (int(np.prod(a["kernel_shape"])) * int(a["in_channels"]) // int(a["group"]),
                int(a["out_channels"]))

    def window_geometry(self, node: Node) -> WindowGeometry:
        """The sliding window this convolution reads (raises UserError beyond 2D)."""
        a = node.attrs
        if len(a["kernel_shape"]) > 2:
            raise UserError(f"{node.source}: {len(a['kernel_shape'])}D convolution; the hardware "
                            "handles 1D and 2D")
        return WindowGeometry.from_attrs(a["in_channels"], a["in_size"], a["kernel_shape"],
                                         a["strides"], a["dilations"], a["pads"], a["out_size"])

    def window_weights(self, node: Node) -> np.ndarray:
        """The integer weights as a matrix [K_h*K_w*C_in/group, C_out]: row ``t*cg + c`` of
        column ``o`` is the weight of kernel tap ``t = ky*K_w + kx`` and input channel ``c`` of
        ``o``'s group (``cg = C_in/group``); without groups the rows follow the window's lane
        order ``(ky, kx, c)``. :meth:`window_lanes` says which window lane each weight takes."""
        w = np.asarray(node.params["W"], dtype=np.int64)
        if w.ndim == 3:
            w = w[:, :, None, :]
        o_n, cg, kh, kw = w.shape
        return w.transpose(2, 3, 1, 0).reshape(kh * kw * cg, o_n)

    def window_lanes(self, node: Node) -> np.ndarray | None:
        """For grouped convolutions, the window lane (``(ky, kx, c)`` order) each entry of
        :meth:`window_weights` multiplies; None without groups (row ``i`` takes lane ``i``)."""
        a = node.attrs
        group, c = int(a["group"]), int(a["in_channels"])
        if group == 1:
            return None
        cg, o_n = c // group, int(a["out_channels"])
        taps = int(np.prod(a["kernel_shape"]))
        t, cc, o = np.meshgrid(np.arange(taps), np.arange(cg), np.arange(o_n), indexing="ij")
        return (t * c + (o // (o_n // group)) * cg + cc).reshape(taps * cg, o_n)

    def hardware(self, node, graph):
        t_in = graph.tensors[node.inputs[0]]
        require_typed(node, graph)
        geo = self.window_geometry(node)
        mac = self.mac_hardware(node, graph, self.window_weights(node), lanes=self.window_lanes(node),
                                n_lanes=geo.window_lanes)
        return Chain(WindowGenerator(geo, shape_of(t_in.dtype), pad=t_in.zero_point), mac)

    def cycles(self, node, graph):
        geo = self.window_geometry(node)
        unit = self.mac_cycles(node, graph)
        return Cycles(*geo.cycles(unit.latency, unit.interval))

    def beat_times(self, node, graph, arrivals):
        unit = self.mac_cycles(node, graph)
        return self.window_geometry(node).beat_times(arrivals[0], unit.latency, unit.interval)

    def parallelism(self, node):
        a = node.attrs
        n_in, n_out = self.mac_dims(node)
        pe, simd = self.pe_simd(node, n_in, n_out)
        steps = math.ceil(n_out / pe) * math.ceil(n_in / simd)
        return {"pe": pe, "simd": simd, "folds": steps, "reuse_factor": steps,
                "multipliers": pe * simd}

    def hls(self, node, graph):
        """hetero_mac.h ``conv`` (1D as one row, or 2D), pipelined at the folding's steps per pixel."""
        a = node.attrs
        n = len(a["kernel_shape"])
        if n > 2:
            return None

        def two(v, one):
            return (one, int(v[0])) if n == 1 else (int(v[0]), int(v[1]))

        (ih, iw), (kh, kw), (sh, sw) = two(a["in_size"], 1), two(a["kernel_shape"], 1), two(a["strides"], 1)
        (dh, dw), (oh, ow), (pt, pl) = two(a["dilations"], 1), two(a["out_size"], 1), two(a["pads"][:n], 0)
        geometry = {"in_channels": a["in_channels"], "out_channels": a["out_channels"], "group": a["group"],
                    "channels_last": bool(a["channels_last"]), "in_h": ih, "in_w": iw, "k_h": kh, "k_w": kw,
                    "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw, "pad_top": pt, "pad_left": pl,
                    "out_h": oh, "out_w": ow, "fold": max(1, self.parallelism(node)["folds"] // max(1, a["out_channels"]))}
        return self.mac_hls(node, graph, "conv", geometry)

    def resources(self, node, graph, family="xc7"):
        """The unit's (:meth:`mac_resources`) plus the window generator's
        (:func:`hetero.hw.window.window_generator_resources`)."""
        from hetero.hw.window import window_generator_resources

        geo = self.window_geometry(node)
        unit = self.mac_resources(node, graph, family, self.window_weights(node),
                                  n_lanes=geo.window_lanes if self.window_lanes(node) is not None else None)
        return unit + window_generator_resources(geo, graph.tensors[node.inputs[0]].dtype.width, family)

register(Conv())
