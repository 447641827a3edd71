"""The top level: the graph's layer components joined by streams behind AXI4-Stream ports.

What runs in hardware (:func:`hardware_part`): every node after the model's input quantizer.
The host computes the float prefix (FINN's input scaling, ...) and the input quantizer and
sends integers; the hardware's input is the quantizer's output (or the typed graph input).

Streams follow :mod:`hetero.hw.stream`. A tensor read by several layers goes through a
:class:`Fork`; every input of a layer that joins branches (Add, Concat, ...) gets a FIFO deep
enough to hold what the other branches delay (from the cycle models), so residual branches
never deadlock; an image between two layers passes a FIFO of a row, so bursty layers do not
stall each other. The design keeps the interval of its slowest layer.

Ports (Verilog names): ``clk``, ``rst`` (synchronous, active high), ``s_axis_tdata``,
``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast`` (ignored: the design counts beats),
``m_axis_tdata``, ``m_axis_tvalid``, ``m_axis_tready``, ``m_axis_tlast`` (high on the last beat
of each inference). A beat carries one stream beat: lane ``k`` at bits ``[k*W +: W]`` as a raw
two's complement (or unsigned) value of the tensor's fixed-point type. With ``probes=True`` two
more outputs, ``probe_valid`` and ``probe_ready``, show every internal stream's handshake (bit
``k`` is stream ``Top.stream_names[k]``) so a simulator can name where a pipeline stalls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amaranth.back import verilog
from amaranth.hdl import Module, Signal, Value
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..ir import Graph, Node
from ..ops import op_of
from ..ops.base import Cycles
from . import beats
from .stream import StreamLayout, tensor_layouts

TOP_NAME = "hetero_top"
#: Smallest FIFO depth: Amaranth's SyncFIFOBuffered of depth 2 moves a beat every other cycle
#: when it runs full; from 4 on it keeps one beat per cycle.
MIN_FIFO = 4
#: Cycles a beat spends in an empty SyncFIFOBuffered (write, then its output register).
FIFO_LATENCY = 2


@dataclass(frozen=True)
class HardwarePart:
    """The nodes built into hardware (in graph order), its input and output tensors, and the
    nodes the host runs before it."""

    nodes: tuple[Node, ...]
    input: str
    output: str
    host: tuple[Node, ...]


#: Data-movement ops the host applies to the input while it writes the input buffer, rather
#: than a hardware layer buffering a whole image (tf2onnx's leading NHWC -> NCHW Transpose).
HOST_LAYOUT_OPS = ("Transpose", "Reshape")


def hardware_part(graph: Graph) -> HardwarePart:
    """Split ``graph`` into host nodes and the hardware. The host runs the nodes whose inputs
    are all untyped (float prefix, input quantizers), then any chain of :data:`HOST_LAYOUT_OPS`
    that is the only reader of what it computed (the layout in which it streams the input is
    the host's choice). Raises UserError where the hardware would need several input streams
    or the graph has several outputs."""
    host = [n for n in graph.nodes if all(graph.tensors[i].dtype is None for i in n.inputs)]
    host_out = set(graph.inputs) | {o for n in host for o in n.outputs}
    while True:
        names = {n.name for n in host}
        readers = [n for n in graph.nodes if n.name not in names and any(i in host_out for i in n.inputs)]
        if (len(readers) != 1 or readers[0].op not in HOST_LAYOUT_OPS
                or any(o in graph.outputs for o in readers[0].outputs)):
            break
        host.append(readers[0])
        host_out.update(readers[0].outputs)
    host = tuple(host)
    host_names = {n.name for n in host}
    hw = tuple(n for n in graph.nodes if n.name not in host_names)
    produced = {o for n in hw for o in n.outputs}
    sources = []
    for n in hw:
        for i in n.inputs:
            if i not in produced and i not in sources:
                sources.append(i)
    if len(graph.outputs) != 1:
        raise UserError(f"the model has {len(graph.outputs)} outputs; hardware is built for one")
    out = graph.outputs[0]
    if not hw:
        raise UserError("nothing to build in hardware: every node runs on the host")
    if len(sources) != 1:
        raise UserError(f"the hardware would need {len(sources)} input streams "
                        f"({', '.join(sources)}); only one is supported")
    for n in hw:
        for i in n.inputs:
            if graph.tensors[i].dtype is None:
                raise UserError(f"{n.source}: its input '{i}' is not quantized (no type)")
    return HardwarePart(hw, sources[0], out, host)


def path_latency(graph: Graph, part: HardwarePart,
                 cycles: dict[str, Cycles] | None = None) -> dict[str, int]:
    """Longest sum of layer latencies (cycle models, plus :data:`FIFO_LATENCY` into a join)
    from the hardware input to every tensor: exact for one-beat layers, an upper bound where
    layers stream several beats (a layer starts on the first beat its producer gives, not the
    last). Sizes the join FIFOs (:func:`fifo_depth`); the network's latency is
    :func:`beat_schedule`'s."""
    delay = {part.input: 0}
    for n in part.nodes:
        c = cycles[n.name] if cycles else op_of(n).cycles(n, graph)
        start = max(delay[i] for i in n.inputs) + (FIFO_LATENCY if len(n.inputs) > 1 else 0)
        for o in n.outputs:
            delay[o] = start + c.latency
    return delay


def fifo_depth(graph: Graph, part: HardwarePart, layouts: dict[str, StreamLayout],
               delay: dict[str, int], tensor: str, consumer: Node) -> int:
    """Depth of the FIFO :class:`Top` puts where ``consumer`` reads ``tensor`` (0: none).

    - A join (a consumer of several streams) buffers each input against the others: the
      difference of their path latencies (``delay``, :func:`path_latency`) plus
      :data:`MIN_FIFO`, at most two images' beats plus :data:`MIN_FIFO` (the latencies are in
      cycles and an upper bound: folded layers space their beats out, and a branch that holds
      back a whole image lets at most one more in; resnet8's joins asked for 131,190 beats of
      a 1,024-beat image).
    - Between two layers streaming an image: the rows a sliding-window consumer spans before
      its first window (one row for other consumers) plus two, at most the image plus two.
      Layers that scan padding or fold take and give beats in bursts; without this slack two of
      them in a row stall each other below the slower one's interval (conv2d_small_mp: 968
      cycles instead of 729 with 4-deep FIFOs; sww-DSCNN, whose 1D images are one-pixel rows:
      85 instead of 69).
    - Nothing for one-beat tensors and for the hardware's input."""
    lay = layouts[tensor]
    if len(consumer.inputs) > 1:
        return min(max(delay[i] for i in consumer.inputs) - delay[tensor], 2 * lay.beats) + MIN_FIFO
    if tensor == part.input or lay.beats == 1:
        return 0
    shape = graph.tensors[tensor].shape
    row = shape[-2] if lay.channels_last else shape[-1]
    rows = 1
    if consumer.attrs.get("kernel_shape") and not consumer.attrs.get("global"):
        geo = op_of(consumer).window_geometry(consumer)
        rows = (geo.kernel[0] - 1) * geo.dilations[0] + 1
    return max(MIN_FIFO, min(lay.beats + 2, rows * row + 2))


def beat_schedule(graph: Graph, part: HardwarePart | None = None,
                  cycles: dict[str, Cycles] | None = None) -> dict[str, np.ndarray]:
    """Cycle each beat of one inference is offered on every tensor of the hardware, counted
    from the cycle the hardware takes its first input beat (:mod:`hetero.hw.beats`: the input
    offered from reset on, every component idle; a beat through a FIFO of :func:`fifo_depth`
    takes :data:`FIFO_LATENCY` cycles more, through a Fork none). ``cycles``: the nodes'
    :meth:`~hetero.ops.base.Op.cycles` where the caller has them."""
    part = part or hardware_part(graph)
    layouts = tensor_layouts(graph)
    delay = path_latency(graph, part, cycles)
    times = {part.input: np.zeros(layouts[part.input].beats, dtype=np.int64)}
    origin = 0
    for n in part.nodes:
        fifos = [fifo_depth(graph, part, layouts, delay, i, n) > 0 for i in n.inputs]
        arrivals = [beats.fifo(times[i], FIFO_LATENCY) if f else times[i]
                    for i, f in zip(n.inputs, fifos)]
        first, out = op_of(n).beat_times(n, graph, arrivals)
        if any(i == part.input and not f for i, f in zip(n.inputs, fifos)):
            origin = max(origin, first)  # a Fork lets the input beat go when all took it
        times[n.outputs[0]] = out
    return {t: v - origin for t, v in times.items()}


def cycle_model(graph: Graph, cycles: dict[str, Cycles] | None = None) -> dict[str, int]:
    """The design's interval (its slowest layer's, from the ops' cycle models) and latency
    (first input beat taken to last output beat offered, from :func:`beat_schedule`).
    ``cycles``: the nodes' :meth:`~hetero.ops.base.Op.cycles` where the caller has them."""
    part = hardware_part(graph)
    cycles = cycles or {n.name: op_of(n).cycles(n, graph) for n in part.nodes}
    interval = max(c.interval for c in cycles.values())
    latency = beat_schedule(graph, part, cycles)[part.output][-1]
    return {"latency": int(latency), "interval": int(interval)}


def port_names(node: Node) -> list[str]:
    """The input port names of a node's component: ``i``, or ``i0``, ``i1``, ..."""
    return ["i"] if len(node.inputs) == 1 else [f"i{k}" for k in range(len(node.inputs))]


class Fork(wiring.Component):
    """One stream to ``n`` consumers: each output takes every beat once, in its own time; the
    input moves on when every output has taken the beat (combinational, no storage)."""

    def __init__(self, width: int, n: int):
        self.n = n
        super().__init__({"i": In(stream.Signature(width)),
                          **{f"o{k}": Out(stream.Signature(width)) for k in range(n)}})

    def elaborate(self, platform) -> Module:
        m = Module()
        outs = [getattr(self, f"o{k}") for k in range(self.n)]
        done = [Signal(name=f"done{k}") for k in range(self.n)]  # took the current beat already
        finished = [d | (o.valid & o.ready) for d, o in zip(done, outs)]
        every = finished[0]
        for f in finished[1:]:
            every = every & f
        m.d.comb += self.i.ready.eq(every)
        for o, d, f in zip(outs, done, finished):
            m.d.comb += [o.payload.eq(self.i.payload), o.valid.eq(self.i.valid & ~d)]
            with m.If(self.i.valid & every):
                m.d.sync += d.eq(0)
            with m.Elif(self.i.valid):
                m.d.sync += d.eq(f)
        return m


@dataclass
class _Link:
    name: str
    src: object  # the producing stream interface (a component's Out port, or the top's input)
    dst: object  # the consuming stream interface


class Top(wiring.Component):
    """AXI4-Stream wrapper around the layer components of :func:`hardware_part`; see the
    module docstring. Attributes for test benches: ``input_tensor``, ``output_tensor``,
    ``in_layout``, ``out_layout``, ``in_type``, ``out_type``, ``stream_names``."""

    def __init__(self, graph: Graph, probes: bool = False):
        self.graph = graph
        self.part = part = hardware_part(graph)
        self.layouts = tensor_layouts(graph)
        self.layers: list[wiring.Component] = []
        try:  # every layer's component first: an op without hardware fails before any module exists
            for node in part.nodes:
                self.layers.append(op_of(node).hardware(node, graph))
        except Exception:
            for layer in self.layers:
                layer._MustUse__silence = True  # never elaborated: no "unused" warning for them
            raise
        self.input_tensor, self.output_tensor = part.input, part.output
        t_in, t_out = graph.tensors[part.input], graph.tensors[part.output]
        self.in_type, self.out_type = t_in.dtype, t_out.dtype
        self.in_layout: StreamLayout = self.layouts[part.input]
        self.out_layout: StreamLayout = self.layouts[part.output]
        self.in_width = self.in_layout.lanes * t_in.dtype.width
        self.out_width = self.out_layout.lanes * t_out.dtype.width
        self._plan()
        self.probes = probes
        self.stream_names = [link.name for link in self._links]
        ports = {
            "s_axis_tdata": In(self.in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.out_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        }
        if probes:
            ports.update(probe_valid=Out(len(self._links)), probe_ready=Out(len(self._links)))
        super().__init__(ports)

    # -- planning: forks, FIFOs and links ------------------------------------------------------
    def _plan(self) -> None:
        graph, part = self.graph, self.part
        names = {n.name: f"layer{k}_{n.op.lower()}" for k, n in enumerate(part.nodes)}
        comps = {n.name: c for n, c in zip(part.nodes, self.layers)}
        self._names = names
        self._forks: list[tuple[str, Fork]] = []
        self._fifos: list[tuple[str, fifo.SyncFIFOBuffered]] = []
        self._links: list[_Link] = []
        self._input = stream.Signature(self.in_width).flip().create()  # driven by s_axis
        self._output = stream.Signature(self.out_width).create()  # read by m_axis
        delay = self._path_latency()
        consumers: dict[str, list[tuple[Node, str]]] = {}
        for n in part.nodes:
            for name, port in zip(n.inputs, port_names(n)):
                consumers.setdefault(name, []).append((n, port))
        tensors = [part.input] + [o for n in part.nodes for o in n.outputs]
        for t in tensors:
            src = self._input if t == part.input else comps[graph.producer(t).name].o
            src_name = "input" if t == part.input else f"{names[graph.producer(t).name]}.o"
            dsts = [(f"{names[n.name]}.{port}", getattr(comps[n.name], port), n)
                    for n, port in consumers.get(t, [])]
            if t == part.output:
                dsts.append(("output", self._output, None))
            if not dsts:
                raise UserError(f"tensor '{t}' is computed in hardware but never used")
            width = self._width(t)
            if len(dsts) > 1:
                fork = Fork(width, len(dsts))
                fname = f"fork_{src_name.split('.')[0]}"
                self._forks.append((fname, fork))
                self._links.append(_Link(f"{src_name} -> {fname}.i", src, fork.i))
                srcs = [(f"{fname}.o{k}", getattr(fork, f"o{k}")) for k in range(len(dsts))]
            else:
                srcs = [(src_name, src)]
            for (s_name, s), (d_name, d, node) in zip(srcs, dsts):
                depth = 0 if node is None else fifo_depth(graph, part, self.layouts, delay, t, node)
                if depth:
                    q = fifo.SyncFIFOBuffered(width=width, depth=depth)
                    qname = f"fifo_{d_name.replace('.', '_')}"
                    self._fifos.append((qname, q))
                    self._links.append(_Link(f"{s_name} -> {qname}", s, q.w_stream))
                    s_name, s = qname, q.r_stream
                self._links.append(_Link(f"{s_name} -> {d_name}", s, d))

    def _width(self, tensor: str) -> int:
        t = self.graph.tensors[tensor]
        return self.layouts[tensor].lanes * t.dtype.width

    def _path_latency(self) -> dict[str, int]:
        return path_latency(self.graph, self.part)

    # -- elaboration ---------------------------------------------------------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        for node, layer in zip(self.part.nodes, self.layers):
            m.submodules[self._names[node.name]] = layer  # never the model's own names
        for name, fork in self._forks:
            m.submodules[name] = fork
        for name, q in self._fifos:
            m.submodules[name] = q
        m.d.comb += [
            self._input.payload.eq(self.s_axis_tdata), self._input.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(self._input.ready),
            self.m_axis_tdata.eq(self._output.payload), self.m_axis_tvalid.eq(self._output.valid),
            self._output.ready.eq(self.m_axis_tready),
        ]
        beats = self.out_layout.beats
        if beats == 1:
            m.d.comb += self.m_axis_tlast.eq(1)
        else:
            count = Signal(range(beats))
            m.d.comb += self.m_axis_tlast.eq(count == beats - 1)
            with m.If(self.m_axis_tvalid & self.m_axis_tready):
                m.d.sync += count.eq(count + 1)
                with m.If(count == beats - 1):
                    m.d.sync += count.eq(0)
        for k, link in enumerate(self._links):
            m.d.comb += [link.dst.payload.eq(Value.cast(link.src.payload)),
                         link.dst.valid.eq(link.src.valid), link.src.ready.eq(link.dst.ready)]
            if self.probes:
                m.d.comb += [self.probe_valid[k].eq(link.src.valid),
                             self.probe_ready[k].eq(link.dst.ready)]
        return m


def top_verilog(top: Top) -> str:
    """Verilog text of a :class:`Top`, module named :data:`TOP_NAME`."""
    return verilog.convert(top, name=TOP_NAME, emit_src=False)


def to_verilog(graph: Graph, probes: bool = False) -> str:
    """Verilog text of the whole design for ``graph``, top module named :data:`TOP_NAME`."""
    return top_verilog(Top(graph, probes=probes))
