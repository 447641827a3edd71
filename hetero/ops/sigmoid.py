"""Elementwise activations computed from tables of the function. Two forms, chosen by the
input's type; both give the reference's values bit for bit in hardware, one register stage per
beat (latency ``beats``, interval ``beats``).

**Plain fixed point** (hls4ml's semantics, no model quantizer scale): a *binned table* of ``N``
entries (``TableSize``, default 1024, a power of two >= 16) over a fixed input range
``[lo, lo + span)`` (``span`` a power of two): ``index = floor((x - lo) * N / span)`` clamped to
``[0, N-1]``, ``y = table[index]``, the table holding the function at each bin's centre rounded
to the output type (RND, SAT). Inputs beyond the range take the end entries, except where a
function is a line there (Softplus, Elu, Selu to the right): those compute the line
``y = slope * x`` exactly as an integer requantization to the output type (its rounding and
overflow). Per function (hls4ml's ranges; hls4ml clamps Softplus at ``softplus(8)`` instead):

=============  ================  ===========================================
function       table range       beyond it
=============  ================  ===========================================
Sigmoid        [-8, 8)           end entries
Tanh           [-4, 4)           end entries
Softplus       [-8, 8)           x >= 8: ``y = x``
Elu            [-8, 0)           x >= 0: ``y = x``; x < -8: first entry
Selu           [-8, 0)           x >= 0: ``y = gamma' * x``; x < -8: first entry
HardSigmoid    none              ``y = clip(alpha' * x + beta, 0, 1)`` everywhere
=============  ================  ===========================================

``gamma'`` and ``alpha'`` are the node's ``gamma``/``alpha`` rounded to the fewest significant bits
(at least 8) that keep the coefficient's error within a quarter output LSB over the input's range
(hls4ml types them ``ap_ufixed<16,1>``, ``ap_ufixed<16,0>``; 18 bits from ``fixed<16,6>`` into
``fixed<16,6>``); the clip bounds of HardSigmoid are the output type's values of 0 and 1. Error against the float function: at most half a bin
times the function's largest slope over the table range (Sigmoid 0.25, Tanh 1, Softplus 1,
Elu ``alpha``, Selu ``gamma * alpha``) or the function's change beyond the range, whichever is
larger, plus half an output LSB; on the lines three quarters of an output LSB (the rounding and
the coefficient's). Measured over all 65536 values of ``fixed<16,6>`` into
``fixed<16,6>`` (where the output type holds the function) with N = 1024 (N = 256):
Sigmoid 0.00239 (0.00814), Tanh 0.00434 (0.0159), Softplus 0.00829 (0.0317),
Elu(alpha = 0.3) 0.00158 (0.00459), Selu 0.00691 (0.0267), HardSigmoid 0.00039 (no table);
tests/test_hw_elementwise.py asserts them and the bound.

**Model-quantized tensors** (a scale or zero point): a *full table*, one entry per raw input
value (:func:`full_table`; constant tails trimmed and reached by clamping the index), of the
function computed in float64 on the exact real value of the raw input
(``(raw - zero_point) * real_scale``) and quantized to the output type with its rounding and
overflow (:func:`~hetero.ir.fixed.quantize`). The float reference is the ONNX definition in
float64 with the node's ``alpha``/``beta``/``gamma``. Its error against the float function is
the output's quantization alone: at most half an output LSB with a rounding type (one LSB with
TRN) wherever the function lies in the output's range; measured 0.000488 (half of 2**-10) for
every function from int8 at scale 0.05 into ``fixed<16,6,RND>`` (asserted in the test).
Hardware only for tables of at most :data:`FULL_TABLE_MAX` entries (8-bit model integers need
at most 256); wider inputs are refused, naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hetero.errors import UserError
from hetero.ir.fixed import FixedType, quantize
from hetero.hw.lanes import LaneMap, LaneTable, lanes_stream, register_stage, stream_cycles, stream_layout
from hetero.hw.fixed_hw import shape_of
from hetero.hw.requant_hw import requant_expr
from hetero.ir.graph import Tensor
from hetero.ops.onnx_context import attr
from hetero.ir.quant import AP_ROUNDING, Requant, make_requant
from hetero.ops.base import Op, register

FULL_TABLE_INPUT_BITS = 20  # widest input whose every value a table is computed for
FULL_TABLE_MAX = 4096  # most entries of a full table in hardware (per lane)


@dataclass(frozen=True)
class Binned:
    """A binned table over ``[lo, lo + span)`` (``span`` a power of two, ``lo`` a multiple of
    ``span / 2``); for ``x >= lo + span`` the line ``y = slope * x`` when ``slope`` is set,
    else the last entry."""

    lo: float
    span: float
    slope: float | None = None

    @property
    def hi(self) -> float:
        return self.lo + self.span


def round_coef(v: float, t_in: FixedType, t_out: FixedType) -> float:
    """``v`` rounded to the fewest significant bits (at least 8) that keep ``|v' - v| * |x|``
    within a quarter of ``t_out``'s LSB for every value ``x`` of ``t_in``."""
    if v == 0:
        return 0.0
    x_max = max(-t_in.min_raw, t_in.max_raw) * t_in.lsb
    bits = max(8, math.ceil(math.log2(x_max * abs(v) * 4 / t_out.lsb)))
    m, e = math.frexp(v)
    return math.ldexp(round(math.ldexp(m, bits)), e - bits)


