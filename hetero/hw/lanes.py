"""Stream components and helpers shared by the elementwise, merge and data-movement ops.

Every component here follows :mod:`hetero.hw.stream`: a tensor is ``beats`` beats of ``lanes``
lanes, lane ``k`` of an image beat being channel ``k``. Elementwise components do not need to
know the beat count (each beat is computed alone); their cycle model does
(:func:`stream_cycles`).

* :class:`LaneMap`: one input stream, ``o.payload[k] = f(i.payload[k], k)``, one register stage
  (``en = ~o.valid | o.ready``, the same stall rule as every layer): latency ``beats``,
  interval ``beats``.
* :class:`LaneTable`: ``o.payload[k] = table[index(i.payload[k])]``, a ROM per lane read in the
  one register stage: same cycles.
* :class:`LaneJoin`: several input streams whose beats move together (a beat leaves only when
  every input offers one; the top level adds the FIFOs that balance branches), ``o.payload =
  f(payloads)``, one register stage: same cycles.
* :class:`Regroup`: a whole tensor collected and sent out in other beats (image to vector,
  vector to image, transposes that move data between beats).
* :class:`Passthrough`: a wire (reshapes that keep the beats): latency ``beats - 1``.

Layouts: :func:`stream_layout` gives a tensor's :class:`~hetero.hw.stream.StreamLayout`;
:func:`lane_values` turns a per-channel constant into one value per lane.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
from amaranth.hdl import Array, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.ir.graph import Graph, Node, Tensor
from hetero.ir.quant import Requant
from hetero.hw.cycles import Cycles
from hetero.hw.fixed_hw import shape_of, vector_stream
from hetero.hw.stream import StreamLayout, tensor_layouts
from hetero.hw.cost import Family, Resources, coeffs

__all__ = ["lanes_stream", "stream_layout", "is_channels_last", "lane_values", "lane_requants",
           "centred_range", "stream_cycles",
           "LaneMap", "LaneTable", "LaneJoin", "Regroup", "regroup_source",
           "Passthrough", "register_stage", "moves", "movement_hardware", "movement_cycles",
           "movement_resources"]

def register_stage(m: Module, i, o) -> Signal:
    """The handshake of a one-register stage from stream ``i`` to ``o``: returns ``en``, high
    when the output register may load (empty, or its beat is being taken); ``i`` is ready then
    and ``o.valid`` loads ``i.valid``. The caller loads the payload under ``m.If(en)``."""
    en = Signal()
    m.d.comb += [en.eq(~o.valid | o.ready), i.ready.eq(en)]
    with m.If(en):
        m.d.sync += o.valid.eq(i.valid)
    return en


def lanes_stream(shape: Shape, lanes: int) -> stream.Signature:
    """A stream whose payload is ``lanes`` values of the Amaranth ``shape``."""
    return stream.Signature(data.ArrayLayout(shape, lanes))


def is_channels_last(graph: Graph, name: str) -> bool:
    """Whether tensor ``name`` is laid out channels-last (:func:`hetero.hw.stream.tensor_layouts`)."""
    return tensor_layouts(graph)[name].channels_last


def stream_layout(graph: Graph, name: str) -> StreamLayout:
    """How tensor ``name`` streams (:func:`hetero.hw.stream.tensor_layouts`)."""
    return tensor_layouts(graph)[name]


def lane_values(values: np.ndarray, shape: tuple[int, ...], layout: StreamLayout,
                node: Node, what: str) -> np.ndarray:
    """``values`` (broadcastable to the per-inference ``shape``) as one value per lane; raises
    UserError naming ``node`` if they differ between beats (not per channel)."""
    full = np.broadcast_to(np.asarray(values), shape)
    beats = full.reshape(-1)[layout.order(tuple(shape))]
    if not np.all(beats == beats[:1]):
        raise UserError(f"{node.source}: {what} varies along the spatial axes; the hardware "
                        "supports one value per channel")
    return beats[0]


def lane_requants(rq: Requant, shape: tuple[int, ...], layout: StreamLayout, node: Node) -> list[Requant]:
    """``rq`` (its ``mult``/``add`` broadcastable to ``shape``) as one scalar Requant per lane."""
    mult = lane_values(rq.mult, shape, layout, node, "the scale")
    add = lane_values(rq.add, shape, layout, node, "the offset")
    return [replace(rq, mult=np.int64(m), add=np.int64(a)) for m, a in zip(mult, add)]


def centred_range(t: Tensor) -> tuple[int, int]:
    """The range of ``raw - zero_point`` over the raw values of typed tensor ``t``."""
    return t.dtype.min_raw - t.zero_point, t.dtype.max_raw - t.zero_point


def stream_cycles(beats: int, stages: int = 1):
    """:class:`~hetero.hw.cycles.Cycles` of a unit that takes one beat per cycle through
    ``stages`` register stages."""
    return Cycles(beats - 1 + stages, beats)


LaneFn = Callable[[Value, int], Value]


class LaneMap(wiring.Component):
    """``o.payload[k] = fn(i.payload[k], k)`` on every beat, through one register stage."""

    def __init__(self, in_shape: Shape, out_shape: Shape, lanes: int, fn: LaneFn):
        self.lanes, self.fn = lanes, fn
        super().__init__({"i": In(lanes_stream(in_shape, lanes)), "o": Out(lanes_stream(out_shape, lanes))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = register_stage(m, self.i, self.o)
        with m.If(en):
            for k in range(self.lanes):
                m.d.sync += self.o.payload[k].eq(self.fn(self.i.payload[k], k))
        return m


class LaneTable(wiring.Component):
    """``o.payload[k] = values[index(i.payload[k])]``: one synchronous ROM of ``values`` per
    lane, read in the one register stage (``index`` must stay within the table)."""

    def __init__(self, in_shape: Shape, out_shape: Shape, lanes: int, values: np.ndarray,
                 index: Callable[[Value], Value]):
        self.lanes, self.values, self.index = lanes, [int(v) for v in values], index
        self.out_shape = out_shape
        super().__init__({"i": In(lanes_stream(in_shape, lanes)), "o": Out(lanes_stream(out_shape, lanes))})

    def elaborate(self, platform) -> Module:
        m = Module()
        en = register_stage(m, self.i, self.o)
        for k in range(self.lanes):
            rom = Memory(shape=self.out_shape, depth=len(self.values), init=self.values)
            m.submodules[f"table_{k}"] = rom
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.en.eq(en), rd.addr.eq(self.index(self.i.payload[k])),
                         self.o.payload[k].eq(rd.data)]
        return m


class LaneJoin(wiring.Component):
    """Inputs ``i0``, ``i1``, ... joined beat by beat: ``o.payload[k] = fn(ins, k)`` where
    ``ins`` are the input payloads; a beat moves only when every input offers one. One register
    stage."""

    def __init__(self, in_shapes: Sequence[Shape], in_lanes: Sequence[int], out_shape: Shape,
                 out_lanes: int, fn: Callable[[list, int], Value]):
        self.n_in, self.out_lanes, self.fn = len(in_shapes), out_lanes, fn
        ports = {f"i{k}": In(lanes_stream(s, n)) for k, (s, n) in enumerate(zip(in_shapes, in_lanes))}
        ports["o"] = Out(lanes_stream(out_shape, out_lanes))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        ins = [getattr(self, f"i{k}") for k in range(self.n_in)]
        en, all_valid = Signal(), Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready),
                     all_valid.eq(_and([p.valid for p in ins]))]
        for p in ins:
            m.d.comb += p.ready.eq(en & all_valid)
        payloads = [p.payload for p in ins]
        with m.If(en):
            m.d.sync += self.o.valid.eq(all_valid)
            for k in range(self.out_lanes):
                m.d.sync += self.o.payload[k].eq(self.fn(payloads, k))
        return m


class Regroup(wiring.Component):
    """A whole tensor regrouped into other beats: collects its ``in_beats`` beats, then emits
    ``out_beats`` beats where output lane ``l`` of beat ``b`` is input element ``src[b][l]``
    (``(beat, lane)`` of the input). The next tensor's first beat is taken with the last output
    beat: latency and interval ``in_beats + out_beats - 1``. A register per element."""

    def __init__(self, shape: Shape, in_beats: int, in_lanes: int, src: np.ndarray):
        src = np.asarray(src)
        self.in_beats, self.in_lanes = in_beats, in_lanes
        self.out_beats, self.out_lanes = src.shape[0], src.shape[1]
        self.src, self.shape = src, shape
        super().__init__({"i": In(lanes_stream(shape, in_lanes)),
                          "o": Out(lanes_stream(shape, self.out_lanes))})

    def elaborate(self, platform) -> Module:
        m = Module()
        buf = [[Signal(self.shape, name=f"buf_{b}_{k}") for k in range(self.in_lanes)]
               for b in range(self.in_beats)]
        n_in, n_out = self.in_beats, self.out_beats
        count_in = Signal(range(max(2, n_in)))
        count_out = Signal(range(max(2, n_out)))
        full = Signal()
        last_out = Signal()
        m.d.comb += [last_out.eq(count_out == n_out - 1), self.o.valid.eq(full),
                     self.i.ready.eq(~full | (self.o.ready & last_out))]
        take = self.i.valid & self.i.ready
        give = self.o.valid & self.o.ready
        with m.If(take):
            for b in range(n_in):
                with m.If(count_in == b):
                    m.d.sync += [buf[b][k].eq(self.i.payload[k]) for k in range(self.in_lanes)]
            m.d.sync += count_in.eq(Mux(count_in == n_in - 1, 0, count_in + 1))
        with m.If(give):
            m.d.sync += count_out.eq(Mux(last_out, 0, count_out + 1))
        with m.If(take & (count_in == n_in - 1)):
            m.d.sync += full.eq(1)
        with m.Elif(give & last_out):
            m.d.sync += full.eq(0)
        for k in range(self.out_lanes):
            choices = [buf[int(self.src[b, k, 0])][int(self.src[b, k, 1])] for b in range(n_out)]
            m.d.comb += self.o.payload[k].eq(choices[0] if n_out == 1 else Array(choices)[count_out])
        return m


def regroup_source(in_order: np.ndarray, out_order: np.ndarray, src_flat: np.ndarray) -> np.ndarray:
    """For :class:`Regroup`: ``[out_beats, out_lanes, 2]`` input positions, from the stream
    orders (:meth:`StreamLayout.order`) of input and output and ``src_flat`` (the input's flat
    index of each output flat index)."""
    where = np.empty((in_order.size, 2), dtype=np.int64)
    b, k = np.indices(in_order.shape)
    where[in_order.reshape(-1)] = np.stack([b.reshape(-1), k.reshape(-1)], axis=1)
    return where[np.asarray(src_flat)[out_order]]


def moves(graph: Graph, node: Node, src_flat: np.ndarray):
    """``(input tensor, input layout, output layout, Regroup source, wire)`` of data movement
    ``src_flat`` (see :func:`movement_hardware`); ``wire``: every element keeps its beat and
    lane."""
    t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    lin, lout = stream_layout(graph, node.inputs[0]), stream_layout(graph, node.outputs[0])
    src = regroup_source(lin.order(t_in.shape), lout.order(t_out.shape), src_flat)
    b, k = np.indices((lout.beats, lout.lanes))
    wire = (lin.beats, lin.lanes) == (lout.beats, lout.lanes) and \
        np.array_equal(src, np.stack([b, k], axis=-1))
    return t_in, lin, lout, src, wire


def movement_hardware(graph: Graph, node: Node, src_flat: np.ndarray) -> wiring.Component:
    """Hardware of data movement (reshape, transpose): ``src_flat[j]`` is the input's flat
    index of output flat index ``j``. A wire when every element keeps its beat and lane,
    else a :class:`Regroup`."""
    t_in, lin, lout, src, wire = moves(graph, node, src_flat)
    if wire:
        return Passthrough(t_in.dtype, lin.lanes)
    return Regroup(shape_of(t_in.dtype), lin.beats, lin.lanes, src)


def movement_cycles(graph: Graph, node: Node, src_flat: np.ndarray):
    """Cycles of :func:`movement_hardware`."""
    t_in, lin, lout, src, wire = moves(graph, node, src_flat)
    if wire:
        return stream_cycles(lin.beats, 0)
    n = lin.beats + lout.beats - 1
    return Cycles(n, n)


def movement_resources(graph: Graph, node: Node, src_flat: np.ndarray, family: Family) -> Resources:
    """Estimated resources of :func:`movement_hardware`: nothing for a wire, else a Regroup
    buffering the input tensor (its bits as FFs) and muxing it onto the output lanes:
    ``regroup_lut_per_bit`` per output lane bit and extra beat to choose from, plus the beat
    counters."""
    t_in, lin, lout, src, wire = moves(graph, node, src_flat)
    if wire:
        return Resources()
    bits = lin.beats * lin.lanes * t_in.dtype.width
    c = coeffs(family)
    mux = lout.lanes * t_in.dtype.width * max(lout.beats - 1, 0)
    return Resources(lut=c["regroup_lut_per_bit"] * mux + 20, ff=bits + 16)


def _and(values: list) -> Value:
    out = Value.cast(values[0])
    for v in values[1:]:
        out = out & v
    return out


class Passthrough(wiring.Component):
    """Wires a vector stream through unchanged (reshapes: the payload is already flat)."""

    def __init__(self, t: FixedType, n: int):
        super().__init__({"i": In(vector_stream(t, n)), "o": Out(vector_stream(t, n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready)]
        return m
