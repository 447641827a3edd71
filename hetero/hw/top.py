"""The top level: the graph's layers chained by streams behind AXI4-Stream ports, and Verilog.

Ports (Verilog names): ``clk``, ``rst`` (synchronous, active high), ``s_axis_tdata``,
``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast`` (ignored: one beat is one inference),
``m_axis_tdata``, ``m_axis_tvalid``, ``m_axis_tready``, ``m_axis_tlast`` (high on every beat).
A beat carries a whole vector, element k at bits ``[k*W +: W]`` as a raw two's complement (or
unsigned) value of the tensor's fixed-point type.
"""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..ir import Graph
from ..ops import op_of

TOP_NAME = "hetero_top"


def check_chain(graph: Graph) -> None:
    """The hardware generator handles a chain of single-input, single-output layers."""
    current = graph.inputs[0]
    for n in graph.nodes:
        if n.inputs != (current,) or len(n.outputs) != 1:
            raise UserError(f"{n.op} node '{n.name}': only a chain of layers can be built into "
                            "hardware so far (branches and merges come later)")
        current = n.outputs[0]
    if graph.outputs != (current,):
        raise UserError("the graph's output is not the end of its chain of layers")


class Top(wiring.Component):
    """AXI4-Stream wrapper around the chain of the graph's layer components."""

    def __init__(self, graph: Graph):
        check_chain(graph)
        self.graph = graph
        self.layers = []
        try:  # every layer's component first: an op without hardware fails before any module exists
            for node in graph.nodes:
                self.layers.append(op_of(node).hardware(node, graph))
        except Exception:
            for layer in self.layers:
                layer._MustUse__silence = True  # never elaborated: no "unused" warning for them
            raise
        t_in, t_out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
        self.in_width, self.out_width = t_in.size * t_in.dtype.width, t_out.size * t_out.dtype.width
        super().__init__({
            "s_axis_tdata": In(self.in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.out_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        layers = self.layers
        for k, (node, layer) in enumerate(zip(self.graph.nodes, layers)):
            m.submodules[f"layer{k}_{node.op.lower()}"] = layer  # never the model's own names
        first, last = layers[0], layers[-1]
        m.d.comb += [
            first.i.payload.eq(self.s_axis_tdata), first.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(first.i.ready),
            self.m_axis_tdata.eq(last.o.payload), self.m_axis_tvalid.eq(last.o.valid),
            last.o.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(1),
        ]
        for a, b in zip(layers, layers[1:]):
            wiring.connect(m, a.o, b.i)
        return m


def to_verilog(graph: Graph) -> str:
    """Verilog text of the whole design, top module named :data:`TOP_NAME`."""
    top = Top(graph)
    return verilog.convert(top, name=TOP_NAME, emit_src=False)