def bin_table(f: Callable[[np.ndarray], np.ndarray], b: Binned, size: int, t_out: FixedType) -> np.ndarray:
    """Raw output values of the table (``size`` entries): ``f`` at each bin's centre, RND, SAT."""
    centres = b.lo + (np.arange(size) + 0.5) * (b.span / size)
    return quantize(f(centres), t_out.with_modes("RND", "SAT"))


def _bin_shift(b: Binned, size: int, frac_bits: int) -> int:
    """Left shift (negative: right) taking a raw input to ``(x - lo) * size / span`` minus its
    constant part :func:`_bin_base`."""
    return int(math.log2(size)) - int(math.log2(b.span)) - frac_bits


def _bin_base(b: Binned, size: int) -> int:
    return int(round(-b.lo * size / b.span))


def bin_index(x, b: Binned, size: int, frac_bits: int):
    """``floor((x - lo) * size / span)`` of raw inputs ``x`` (numpy array or Amaranth value),
    clamped to ``[0, size - 1]``."""
    shift = _bin_shift(b, size, frac_bits)
    idx = ((x << shift) if shift >= 0 else (x >> -shift)) + _bin_base(b, size)
    if isinstance(x, np.ndarray):
        return np.clip(idx, 0, size - 1)
    return Mux(idx < 0, 0, Mux(idx > size - 1, size - 1, idx))


def line_start(b: Binned, frac_bits: int) -> int:
    """The smallest raw input at or beyond the table's right end."""
    return math.ceil(math.ldexp(b.hi, frac_bits))


def line_requant(slope: float, offset: float, t_in: FixedType, t_out: FixedType,
                 clip: tuple[float, float] | None = None) -> Requant:
    """``y = slope' * x + offset`` from raw ``t_in`` values to raw ``t_out`` values, exactly:
    ``t_out``'s rounding, then ``clip`` (reals, as ``t_out`` values) or ``t_out``'s overflow;
    ``slope'`` is ``slope`` rounded by :func:`round_coef`."""
    ratio = round_coef(slope, t_in, t_out) * t_in.lsb / t_out.lsb
    if clip is None:
        from hetero.ir.quant import requant_to_fixed

        return requant_to_fixed(ratio, offset / t_out.lsb, t_out, in_bits=t_in.width + 1)
    lo, hi = (int(quantize(v, t_out)) for v in clip)
    return make_requant(ratio, offset / t_out.lsb, lo, hi, AP_ROUNDING[t_out.rounding],
                        in_bits=t_in.width + 1)


def _model_scaled(t: Tensor) -> bool:
    return t.scale is not None or bool(t.zero_point)


def _table_size(node, cfg) -> int:
    size = cfg.table_size or 1024
    if size & (size - 1) or size < 16:
        raise UserError(f"{node.source}: TableSize {size} must be a power of two >= 16")
    return size


