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


from amaranth.back import verilog
from amaranth.hdl import Module, Signal, Value
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hetero.errors import UserError
from hetero.ir.graph import Graph, Node
from hetero.ops import op_of
from hetero.hw.stream import StreamLayout, tensor_layouts
from hetero.dataflow import TOP_NAME, fifo_depth, hardware_part, path_latency


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
