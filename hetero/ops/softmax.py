"""Softmax and LogSoftmax. In float mode the reference computes the real (log-)softmax over the
node's per-inference axes (``attrs["axes"]``): one axis from opset 13, and from opset 1 to 12 the
axes from ``axis`` to the last (those opsets flatten the input to 2-D at ``axis``); ``axis`` may
be any per-inference axis, never the batch axis. ``attrs["log"]``: LogSoftmax.

In fixed point, two strategies:

* ``argmax`` (config ``Strategy: argmax``, the default, when no quantizer follows), over the last
  axis only: (log-)softmax is monotonic, so the hardware outputs the index of the largest logit
  (the first one on ties, like numpy.argmax) and the reference does the same; the output has
  shape ``shape[:-1] + (1,)``. Reports say so. Hardware (a vector input): a comparison chain,
  registered: latency 1, interval 1.
* ``table``: a Softmax followed by the model's QuantizeLinear or QONNX Quant (fused into it by
  ``fuse_epilogues``) on a typed input computes the probabilities in integers, and reference and
  hardware both compute exactly this (:func:`softmax_integers`)::

      d[k] = max(x) - x[k]                                  (raw units; the zero point cancels)
      e[k] = T[min(d[k] >> shift, len(T) - 1)]              T[j] = round(2**16 * exp(-(j << shift) * s_in))
      R    = 2**P // sum(e)                                 P = 16 + bits(n - 1) + 16
      y[k] = requant(e[k] * R)                              onto the quantizer: 2**-P / s_out, its rounding,
                                                            zero point and clip

  ``T`` stops where its entries round to 0 and has at most 1024 entries (``shift`` > 0 only for
  inputs with more distinct differences, e.g. 16-bit ones). Error against the float softmax of
  the same real inputs (the quantizer's clip of 1.0 to its top level aside): at most half an
  output step plus ``(n + 1) * 2**-17`` (table rounding) plus ``2**-16`` (the reciprocal and the
  multiplier); measured over 20000 random 10-class int8 inputs at input scales 0.02, 0.1 and 0.5
  into uint8 at 1/256: 0.001964 (half a step is 0.001953), and 0.03 % of the outputs one step
  away from quantizing the exact probabilities (tests/test_hw_elementwise.py asserts the bound).
  Hardware (:class:`SoftmaxHW`, a vector input): max, a ROM of ``T`` per lane, the sum, a
  restoring division one quotient bit per cycle, and the requantized products: latency and
  interval ``P + 3`` cycles (39 for 10 classes).
  LogSoftmax, or a bipolar or Trunc quantizer after a Softmax, keeps the exact real function
  quantized (strategy ``exact``) and has no hardware.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.hw.lanes import lanes_stream
from hetero.hw.fixed_hw import shape_of, vector_stream
from hetero.hw.requant_hw import requant_expr
from hetero.ir.quant import make_requant
from hetero.ops.onnx_context import attr
from hetero.hw.cycles import Cycles
from hetero.ops.base import Op, op_of, register
from hetero.ops.reshape import inference_axis, onnx_opset


def index_type(n: int) -> FixedType:
    bits = max(1, int(np.ceil(np.log2(n))))
    return FixedType(bits, bits, signed=False)


class Softmax(Op):
    name = "Softmax"
    onnx_ops = ("Softmax", "LogSoftmax")
    layer_types = ("Softmax", "Activation")
    hardware_note = "Softmax is implemented as argmax in hardware: the output is the class index"

    def fuse_epilogue(self, node, consumer, graph):
        """A model quantizer after the softmax: the probabilities are computed exactly, then
        quantized (``attrs["out_spec"]``)."""
        spec = op_of(consumer).quantizer(consumer)
        if "out_spec" in node.attrs or spec is None:
            return None
        return node.evolve(outputs=consumer.outputs, attrs={"out_spec": spec},
                           source=f"{node.source} + {consumer.source}")

    def import_onnx(self, node, ctx) -> None:
        shape = ctx.shape(node.input[0])
        rank = len(shape)
        if onnx_opset(ctx) < 13:
            axis = inference_axis(node, attr(node, "axis", 1), rank)
            axes = tuple(range(axis, rank))
        else:
            axes = (inference_axis(node, attr(node, "axis", -1), rank),)
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [shape],
                attrs={"axes": axes, "log": node.op_type == "LogSoftmax"})

    def assign_types(self, node, inputs, outputs, cfg):
        spec = node.attrs.get("out_spec")
        if spec is not None:  # quantized probabilities (QDQ models): the exact function, quantized
            dtype, scale, zero = spec.ir_type()
            t_in = inputs[0]
            if t_in.dtype is not None and spec.kind in ("linear", "int") and not node.attrs.get("log"):
                attrs, params = table_softmax(t_in, spec, node.attrs.get("axes", (len(t_in.shape) - 1,)))
                node = node.evolve(attrs={"strategy": "table", **attrs}, params=params)
            else:
                node = node.evolve(attrs={"strategy": "exact"})
            return node, [replace(
                outputs[0], dtype=dtype, scale=scale, zero_point=zero, integer=spec.kind == "linear")]
        strategy = cfg.strategy or "argmax"
        if strategy != "argmax":
            raise UserError(f"{node.source}: Softmax Strategy '{strategy}' not supported; use argmax")
        shape = inputs[0].shape
        if tuple(node.attrs.get("axes", (len(shape) - 1,))) != (len(shape) - 1,):
            raise UserError(f"{node.source}: in fixed point, softmax is computed as argmax over the "
                            f"last axis only; this one normalizes per-inference axes "
                            f"{list(node.attrs['axes'])} of {list(shape)}")
        out_shape = shape[:-1] + (1,)
        return node.evolve(attrs={"strategy": "argmax"}), [replace(outputs[0], shape=out_shape,
                                                                   dtype=index_type(shape[-1]))]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]]
        spec = node.attrs.get("out_spec")
        if node.attrs.get("strategy") == "table" and t_in.dtype is not None:
            rank = len(t_in.shape)
            return [softmax_integers(x, node, tuple(a + 1 for a in node.attrs.get("axes", (rank - 1,))))]
        if t_in.dtype is None or spec is not None:
            if t_in.dtype is not None:
                x = t_in.to_real(x)
            rank = len(graph.tensors[node.inputs[0]].shape)
            axes = tuple(a + 1 for a in node.attrs.get("axes", (rank - 1,)))
            shifted = x - x.max(axis=axes, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=axes, keepdims=True)
            y = shifted - np.log(total) if node.attrs.get("log") else e / total
            if spec is not None:  # the model's quantizer that followed, fused by fuse_epilogues
                if t_in.dtype is None:
                    return [spec.integers(y) if spec.kind == "linear" else spec.fake(y)]
                return [spec.integers(y).astype(np.int64)]
            return [y]
        return [np.argmax(x, axis=-1).astype(np.int64)[..., None]]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if node.attrs.get("strategy") == "table":
            if len(t_in.shape) != 1:
                raise UserError(f"{node.source}: no hardware yet for softmax probabilities of a "
                                f"{len(t_in.shape)}-D tensor {list(t_in.shape)}; only of a vector")
            a = node.attrs
            return SoftmaxHW(shape_of(t_in.dtype), t_in.size, node.params["exp_table"], a["exp_shift"],
                             a["div_bits"], a["requant"], shape_of(t_out.dtype))
        if node.attrs.get("strategy") != "argmax":
            raise UserError(f"{node.source}: no hardware for these softmax probabilities (LogSoftmax, "
                            "or a bipolar/Trunc quantizer after it); only argmax or Softmax followed "
                            "by QuantizeLinear/Quant")
        if len(t_in.shape) != 1:
            raise UserError(f"{node.source}: no hardware yet for argmax over the last axis of a "
                            f"{len(t_in.shape)}-D tensor {list(t_in.shape)}; only over a vector")
        return ArgmaxHW(t_in.dtype, t_in.size, t_out.dtype)

    def cycles(self, node, graph):
        if node.attrs.get("strategy") == "table":
            n = node.attrs["div_bits"] + 3
            return Cycles(n, n)
        return Cycles(1, 1)

    def hls(self, node, graph):
        """hetero_activation.h ``argmax``, or ``softmax_table`` (the integer softmax) over the
        last axis."""
        from hetero.hw.hls_binding import HlsCall, requant_config

        t_in = graph.tensors[node.inputs[0]]
        strategy = node.attrs.get("strategy")
        last = (len(t_in.shape) - 1,)
        cfg = {"n": t_in.size, "group": t_in.shape[-1]}
        if strategy == "argmax":
            return HlsCall("argmax", "hetero_activation.h", cfg)
        if strategy != "table" or tuple(node.attrs.get("axes", last)) != last:
            return None
        rq, arrays = requant_config(node.attrs["requant"])
        table = node.params["exp_table"]
        cfg.update(exp_shift=node.attrs["exp_shift"], div_bits=node.attrs["div_bits"], exp_entries=len(table))
        return HlsCall("softmax_table", "hetero_activation.h", cfg, nested={"rq": rq},
                       arrays=(("exp_table", table),) + arrays)


class ArgmaxHW(wiring.Component):
    def __init__(self, t_in: FixedType, n: int, t_out: FixedType):
        self.n = n
        super().__init__({"i": In(vector_stream(t_in, n)), "o": Out(vector_stream(t_out, 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        best_val, best_idx = self.i.payload[0], 0
        for k in range(1, self.n):  # signals per step: the expression tree stays linear
            better = self.i.payload[k] > best_val
            val, idx = Signal.like(best_val, name=f"max_{k}"), Signal(range(self.n), name=f"arg_{k}")
            m.d.comb += [val.eq(Mux(better, self.i.payload[k], best_val)), idx.eq(Mux(better, k, best_idx))]
            best_val, best_idx = val, idx
        with m.If(en):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload[0].eq(best_idx)]
        return m


EXP_BITS = 16  # fraction bits of the exponential table's entries (exp(0) = 2**EXP_BITS)
EXP_ENTRIES = 1024  # most entries of the exponential table
RECIPROCAL_BITS = 16  # the reciprocal of the sum keeps at least this many bits


def table_softmax(t_in, spec, axes) -> tuple[dict, dict]:
    """Attributes and params of the integer softmax (see the module docstring) of typed input
    ``t_in`` over per-inference ``axes``, quantized by ``spec``."""
    s = t_in.real_scale
    n = int(np.prod([t_in.shape[a] for a in axes]))
    n_d = t_in.dtype.max_raw - t_in.dtype.min_raw + 1  # values of max - x
    d = np.arange(n_d, dtype=np.float64)
    zero = np.flatnonzero(np.round(2.0**EXP_BITS * np.exp(-d * s)) == 0)
    if zero.size:
        n_d = int(zero[0]) + 1
    shift = 0
    while -(-n_d // (1 << shift)) > EXP_ENTRIES:
        shift += 1
    j = np.arange(-(-n_d // (1 << shift)), dtype=np.float64)
    table = np.round(2.0**EXP_BITS * np.exp(-(j * 2.0**shift) * s)).astype(np.int64)
    div_bits = EXP_BITS + max(1, int(n - 1).bit_length()) + RECIPROCAL_BITS
    s_out = float(np.asarray(spec.scale).reshape(-1)[0])
    z = int(np.asarray(spec.zero_point).reshape(-1)[0])
    offset, zero_after = (0.0, z) if spec.kind == "linear" else (float(z), 0)
    rq = make_requant(2.0**-div_bits / s_out, offset, spec.qmin, spec.qmax, spec.rounding, zero_after,
                      in_bits=div_bits + 1)
    return {"exp_shift": shift, "div_bits": div_bits, "requant": rq}, {"exp_table": table}


def softmax_integers(x: np.ndarray, node, axes: tuple[int, ...]) -> np.ndarray:
    """The integer softmax over ``axes`` of raw inputs ``x`` (batch axis first)."""
    x = np.asarray(x, dtype=np.int64)
    table = node.params["exp_table"]
    d = x.max(axis=axes, keepdims=True) - x
    e = table[np.minimum(d >> node.attrs["exp_shift"], len(table) - 1)]
    recip = (1 << node.attrs["div_bits"]) // e.sum(axis=axes, keepdims=True)
    return node.attrs["requant"](e * recip)


class SoftmaxHW(wiring.Component):
    """The integer softmax of one vector beat: max, exponential table (a ROM per lane), sum, a
    restoring division ``2**div_bits // sum`` (one quotient bit per cycle), then per lane the
    product requantized. States: accept, load (table outputs summed), ``div_bits + 1`` divide
    steps, output; the next vector is accepted with the output: latency and interval
    ``div_bits + 3``."""

    def __init__(self, in_shape, n: int, table: np.ndarray, shift: int, div_bits: int, rq, out_shape):
        self.n, self.table, self.shift, self.div_bits, self.rq = n, [int(v) for v in table], shift, div_bits, rq
        super().__init__({"i": In(lanes_stream(in_shape, n)), "o": Out(lanes_stream(out_shape, n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        n, p, last = self.n, self.div_bits, len(self.table) - 1
        e_width = max(self.table).bit_length()
        e = [Signal(e_width, name=f"e_{k}") for k in range(n)]
        total = Signal(e_width + max(1, (n - 1).bit_length()))
        rem = Signal(len(total) + 1)
        quot = Signal(p + 1)
        step = Signal(range(p + 2))
        busy = Signal()  # loading or dividing
        load = Signal()
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~busy & (~self.o.valid | self.o.ready))
        xs = [self.i.payload[k] for k in range(n)]
        best = xs[0]
        for k, v in enumerate(xs[1:]):  # a signal per step: the expression tree stays linear
            step_max = Signal.like(xs[0], name=f"max_{k}")
            m.d.comb += step_max.eq(Mux(v > best, v, best))
            best = step_max
        reads = []
        for k in range(n):
            rom = Memory(shape=unsigned(e_width), depth=len(self.table), init=self.table)
            m.submodules[f"exp_{k}"] = rom
            rd = rom.read_port(domain="sync")
            idx = (best - xs[k]).as_unsigned() >> self.shift
            m.d.comb += [rd.en.eq(take), rd.addr.eq(Mux(idx > last, last, idx))]
            reads.append(rd.data)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += [busy.eq(1), load.eq(1)]
        with m.If(load):
            m.d.sync += [load.eq(0), total.eq(sum(reads)), rem.eq(0), quot.eq(0), step.eq(0)]
            m.d.sync += [e[k].eq(reads[k]) for k in range(n)]
        with m.Elif(busy):
            # quotient bit p - step of 2**p // total: the numerator's bit is 1 only at step 0
            trial = Cat(step == 0, rem)
            fits = trial >= total
            m.d.sync += [rem.eq(Mux(fits, trial - total, trial)), quot.eq(Cat(fits, quot)),
                         step.eq(step + 1)]
            with m.If(step == p):
                m.d.sync += [busy.eq(0), self.o.valid.eq(1)]
        for k in range(n):
            m.d.comb += self.o.payload[k].eq(requant_expr(e[k] * quot, self.rq))
        return m


register(Softmax())