class TableActivation(Op):
    """An elementwise function of one tensor computed as described above. Subclasses give the
    float ``function`` and, for plain fixed point, its :class:`Binned` form (``binned``; None
    for :meth:`line` everywhere)."""

    layer_types = ("Activation",)
    defaults: dict[str, float] = {}

    def function(self, attrs, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def binned(self, attrs) -> Binned | None:
        raise NotImplementedError

    def line(self, attrs, t_in: FixedType, t_out: FixedType) -> Requant:
        """The line of the plain form beyond the table (or everywhere, without a table)."""
        return line_requant(self.binned(attrs).slope, 0.0, t_in, t_out)

    def table_slope(self, attrs) -> float:
        """The function's largest slope over the binned table's range."""
        return 1.0

    def table_error(self, node) -> float:
        """Half a bin of the binned table (plain fixed point) times :meth:`table_slope`; 0 for
        a full table or no table (only the output's rounding)."""
        b = self.binned(node.attrs)
        if b is None or "table_size" not in node.attrs:
            return 0.0
        return b.span / int(node.attrs["table_size"]) / 2 * self.table_slope(node.attrs)

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        attrs = {k: float(np.float32(attr(node, k, v))) for k, v in self.defaults.items()}  # ONNX: float32
        ctx.add(node, self.name, [x], [node.output[0]], [ctx.shape(x)], attrs=attrs)

    def output_type(self, cfg) -> FixedType:
        return cfg.type_of("result")

    def assign_types(self, node, inputs, outputs, cfg):
        t_out = self.output_type(cfg)
        out = replace(outputs[0], dtype=t_out, scale=None, zero_point=0, integer=False)
        b = self.binned(node.attrs)
        if b is None:
            return node, [out]
        size = _table_size(node, cfg)
        table = bin_table(lambda v: self.function(node.attrs, v), b, size, t_out)
        return node.evolve(attrs={"table_size": size}, params={"table": table}), [out]

    def reference(self, node, graph, inputs):
        t_in = graph.tensors[node.inputs[0]]
        if t_in.dtype is None:
            return [self.function(node.attrs, np.asarray(inputs[0], dtype=np.float64))]
        t_out = graph.tensors[node.outputs[0]].dtype
        x = np.asarray(inputs[0], dtype=np.int64)
        if _model_scaled(t_in):  # the exact function (a full table in hardware)
            with np.errstate(over="ignore"):
                return [quantize(self.function(node.attrs, t_in.to_real(x)), t_out)]
        b = self.binned(node.attrs)
        if b is None:
            return [self.line(node.attrs, t_in.dtype, t_out)(x)]
        y = node.params["table"][bin_index(x, b, node.attrs["table_size"], t_in.dtype.frac_bits)]
        if b.slope is not None:
            rq = self.line(node.attrs, t_in.dtype, t_out)
            y = np.where(x >= line_start(b, t_in.dtype.frac_bits), rq(x), y)
        return [y]

    def hardware(self, node, graph):
        t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]].dtype
        lanes = stream_layout(graph, node.inputs[0]).lanes
        if _model_scaled(t_in):
            return full_table_hw(node, t_in, t_out, lanes, lambda v: self.function(node.attrs, v))
        b, f = self.binned(node.attrs), t_in.dtype.frac_bits
        shape_in, shape_out = shape_of(t_in.dtype), shape_of(t_out)
        if b is None:
            rq = self.line(node.attrs, t_in.dtype, t_out)
            return LaneMap(shape_in, shape_out, lanes, lambda x, k: requant_expr(x, rq))
        size, table = node.attrs["table_size"], node.params["table"]
        index = lambda x: bin_index(x, b, size, f)  # noqa: E731
        if b.slope is None:
            return LaneTable(shape_in, shape_out, lanes, table, index)
        rq = self.line(node.attrs, t_in.dtype, t_out)
        return TableOrLine(shape_in, shape_out, lanes, table, index, line_start(b, f),
                           lambda x: requant_expr(x, rq))

    def cycles(self, node, graph):
        return stream_cycles(stream_layout(graph, node.inputs[0]).beats)

    def hls(self, node, graph):
        """hetero_activation.h ``table_activation``: the reference's binned table (and line), or
        the full table of every raw input of a model-quantized tensor."""
        from hetero.hw.hls_binding import HlsCall, int_array, no_requant, requant_config

        t_in = graph.tensors[node.inputs[0]]
        t_out = graph.tensors[node.outputs[0]].dtype
        cfg = {"n": t_in.size, "binned": True, "first": 0, "bin_shift": 0, "bin_base": 0,
               "has_line": False, "line_start": 0}
        line, line_arrays = no_requant("line_")
        if _model_scaled(t_in):
            if t_in.dtype.width > FULL_TABLE_INPUT_BITS:
                return None
            first, table = full_table(t_in, t_out, lambda v: self.function(node.attrs, v))
            cfg.update(binned=False, first=first, table_size=len(table))
        else:
            b = self.binned(node.attrs)
            frac = t_in.dtype.frac_bits
            table = node.params["table"] if b is not None else [0]
            size = node.attrs["table_size"] if b is not None else 0
            cfg["table_size"] = size
            if b is not None:
                cfg.update(bin_shift=_bin_shift(b, size, frac), bin_base=_bin_base(b, size))
            if b is None or b.slope is not None:
                line, line_arrays = requant_config(self.line(node.attrs, t_in.dtype, t_out), "line_")
                cfg.update(has_line=True, line_start=0 if b is None else line_start(b, frac))
        return HlsCall("table_activation", "hetero_activation.h", cfg, nested={"line": line},
                       arrays=(("table", int_array(table)),) + line_arrays)


