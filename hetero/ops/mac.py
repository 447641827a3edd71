"""What layers that multiply by constant weights and sum (Dense, Conv) share: weights from the
model's quantizers or from the config, the exact integer accumulator, and the epilogue.

A MAC layer computes ``y = epilogue(linear(x, W))`` where ``linear`` is the op's own weighted
sum (a matrix product, a convolution) and the epilogue is, per output channel ``c``::

    y = acc * a[c] + b[c]         # bias, folded batch norm and constant scaling
    y = max(y, 0)                  # if attrs["relu"] (only fused in front of a quantizer)
    y = out_spec(y)                # if attrs["out_spec"]: the model's quantizer that followed

Params: ``W`` (float weights; raw integers once typed), ``b`` (float, one per output channel),
optionally ``Wq`` and ``w_scale`` (the model's own integer weights, zero point removed, and
their real scale per output channel) and ``a`` (per output channel, only next to ``Wq``: with
float weights the scale folds into ``W``).

Typed reference, two cases, both exact integer arithmetic:

* plain fixed point (float weights, no scales, no epilogue beyond the bias): hls4ml's semantics,
  ``requant(requant(sum, accum), result)`` with the bias quantized to its type;
* otherwise: ``acc = linear(x - zero_point, Wq)`` exactly, then one
  :class:`~hetero.ir.quant.Requant` per output channel onto the output type (the fused quantizer's,
  or the config's ``result``): multiplier ``in_scale * w_scale[c] * a[c] / out_scale`` and
  offset ``b[c] / out_scale``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from typing import Sequence

import numpy as np

from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize, requantize, type_for_range
from hetero.ir.graph import Graph, Node, Tensor
from hetero.ir.quant import QuantSpec, make_requant, requant_to_fixed
from hetero.hw.cycles import Cycles
from hetero.ops.base import CriticalStage, Op, op_of


def grid_weights(w: np.ndarray, out_axis: int, max_int: int = 1 << 15):
    """``{"Wq", "w_scale"}`` if every output channel of ``w`` lies on a grid ``k * s`` with
    integers ``|k| <= max_int`` (weights a model quantized), else None."""
    moved = np.moveaxis(np.asarray(w, dtype=np.float64), out_axis, 0).reshape(w.shape[out_axis], -1)
    scales = np.ones(moved.shape[0])
    for c, row in enumerate(moved):
        nz = np.abs(row[row != 0])
        if nz.size == 0:
            continue
        for k in range(1, 17):
            s = nz.min() / k
            q = row / s
            if np.all(np.abs(q - np.round(q)) <= 1e-4) and np.abs(q).max() <= max_int:
                scales[c] = s
                break
        else:
            return None
    ints = np.round(moved / scales[:, None]).reshape(np.moveaxis(w, out_axis, 0).shape)
    return {"Wq": np.moveaxis(ints, 0, out_axis).astype(np.int64), "w_scale": scales}


def is_bipolar(graph: Graph, name: str) -> bool:
    """Whether tensor ``name`` holds only -1 and +1: a bipolar quantizer's output (a layer's
    fused one, a Quantize node's, or a graph input's declared quantizer)."""
    producer = graph.producer(name)
    if producer is None:
        spec = graph.tensors[name].quant
    else:
        spec = producer.attrs.get("out_spec") if producer.op != "Quantize" else producer.attrs.get("spec")
    return spec is not None and getattr(spec, "kind", None) == "bipolar"


def window_tap_masks(sizes, kernel, strides, dilations, pads) -> list[np.ndarray]:
    """Per spatial axis, the distinct sets of kernel taps that fall inside the input (not in the
    padding) for some output position: an int64 array [n_sets, k] of 0/1 rows per axis, for a
    sliding window over ``sizes`` (``pads`` begin... + end... as in ONNX; outputs as many as
    the padded input holds, as :func:`hetero.ops.conv.windows` takes them)."""
    n = len(kernel)
    out = []
    for ax in range(n):
        i, k, s, d, b = (int(v) for v in (sizes[ax], kernel[ax], strides[ax], dilations[ax], pads[ax]))
        o = (i + b + int(pads[n + ax]) - ((k - 1) * d + 1)) // s + 1
        pos = np.arange(max(o, 0))[:, None] * s - b + np.arange(k)[None, :] * d
        out.append(np.unique(((pos >= 0) & (pos < i)).astype(np.int64), axis=0))
    return out


def channel_vectors(arrays: Sequence[np.ndarray], shape: tuple[int, ...],
                    channel_shape: tuple[int, ...]) -> list[np.ndarray] | None:
    """The arrays (broadcastable to ``shape``) as per-channel vectors, if they vary only along
    the channel axis that ``channel_shape`` marks; else None."""
    out = []
    for v in arrays:
        full = np.broadcast_to(np.asarray(v, dtype=np.float64), shape)
        vec = full
        for axis, k in enumerate(channel_shape):
            if k == 1:
                vec = vec[(slice(None),) * axis + (slice(0, 1),)]
        if not np.array_equal(np.broadcast_to(vec, shape), full):
            return None
        out.append(np.array(vec, dtype=np.float64).reshape(-1))
    return out


class MacOp(Op):
    """Base of Dense and Conv. Subclasses define :meth:`linear`, :meth:`channel_shape` and
    ``weight_out_axis`` (the axis of ``W`` that indexes output channels)."""

    weight_out_axis: int = -1
    foldable = True

    def linear(self, node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The weighted sum without bias of a batch ``x`` [N, *in_shape] (float64 or int64,
        computed exactly in that type) with weights ``w`` laid out like ``params["W"]``."""
        raise NotImplementedError

    def channel_shape(self, node: Node) -> tuple[int, ...]:
        """The shape per-output-channel vectors take to broadcast against the output shape."""
        raise NotImplementedError

    # -- import -------------------------------------------------------------------------------
    @staticmethod
    def model_weights(ctx, name: str, w: np.ndarray, transform, out_axis: int, scale_factor: float = 1.0):
        """The model's integer weights for the constant ``name`` (None if no quantizer made it).

        ``transform`` maps the constant's layout to the layer's (the same one applied to the
        float weights ``w``). Returns params ``Wq`` and ``w_scale`` (per output channel), or
        None where the scale varies along an input axis (then the float weights are used).
        """
        found = ctx.quantized(name)
        if found is None:
            if not ctx.quantized_model:
                return None
            # a quantized model whose weight quantizer was written with plain ops (e.g. qonnx's
            # QCDQ form of a bipolar quantizer: Where(W >= 0, s, -s)): find the grid
            return grid_weights(w, out_axis)
        ints, scale, spec = found
        ints, scale = transform(np.asarray(ints, dtype=np.float64)), transform(np.asarray(scale))
        if ints.shape != w.shape:
            return None
        moved = np.moveaxis(scale, out_axis, 0).reshape(scale.shape[out_axis], -1)
        if not np.all(moved == moved[:, :1]):
            return None
        w_scale = moved[:, 0] * scale_factor
        return {"Wq": np.round(ints).astype(np.int64), "w_scale": w_scale.astype(np.float64)}

    # -- epilogue helpers ---------------------------------------------------------------------
    def _vec(self, node: Node, v) -> np.ndarray:
        return np.asarray(v, dtype=np.float64).reshape(self.channel_shape(node))

    def n_channels(self, node: Node) -> int:
        return int(node.params["b"].size)

    def is_plain(self, node: Node, t_in: Tensor) -> bool:
        return ("Wq" not in node.params and "a" not in node.params and not node.attrs.get("relu")
                and node.attrs.get("out_spec") is None and t_in.scale is None and t_in.zero_point == 0)

    # -- types --------------------------------------------------------------------------------
    def assign_types(self, node, inputs, outputs, cfg):
        t_in = inputs[0]
        if t_in.dtype is None:
            raise UserError(f"{node.source}: its input is not quantized (no type)")
        if self.is_plain(node, t_in):
            return self._assign_plain(node, t_in, outputs[0], cfg)
        return self._assign_requant(node, t_in, outputs[0], cfg)

    def _acc_bound(self, node: Node, t_in: Tensor, w_int: np.ndarray) -> int:
        """The largest |acc| any input in the input type's range can give: ``amax`` (the largest
        ``|x - zero_point|``) times the largest sum of ``|w|`` over the taps one output reads,
        padding (0 in that domain) excluded. Exactly ``max(linear(full(amax), |w|))``, without
        convolving a whole image: a window op's outputs read only a few distinct sets of taps
        (:func:`window_tap_masks`)."""
        amax = max(abs(t_in.dtype.min_raw - t_in.zero_point), abs(t_in.dtype.max_raw - t_in.zero_point))
        w_abs = np.abs(np.asarray(w_int, dtype=np.int64))
        if "kernel_shape" not in node.attrs:  # Dense: one vector
            bound = self.linear(node, np.full((1,) + t_in.shape, amax, dtype=np.int64), w_abs)
            return int(bound.max()) if bound.size else 0
        a = node.attrs
        kernel = tuple(int(k) for k in a["kernel_shape"])
        sizes = t_in.shape[:-1] if a.get("channels_last") else t_in.shape[1:]
        masks = window_tap_masks(sizes, kernel, a["strides"], a["dilations"], a["pads"])
        per_tap = w_abs.reshape((w_abs.shape[0], -1) + kernel).sum(axis=1)  # [C_out, *kernel]
        best = 0
        for combo in itertools.product(*masks):
            taps = functools.reduce(np.multiply.outer, combo)  # [*kernel] of 0/1
            best = max(best, int((per_tap * taps).reshape(len(per_tap), -1).sum(axis=1).max(initial=0)))
        return amax * best

    def _assign_plain(self, node, t_x, out, cfg):
        t_w, t_b, t_out = cfg.type_of("weight"), cfg.type_of("bias"), cfg.type_of("result")
        w, b = quantize(node.params["W"], t_w), quantize(node.params["b"], t_b)
        prod_frac = t_x.dtype.frac_bits + t_w.frac_bits
        frac = max(prod_frac, t_b.frac_bits)
        lo, hi = self.sum_range(node, t_x, w, b, prod_frac, frac, t_b)
        t_sum = type_for_range(min(lo, -1), hi, frac)  # signed: products of signed weights
        if t_sum.width > 62:
            raise UserError(f"{node.source}: the exact sum needs {t_sum.width} bits; use narrower "
                            "weight or input types")
        t_acc = cfg.type_of("accum") if cfg.has("accum") else t_sum
        node = node.evolve(params={"W": w, "b": b},
                           types={"weight": t_w, "bias": t_b, "sum": t_sum, "accum": t_acc})
        return node, [replace(out, dtype=t_out)]

    def sum_range(self, node, t_x: Tensor, w: np.ndarray, b: np.ndarray, prod_frac: int, frac: int,
                  t_b: FixedType) -> tuple[int, int]:
        """Bounds of every partial and complete sum in units of ``2**-frac`` (Dense overrides
        this with the exact range)."""
        bound = self._acc_bound(node, t_x, w) << (frac - prod_frac)
        bmax = int(np.max(np.abs(b))) << (frac - t_b.frac_bits) if b.size else 0
        return -(bound + bmax), bound + bmax

    def _assign_requant(self, node, t_in, out, cfg):
        if "Wq" in node.params:
            w_int, w_scale = node.params["Wq"], node.params["w_scale"]
            t_w = type_for_range(int(min(w_int.min(), 0)), int(max(w_int.max(), 0)), 0)
        else:
            t_w = cfg.type_of("weight")
            w_int = quantize(node.params["W"], t_w)
            w_scale = np.full(self.n_channels(node), t_w.lsb)
        bound = self._acc_bound(node, t_in, w_int)
        t_sum = type_for_range(-bound - 1, bound, 0)
        if t_sum.width > 62:
            raise UserError(f"{node.source}: the exact sum needs {t_sum.width} bits")
        a = node.params.get("a", np.ones(self.n_channels(node)))
        ratio_real = t_in.real_scale * w_scale * a  # real value of one accumulator unit
        b = node.params["b"]
        spec: QuantSpec | None = node.attrs.get("out_spec")
        relu = bool(node.attrs.get("relu"))
        if spec is not None:
            dtype, scale, zero = spec.ir_type()
            out = replace(out, dtype=dtype, scale=scale, zero_point=zero, integer=spec.kind == "linear")
            s_out = out.real_scale
            if spec.kind == "bipolar":
                rq = make_requant(self._vec(node, ratio_real), self._vec(node, b), -1, 1,
                                  "FLOOR", in_bits=t_sum.width)
            else:
                z = int(spec.zero_point)
                lo = max(spec.qmin, z) if relu else spec.qmin
                rq = make_requant(self._vec(node, ratio_real / s_out),
                                  self._vec(node, b / s_out + (z if spec.kind != "linear" else 0)),
                                  lo, spec.qmax, spec.rounding, z if spec.kind == "linear" else 0,
                                  in_bits=t_sum.width)
        else:
            t_out = cfg.type_of("result")
            out = replace(out, dtype=t_out)
            rq = requant_to_fixed(self._vec(node, ratio_real / t_out.lsb),
                                  self._vec(node, b / t_out.lsb), t_out, in_bits=t_sum.width)
        node = node.evolve(params={"W": w_int}, types={"weight": t_w, "sum": t_sum, "accum": t_sum},
                           attrs={"requant": rq})
        return node, [out]

    # -- reference ----------------------------------------------------------------------------
    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return [self._float_reference(node, graph, x)]
        if "requant" not in node.attrs:
            return [self._plain_reference(node, graph, x)]
        acc = self.linear(node, x.astype(np.int64) - t_in.zero_point, node.params["W"])
        rq = node.attrs["requant"]
        spec = node.attrs.get("out_spec")
        if spec is not None and spec.kind == "bipolar":
            return [np.where(acc * rq.mult + rq.add >= 0, 1, -1).astype(np.int64)]
        y = rq(acc)
        if node.attrs.get("relu") and spec is None:
            y = np.maximum(y, 0)
        return [y]

    def _float_reference(self, node, graph, x):
        y = self.linear(node, x, node.params["W"])
        if "a" in node.params:
            y = y * self._vec(node, node.params["a"])
        y = y + self._vec(node, node.params["b"])
        if node.attrs.get("relu"):
            y = np.maximum(y, 0)
        spec = node.attrs.get("out_spec")
        if spec is not None:
            y = spec.integers(y) if spec.kind == "linear" else spec.fake(y)
        return y

    def _plain_reference(self, node, graph, x):
        t_x = graph.tensors[node.inputs[0]].dtype
        t_w, t_b, t_sum, t_acc = (node.types[k] for k in ("weight", "bias", "sum", "accum"))
        frac = t_sum.frac_bits
        acc = self.linear(node, x.astype(np.int64), node.params["W"]) << (frac - t_x.frac_bits - t_w.frac_bits)
        acc = acc + (self._vec(node, node.params["b"]).astype(np.int64) << (frac - t_b.frac_bits))
        acc = requantize(acc, frac, t_acc)
        return requantize(acc, t_acc.frac_bits, graph.tensors[node.outputs[0]].dtype)

    # -- hardware: the matrix-vector unit ---------------------------------------------------
    def mac_weights(self, node: Node) -> np.ndarray:
        """The integer weight matrix [n_in, n_out] the unit multiplies a vector by (Dense: its
        own ``W``; Conv passes its window-ordered matrix to :meth:`mac_hardware` instead)."""
        return np.asarray(node.params["W"], dtype=np.int64)

    def pe_simd(self, node: Node, n_in: int, n_out: int) -> tuple[int, int]:
        """The folding: ``pe`` output channels and ``simd`` inputs per step (fully parallel
        unless the node's attrs say otherwise)."""
        pe = int(node.attrs.get("pe") or n_out)
        simd = int(node.attrs.get("simd") or n_in)
        return max(1, min(pe, n_out)), max(1, min(simd, n_in))

    def mac_matrix(self, node: Node) -> np.ndarray:
        """The matrix [n_in, n_out] the unit multiplies by: Conv's window-ordered weights
        (``window_weights``) where the op has them, else :meth:`mac_weights`."""
        window = getattr(self, "window_weights", None)
        return window(node) if window is not None else self.mac_weights(node)

    def critical_stage(self, node: Node, graph: Graph) -> CriticalStage:
        """The unit's deepest stage (:mod:`hetero.hw.mvau`: one pipeline stage holds a PE's
        products and its whole adder tree): a product (two partial products above 6 bits of
        operands) and the tree over ``simd`` of them, adders of the product's width plus the
        tree's growth, after a DSP multiply where Yosys maps the products to DSPs (folded
        layers with both operands over 4 bits; unfolded ones with inputs over 4 and weights
        over 8 bits)."""
        from hetero.hw.mvau import range_shape

        w = self.mac_matrix(node)
        n_in, n_out = w.shape
        pe, simd = self.pe_simd(node, n_in, n_out)
        steps = -(-n_in // simd) * -(-n_out // pe)
        x_bits = graph.tensors[node.inputs[0]].dtype.width
        w_bits = range_shape(int(w.min()), int(w.max())).width
        terms = simd * (1 if x_bits + w_bits <= 6 else 2)
        width = x_bits + w_bits + max(1, (max(simd, 2) - 1).bit_length())
        levels = 1 + (max(terms, 2) - 1).bit_length()  # product (or partial product) + adder tree
        dsp = steps > 1 and min(x_bits, w_bits) > 4 or steps == 1 and x_bits > 4 and w_bits > 8
        what = f"{levels} adder levels of ~{width} bits" + (" after a DSP multiply" if dsp else "")
        return CriticalStage(levels, width, dsp, what)

    def mac_epilogue(self, node: Node, graph: Graph, w: np.ndarray):
        """``(epilogue, unit options)`` of the unit multiplying by ``w`` [n_in, n_out]: a
        :class:`~hetero.hw.mvau.PlainEpilogue` or :class:`~hetero.hw.mvau.RequantEpilogue`
        over the unit's dot ``D``, and the keyword arguments of :class:`~hetero.hw.mvau.MVAU`
        that say what ``D`` is (``x_range``, ``xnor``, ``bipolar``)."""
        from hetero.hw.mvau import PlainEpilogue, RequantEpilogue, dot_ranges

        n_in, n_out = w.shape
        t_in = graph.tensors[node.inputs[0]]
        t_out = graph.tensors[node.outputs[0]].dtype
        if "requant" not in node.attrs:
            t_x, t_b, t_sum = t_in.dtype, node.types["bias"], node.types["sum"]
            b = np.asarray(node.params["b"], dtype=np.int64).reshape(-1)
            epi = PlainEpilogue(tuple(int(v) << (t_sum.frac_bits - t_b.frac_bits) for v in b),
                                t_sum.frac_bits - t_x.frac_bits - node.types["weight"].frac_bits,
                                t_sum, node.types["accum"], t_out)
            return epi, {}
        bipolar_in = is_bipolar(graph, node.inputs[0])
        xnor = bipolar_in and bool(np.all(np.abs(w) == 1))
        if xnor:  # x @ w == 2 * agreements - n_in
            alpha, beta = 2, tuple([-n_in] * n_out)
        elif bipolar_in:  # x @ w == 2 * (weights of the +1 inputs) - sum(w)
            alpha, beta = 2, tuple(int(v) for v in -w.sum(axis=0))
        else:  # the zero point folds into the offset: (x - z) @ w == x @ w - z * sum(w)
            alpha, beta = 1, tuple(int(v) for v in -t_in.zero_point * w.sum(axis=0))
        x_range = (0, 1) if bipolar_in else (t_in.dtype.min_raw, t_in.dtype.max_raw)
        d_lo, d_hi = dot_ranges(w, x_range, xnor)
        spec = node.attrs.get("out_spec")
        epi = RequantEpilogue(node.attrs["requant"], alpha, beta, tuple(d_lo), tuple(d_hi),
                              relu=bool(node.attrs.get("relu")) and spec is None,
                              bipolar=spec is not None and spec.kind == "bipolar", t_out=t_out)
        return epi, {"x_range": (-1, 1) if bipolar_in else x_range, "xnor": xnor, "bipolar": bipolar_in}

    def mac_dims(self, node: Node) -> tuple[int, int]:
        """(n_in, n_out): the inputs each output sums and the outputs of the unit."""
        n_in, n_out = self.mac_matrix(node).shape
        return int(n_in), int(n_out)

    def with_folding(self, node: Node, pe: int, simd: int) -> Node:
        """The node with ``attrs["pe"]`` and ``attrs["simd"]`` (read by :meth:`pe_simd`)."""
        return node.evolve(attrs={"pe": pe, "simd": simd})

    def mac_hardware(self, node: Node, graph: Graph, w: np.ndarray | None = None,
                     lanes: np.ndarray | None = None, n_lanes: int | None = None):
        """A ``wiring.Component`` (:class:`~hetero.hw.mvau.MVAU`) with stream ports ``i`` (one
        beat of ``n_in`` raw input values, zero point included: one vector) and ``o`` (one beat
        of ``n_out`` raw values of the layer's output type) computing the whole layer, epilogue
        included, on each beat independently, exactly as :meth:`reference` does. ``w``
        [n_in, n_out] overrides the integer weights (default :meth:`mac_weights`); ``lanes``
        and ``n_lanes`` make a grouped unit (see :class:`~hetero.hw.mvau.MVAU`)."""
        from hetero.hw.mvau import MVAU

        w = self.mac_weights(node) if w is None else np.asarray(w, dtype=np.int64)
        n_in, n_out = w.shape
        epi, options = self.mac_epilogue(node, graph, w)
        return MVAU(w, graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype, epi,
                    *self.pe_simd(node, n_in, n_out), lanes=lanes, n_lanes=n_lanes, **options)

    def mac_cycles(self, node: Node, graph: Graph, n_in: int | None = None,
                   n_out: int | None = None) -> Cycles:
        """Latency and interval of :meth:`mac_hardware`'s unit for one vector (``n_in`` and
        ``n_out`` default to the weight matrix's shape)."""
        from hetero.hw.mvau import RAM_FORMS, mvau_cycles

        w = self.mac_matrix(node)
        if n_in is None or n_out is None:
            n_in, n_out = w.shape
        pe, simd = self.pe_simd(node, n_in, n_out)
        ram = False
        if graph.tensors[node.inputs[0]].dtype is not None and "requant" in node.attrs:
            ram = self.mac_epilogue(node, graph, w)[0].form(pe) in RAM_FORMS
        return Cycles(*mvau_cycles(n_in, n_out, pe, simd, ram))

    # -- epilogue fusion ----------------------------------------------------------------------
    def fuse_epilogue(self, node: Node, consumer: Node, graph: Graph) -> Node | None:
        """What follows the layer per output channel: a constant scale/shift or bias
        (:meth:`~hetero.ops.base.Op.affine`: batch norm, Mul/Div/Sub/Add by constants) varying
        only along the channels, and, in front of a model quantizer, a ReLU and the quantizer
        itself (its output type becomes the layer's)."""
        if node.attrs.get("out_spec") is not None:
            return None
        c, c_op = consumer, op_of(consumer)
        source = f"{node.source} + {c.source}"
        affine = c_op.affine(c)
        if affine is not None and not node.attrs.get("relu"):
            vectors = channel_vectors(affine, graph.tensors[node.outputs[0]].shape, self.channel_shape(node))
            if vectors is None:
                return None
            return self.fuse_scale_shift(node, *vectors).evolve(outputs=c.outputs, source=source)
        if c_op.is_relu and not node.attrs.get("relu"):
            after = graph.consumers(c.outputs[0])
            if c.outputs[0] in graph.outputs or len(after) != 1 or op_of(after[0]).quantizer(after[0]) is None:
                return None  # a ReLU is fused only in front of a model quantizer
            return node.evolve(outputs=c.outputs, attrs={"relu": True}, source=source)
        spec = c_op.quantizer(c)
        if spec is not None:
            return node.evolve(outputs=c.outputs, attrs={"out_spec": spec}, source=source)
        return None

    def fuse_scale_shift(self, node: Node, a: np.ndarray, b: np.ndarray) -> Node:
        """The node followed by ``y * a + b`` (per output channel vectors)."""
        b_new = node.params["b"] * a + b
        if "Wq" in node.params:
            return node.evolve(params={"a": node.params.get("a", np.ones_like(a)) * a, "b": b_new})
        shape = [1] * node.params["W"].ndim
        shape[self.weight_out_axis] = -1
        return node.evolve(params={"W": node.params["W"] * a.reshape(shape), "b": b_new})

    def macs(self, node: Node, graph: Graph) -> int:
        w = node.params["W"]
        out = graph.tensors[node.outputs[0]]
        return int(out.size * (w.size // max(w.shape[self.weight_out_axis], 1)))

    # -- HLS C++ ------------------------------------------------------------------------------
    def mac_hls(self, node: Node, graph: Graph, kernel: str, geometry: dict):
        """The :class:`~hetero.hw.hls_binding.HlsCall` of hetero_mac.h's ``kernel`` (dense, conv)
        with the exact sum over ``params["W"]`` and the reference's epilogue; ``geometry``: the
        kernel's own sizes and parallelism."""
        from hetero.hw.hls_binding import HlsCall, int_array, no_requant, requant_config

        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return None
        cfg = {**geometry, "zero_point": t_in.zero_point, "plain": "requant" not in node.attrs}
        if "requant" in node.attrs:
            spec = node.attrs.get("out_spec")
            rq, arrays = requant_config(node.attrs["requant"], shape=(self.n_channels(node),))
            b = int_array([0])
            cfg.update(relu=bool(node.attrs.get("relu")) and spec is None, prod_shift=0, bias_shift=0,
                       bipolar=spec is not None and spec.kind == "bipolar", n_bias=1)
        else:
            t_sum, t_b = node.types["sum"], node.types["bias"]
            b = int_array(node.params["b"])
            rq, arrays = no_requant()
            cfg.update(relu=False, bipolar=False, n_bias=int(b.size), bias_shift=t_sum.frac_bits - t_b.frac_bits,
                       prod_shift=t_sum.frac_bits - t_in.dtype.frac_bits - node.types["weight"].frac_bits)
        types = {"sum_t": node.types["sum"], "accum_t": node.types["accum"]}
        return HlsCall(kernel, "hetero_mac.h", cfg, types, {"rq": rq},
                       (("w", int_array(node.params["W"])), ("b", b)) + arrays)

    # -- resources ----------------------------------------------------------------------------
    def mac_resources(self, node: Node, graph: Graph, family: str, w: np.ndarray | None = None,
                      n_lanes: int | None = None):
        """:func:`hetero.hw.mvau.mvau_resources` of :meth:`mac_hardware`'s unit (same weights,
        epilogue and folding; ``w`` and ``n_lanes`` as there)."""
        from hetero.hw.mvau import mvau_resources

        w = self.mac_weights(node) if w is None else np.asarray(w, dtype=np.int64)
        n_in, n_out = w.shape
        epi, options = self.mac_epilogue(node, graph, w)
        return mvau_resources(w, graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype, epi,
                    *self.pe_simd(node, n_in, n_out), n_lanes=n_lanes, family=family, **options)

    def resources(self, node, graph, family="xc7"):
        return self.mac_resources(node, graph, family)
