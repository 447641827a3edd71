"""Elementwise activations computed from a table of the function.

Sigmoid, through a lookup table over [-8, 8): ``index = floor((x + 8) * N / 16)`` clamped to
[0, N-1], ``y = table[index]`` where the table holds sigmoid at each bin's centre rounded to the
output type (RND, SAT). N (``TableSize``, default 1024) is a power of two. The table's error
against the exact sigmoid is at most half a bin's slope (<= 16/N/8) plus half an output LSB.
Hardware: one ROM per element, read synchronously: latency 1, interval 1. An input with a
model scale or zero point (a model quantizer's integers) is not binned that way: its reference
is the exact function as below, and it has no hardware yet.

Tanh, Selu, Elu, Softplus and HardSigmoid (:class:`FunctionOp`): the float reference is the ONNX
definition in float64 with the node's ``alpha``/``beta``/``gamma``. Typed, the output type is the
config's ``result`` and the output is the function, computed in float64 on the exact real value
of the raw input (``(raw - zero_point) * real_scale``), quantized to that type with its rounding
and overflow (:func:`~hetero.fixed.quantize`): what a table indexed by every raw input value holds.
This is the one place typed values go through floats, as the op is a table by nature. No
hardware yet for these (a full table per input value is not the sigmoid's binned ROM).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..fixed import FixedType, quantize
from ..hw.fixed_hw import shape_of, vector_stream
from ..onnx_import import attr
from .base import Cycles, Op, register

RANGE = 8.0  # the table covers [-RANGE, RANGE)


def table(size: int, t_out: FixedType) -> np.ndarray:
    """Raw output values of the table (``size`` entries)."""
    centres = -RANGE + (np.arange(size) + 0.5) * (2 * RANGE / size)
    return quantize(1.0 / (1.0 + np.exp(-centres)), t_out.with_modes("RND", "SAT"))


def index_shift(size: int, frac_bits: int) -> int:
    """Left shift (negative: right) taking a raw input to its bin offset from the table's middle."""
    return int(np.log2(size)) - int(np.log2(2 * RANGE)) - frac_bits


class Sigmoid(Op):
    name = "Sigmoid"
    onnx_ops = ("Sigmoid",)
    layer_types = ("Activation",)

    def import_onnx(self, node, ctx) -> None:
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [ctx.shape(node.input[0])])

    def assign_types(self, node, inputs, outputs, cfg):
        size = cfg.table_size or 1024
        if size & (size - 1) or size < 16:
            raise UserError(f"{node.source}: TableSize {size} must be a power of two >= 16")
        t_out = cfg.type_of("result")
        node = node.evolve(attrs={"table_size": size}, params={"table": table(size, t_out)})
        return node, [replace(outputs[0], dtype=t_out)]

    def reference(self, node, graph, inputs):
        x = inputs[0]
        t_in = graph.tensors[node.inputs[0]].dtype
        if t_in is None:
            return [1.0 / (1.0 + np.exp(-x))]
        t = graph.tensors[node.inputs[0]]
        if t.scale is not None or t.zero_point:  # a model scale: the exact function (see above)
            return [quantize(1.0 / (1.0 + np.exp(-t.to_real(x))), graph.tensors[node.outputs[0]].dtype)]
        size = node.attrs["table_size"]
        shift = index_shift(size, t_in.frac_bits)
        offset = (x << shift) if shift >= 0 else (x >> -shift)
        idx = np.clip(offset + size // 2, 0, size - 1)
        return [node.params["table"][idx]]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if t_in.scale is not None or t_in.zero_point:
            raise UserError(f"{node.source}: no hardware yet for Sigmoid on a model quantizer's scale")
        return SigmoidHW(t_in.dtype, t_out.dtype, t_in.size, node.params["table"])

    def cycles(self, node, graph):
        return Cycles(1, 1)


class SigmoidHW(wiring.Component):
    def __init__(self, t_in: FixedType, t_out: FixedType, n: int, values: np.ndarray):
        self.t_in, self.t_out, self.n, self.values = t_in, t_out, n, values
        super().__init__({"i": In(vector_stream(t_in, n)), "o": Out(vector_stream(t_out, n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        size = len(self.values)
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        with m.If(en):
            m.d.sync += self.o.valid.eq(self.i.valid)
        shift = index_shift(size, self.t_in.frac_bits)
        for k in range(self.n):
            rom = Memory(shape=shape_of(self.t_out), depth=size, init=[int(v) for v in self.values])
            m.submodules[f"table_{k}"] = rom
            rd = rom.read_port(domain="sync")
            x = self.i.payload[k]
            offset = (x << shift) if shift >= 0 else (x >> -shift)
            idx = offset + size // 2
            m.d.comb += [rd.en.eq(en), rd.addr.eq(Mux(idx < 0, 0, Mux(idx > size - 1, size - 1, idx)))]
            m.d.comb += self.o.payload[k].eq(rd.data)
        return m


class FunctionOp(Op):
    """An elementwise function of one tensor, typed as a table of exact values (see above)."""

    layer_types = ("Activation",)
    defaults: dict[str, float] = {}

    def function(self, attrs, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        attrs = {k: float(np.float32(attr(node, k, v))) for k, v in self.defaults.items()}  # ONNX: float32
        ctx.add(node, self.name, [x], [node.output[0]], [ctx.shape(x)], attrs=attrs)

    def assign_types(self, node, inputs, outputs, cfg):
        return node, [replace(outputs[0], dtype=cfg.type_of("result"), scale=None, zero_point=0,
                              integer=False)]

    def reference(self, node, graph, inputs):
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return [self.function(node.attrs, np.asarray(inputs[0], dtype=np.float64))]
        y = self.function(node.attrs, t_in.to_real(inputs[0]))
        return [quantize(y, graph.tensors[node.outputs[0]].dtype)]

    def cycles(self, node, graph):
        return Cycles(1, 1)


class Tanh(FunctionOp):
    name = "Tanh"
    onnx_ops = ("Tanh",)

    def function(self, attrs, x):
        return np.tanh(x)


class Selu(FunctionOp):
    name = "Selu"
    onnx_ops = ("Selu",)
    defaults = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}

    def function(self, attrs, x):
        neg = attrs["alpha"] * np.expm1(np.minimum(x, 0.0))
        return attrs["gamma"] * np.where(x > 0, x, neg)


class Elu(FunctionOp):
    name = "Elu"
    onnx_ops = ("Elu",)
    defaults = {"alpha": 1.0}

    def function(self, attrs, x):
        return np.where(x < 0, attrs["alpha"] * np.expm1(np.minimum(x, 0.0)), x)


class Softplus(FunctionOp):
    name = "Softplus"
    onnx_ops = ("Softplus",)

    def function(self, attrs, x):
        return np.logaddexp(0.0, x)


class HardSigmoid(FunctionOp):
    name = "HardSigmoid"
    onnx_ops = ("HardSigmoid",)
    defaults = {"alpha": 0.2, "beta": 0.5}

    def function(self, attrs, x):
        return np.clip(attrs["alpha"] * x + attrs["beta"], 0.0, 1.0)


register(Sigmoid())
for _op in (Tanh, Selu, Elu, Softplus, HardSigmoid):
    register(_op())