class TableOrLine(wiring.Component):
    """``o.payload[k] = line(x) if x >= start else table[index(x)]`` (``x = i.payload[k]``):
    a synchronous ROM per lane read in the one register stage, beside the registered line."""

    def __init__(self, in_shape, out_shape, lanes: int, values: np.ndarray,
                 index: Callable[[Value], Value], start: int, line: Callable[[Value], Value]):
        self.lanes, self.values, self.index = lanes, [int(v) for v in values], index
        self.start, self.line, self.out_shape = start, line, out_shape
        super().__init__({"i": In(lanes_stream(in_shape, lanes)), "o": Out(lanes_stream(out_shape, lanes))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = register_stage(m, self.i, self.o)
        for k in range(self.lanes):
            x = self.i.payload[k]
            rom = Memory(shape=self.out_shape, depth=len(self.values), init=self.values)
            m.submodules[f"table_{k}"] = rom
            rd = rom.read_port(domain="sync")
            on_line, value = Signal(name=f"on_line_{k}"), Signal(self.out_shape, name=f"line_{k}")
            with m.If(en):
                m.d.sync += [on_line.eq(x >= self.start), value.eq(self.line(x))]
            m.d.comb += [rd.en.eq(en), rd.addr.eq(self.index(x)),
                         self.o.payload[k].eq(Mux(on_line, value, rd.data))]
        return m


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


class Sigmoid(TableActivation):
    name = "Sigmoid"
    onnx_ops = ("Sigmoid",)

    def import_onnx(self, node, ctx) -> None:
        ctx.add(node, self.name, [node.input[0]], [node.output[0]], [ctx.shape(node.input[0])])

    def function(self, attrs, x):
        return sigmoid(x)

    def binned(self, attrs):
        return Binned(-8.0, 16.0)

    def table_slope(self, attrs):
        return 0.25


class Tanh(TableActivation):
    name = "Tanh"
    onnx_ops = ("Tanh",)

    def function(self, attrs, x):
        return np.tanh(x)

    def binned(self, attrs):
        return Binned(-4.0, 8.0)


class Selu(TableActivation):
    name = "Selu"
    onnx_ops = ("Selu",)
    defaults = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}

    def function(self, attrs, x):
        neg = attrs["alpha"] * np.expm1(np.minimum(x, 0.0))
        return attrs["gamma"] * np.where(x > 0, x, neg)

    def binned(self, attrs):
        return Binned(-8.0, 8.0, attrs["gamma"])

    def table_slope(self, attrs):
        return abs(attrs["gamma"] * attrs["alpha"])


class Elu(TableActivation):
    name = "Elu"
    onnx_ops = ("Elu",)
    defaults = {"alpha": 1.0}

    def function(self, attrs, x):
        return np.where(x < 0, attrs["alpha"] * np.expm1(np.minimum(x, 0.0)), x)

    def binned(self, attrs):
        return Binned(-8.0, 8.0, 1.0)

    def table_slope(self, attrs):
        return abs(attrs["alpha"])


class Softplus(TableActivation):
    name = "Softplus"
    onnx_ops = ("Softplus",)

    def function(self, attrs, x):
        return np.logaddexp(0.0, x)

    def binned(self, attrs):
        return Binned(-8.0, 16.0, 1.0)


class HardSigmoid(TableActivation):
    name = "HardSigmoid"
    onnx_ops = ("HardSigmoid",)
    defaults = {"alpha": 0.2, "beta": 0.5}

    def function(self, attrs, x):
        return np.clip(attrs["alpha"] * x + attrs["beta"], 0.0, 1.0)

    def binned(self, attrs):
        return None

    def line(self, attrs, t_in, t_out):
        return line_requant(attrs["alpha"], attrs["beta"], t_in, t_out, clip=(0.0, 1.0))


for _op in (Sigmoid, Tanh, Selu, Elu, Softplus, HardSigmoid):
    register(_op())
