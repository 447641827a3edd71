"""Elementwise activations computed from a table of the function. Hardware for all of them:
:class:`~hetero.hw.common.LaneTable`, one synchronous ROM per lane read in one register stage
(latency ``beats``, interval ``beats``); the ROM holds exactly the reference's values.

Sigmoid of plain fixed point, through a binned table over [-8, 8): ``index = floor((x + 8) * N /
16)`` clamped to [0, N-1], ``y = table[index]`` where the table holds sigmoid at each bin's centre
rounded to the output type (RND, SAT). N (``TableSize``, default 1024) is a power of two.
Error against the float sigmoid, over every value of the input type: at most half a bin's
slope (16/N/8) plus half an output LSB; measured over all 65536 values of ``fixed<16,6>`` into
``fixed<16,6>``: 0.00239 for N = 1024 (bound 0.00244), 0.00814 for N = 256 (bound 0.00830)
(tests/test_hw_elementwise.py asserts both).

Sigmoid of a model quantizer's integers (a scale or zero point), and Tanh, Selu, Elu, Softplus
and HardSigmoid (:class:`FunctionOp`): the float reference is the ONNX definition in float64
with the node's ``alpha``/``beta``/``gamma``. Typed, the output type is the config's ``result``
(Sigmoid: its own) and the output is the function, computed in float64 on the exact real value
of the raw input (``(raw - zero_point) * real_scale``), quantized to that type with its rounding
and overflow (:func:`~hetero.fixed.quantize`): a *full table*, one entry per raw input value
(:func:`full_table`; constant tails trimmed and reached by clamping the index). This is the one
place typed values go through floats, as the op is a table by nature. Its error against the float
function is the output's quantization alone: at most half an output LSB with a rounding type
(one LSB with TRN) wherever the function lies in the output's range; measured 0.000488 (half of
2**-10) for every function from ``fixed<10,4>`` and from int8 at scale 0.05 into ``fixed<16,6,RND>``
(asserted in the test). Hardware only for tables of at most :data:`FULL_TABLE_MAX` entries: the
input must be narrow (8-bit model integers need at most 256; from ``fixed<16,6>`` tanh needs 8519
and is refused, naming the node).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Mux

from ..errors import UserError
from ..fixed import FixedType, quantize
from ..hw.common import LaneTable, stream_cycles, stream_layout
from ..hw.fixed_hw import shape_of
from ..ir import Tensor
from ..onnx_import import attr
from .base import Op, register

RANGE = 8.0  # the table covers [-RANGE, RANGE)
FULL_TABLE_INPUT_BITS = 20  # widest input whose every value a table is computed for
FULL_TABLE_MAX = 4096  # most entries of a full table in hardware (per lane)


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
        layout = stream_layout(graph, node.inputs[0])
        if t_in.scale is not None or t_in.zero_point:
            return full_table_hw(node, t_in, t_out.dtype, layout.lanes, sigmoid)
        size = node.attrs["table_size"]
        shift = index_shift(size, t_in.dtype.frac_bits)

        def index(x):
            idx = ((x << shift) if shift >= 0 else (x >> -shift)) + size // 2
            return Mux(idx < 0, 0, Mux(idx > size - 1, size - 1, idx))

        return LaneTable(shape_of(t_in.dtype), shape_of(t_out.dtype), layout.lanes,
                         node.params["table"], index)

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def full_table(t_in: Tensor, t_out: FixedType, f) -> tuple[int, np.ndarray]:
    """``(first, values)``: the typed reference of ``f`` (``quantize(f(real input), t_out)``) at
    every raw input ``first <= x < first + len(values)``; inputs beyond either end give the
    value at that end (the constant tails are trimmed off)."""
    if t_in.dtype.width > FULL_TABLE_INPUT_BITS:
        raise ValueError(f"input of {t_in.dtype.width} bits: too wide for a table of every value")
    raw = np.arange(t_in.dtype.min_raw, t_in.dtype.max_raw + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        vals = quantize(f(t_in.to_real(raw)), t_out)
    changes = np.flatnonzero(vals[1:] != vals[:-1])
    if changes.size == 0:
        return int(raw[0]), vals[:1]
    a, b = int(changes[0]), int(changes[-1]) + 1
    return int(raw[a]), vals[a:b + 1]


def full_table_hw(node, t_in: Tensor, t_out: FixedType, lanes: int, f) -> LaneTable:
    """A ROM per lane holding :func:`full_table` (at most :data:`FULL_TABLE_MAX` entries)."""
    wide = t_in.dtype.width > FULL_TABLE_INPUT_BITS
    first, values = (0, None) if wide else full_table(t_in, t_out, f)
    if wide or len(values) > FULL_TABLE_MAX:
        raise UserError(f"{node.source}: a table of this function over every value of its "
                        f"{t_in.dtype.width}-bit input would need more than {FULL_TABLE_MAX} "
                        "entries; give its input a narrower type")
    last = first + len(values) - 1

    def index(x):
        return Mux(x < first, 0, Mux(x > last, last - first, x - first))

    return LaneTable(shape_of(t_in.dtype), shape_of(t_out), lanes, values, index)


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

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        return full_table_hw(node, t_in, t_out.dtype, stream_layout(graph, node.inputs[0]).lanes,
                             lambda x: self.function(node.attrs, x))

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)


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
