"""What every op module defines: one :class:`Op` subclass holding all facets of the op.

An op module (``hetero/ops/<name>.py``) subclasses :class:`Op` and registers an instance with
:func:`register`. Facets, all keyed on the IR node:

* ``onnx_ops`` and :meth:`Op.import_onnx`: the ONNX op types it lowers and how (shape inference
  happens there, on per-inference shapes);
* :meth:`Op.assign_types`: fixed-point types of params, internals and outputs from the config;
* :meth:`Op.reference`: the bit-accurate executor on raw integers (and the float executor when
  the graph is untyped);
* :meth:`Op.hardware`: an Amaranth ``wiring.Component`` with stream ports ``i`` and ``o``;
* :meth:`Op.cycles`: latency and interval of that component, equal to what the RTL takes;
* :meth:`Op.beat_times`: when each output beat leaves, given when the input beats arrive
  (the network's latency, :func:`hetero.dataflow.beat_schedule`);
* :meth:`Op.parallelism`: the parallelism chosen, for reports;
* :meth:`Op.resources`: estimated LUT/FF/DSP/BRAM of that component (:mod:`hetero.hw.cost`);
* :meth:`Op.critical_stage`: the deepest register-to-register stage of that component (the
  Xilinx Fmax estimate, :func:`hetero.synthesis.timing.xilinx_fmax`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from hetero.errors import UserError
from hetero.ir.graph import Graph, Node, Tensor
from hetero.hw.cycles import Cycles

if TYPE_CHECKING:
    import onnx
    from amaranth.lib import wiring

    from hetero.ir.config import LayerConfig
    from hetero.hw.cost import Resources
    from hetero.ops.onnx_context import ImportContext


class CriticalStage(NamedTuple):
    """A register-to-register stage of a component: ``levels`` of LUT logic, adders of about
    ``carry_bits`` bits, after an unregistered DSP multiply when ``dsp``; ``what`` says what it
    is (e.g. ``"3 adder levels of ~14 bits"``)."""

    levels: int
    carry_bits: int
    dsp: bool
    what: str


class Op:
    """Base class of an op's definition. Subclasses override what applies to them."""

    name: str = ""
    onnx_ops: tuple[str, ...] = ()
    layer_types: tuple[str, ...] = ()  # config LayerType keys that apply (besides ``name``)
    hardware_note: str = ""

    # -- import -------------------------------------------------------------------------------
    def import_onnx(self, node: "onnx.NodeProto", ctx: "ImportContext") -> None:
        raise NotImplementedError

    def fold(self, node: "onnx.NodeProto", ctx: "ImportContext", values: list) -> list[np.ndarray] | None:
        """Outputs of ``node`` when all its inputs are the constants ``values``; None: let the
        importer evaluate it with ``onnx.reference`` (standard ops only)."""
        return None

    # -- types --------------------------------------------------------------------------------
    def assign_types(self, node: Node, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                     cfg: "LayerConfig") -> tuple[Node, list[Tensor]]:
        """Return the node with typed (quantized) params and its typed output tensors."""
        raise NotImplementedError

    # -- reference ----------------------------------------------------------------------------
    def reference(self, node: Node, graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs for a batch: arrays shaped [N, *shape]; raw int64 if the graph is typed."""
        raise NotImplementedError

    # -- hardware -----------------------------------------------------------------------------
    def hardware(self, node: Node, graph: Graph) -> "wiring.Component":
        raise UserError(f"{self.name} node '{node.name}': no hardware implementation yet")

    def cycles(self, node: Node, graph: Graph) -> Cycles:
        return Cycles(0, 1)

    def beat_times(self, node: Node, graph: Graph,
                   arrivals: Sequence[np.ndarray]) -> tuple[int, np.ndarray]:
        """(Cycle the first input beat is taken, cycle each output beat is offered) for one
        inference whose input beats arrive at ``arrivals`` (one array per input, cycles from
        reset; :mod:`hetero.hw.beats`). Default, from :meth:`cycles`: a unit taking a beat of
        every input together, every ``interval / beats`` cycles, offering each result after a
        fixed delay; or, where it gives fewer or more beats than it takes, one that takes the
        whole input before it answers (global pools, Regroup buffers)."""
        from hetero.hw import beats
        from hetero.hw.lanes import stream_layout

        c = self.cycles(node, graph)
        arr = beats.join(arrivals)
        n_in, n_out = len(arr), stream_layout(graph, node.outputs[0]).beats
        if n_in == n_out:
            step = c.interval // n_in
            return int(arr[0]), beats.pipe(arr, c.latency - (n_in - 1) * step, step)
        return int(arr[0]), beats.gather(arr, n_out, c.latency - (n_in - 1) - (n_out - 1))

    def parallelism(self, node: Node) -> dict[str, Any]:
        """The parallelism chosen for this node, for reports."""
        return {}

    def critical_stage(self, node: Node, graph: Graph) -> CriticalStage | None:
        """The deepest register-to-register stage of :meth:`hardware`, or None where it is
        no deeper than the stream logic of every component (two LUT levels, 16 carry bits)."""
        return None

    # -- resources (hetero.hw.cost) -----------------------------------------------------------
    def resources(self, node: Node, graph: Graph, family: str = "xc7") -> "Resources":
        """Estimated LUT/FF/DSP/BRAM of :meth:`hardware` on a ``family`` part, pure arithmetic
        on the graph (no elaboration). Default: a one-register lane stage, i.e. the output
        beat's bits as FFs and ``lut_per_bit.<op>`` (else ``stream_lut_per_bit``) LUTs per input
        bit, coefficients fitted per op by ``benchmarks/calibrate_resources.py``."""
        from hetero.hw.lanes import stream_layout
        from hetero.hw.cost import Resources, coeffs

        c = coeffs(family)
        bits_in = sum(stream_layout(graph, i).lanes * graph.tensors[i].dtype.width for i in node.inputs)
        t_out = graph.tensors[node.outputs[0]]
        bits_out = stream_layout(graph, node.outputs[0]).lanes * t_out.dtype.width
        lut = c.get(f"lut_per_bit.{self.name}", c["stream_lut_per_bit"])
        return Resources(lut=lut * bits_in, ff=c["stream_ff_per_bit"] * bits_out + 1)

    # -- HLS C++ ------------------------------------------------------------------------------
    def hls(self, node: Node, graph: Graph) -> "HlsCall | None":
        """The HLS C++ kernel call of this node (:class:`hetero.hw.hls_binding.HlsCall`), or None
        where the op has no kernel in hdl_templates/hls (the HLS project then names the node)."""
        return None


REGISTRY: dict[str, Op] = {}
ONNX_TO_OP: dict[str, Op] = {}


def register(op: Op) -> Op:
    REGISTRY[op.name] = op
    for onnx_op in op.onnx_ops:
        ONNX_TO_OP[onnx_op] = op
    return op


def op_of(node: Node) -> Op:
    return REGISTRY[node.op]
