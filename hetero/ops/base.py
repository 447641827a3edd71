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
* :meth:`Op.hls`: the HLS C++ kernel call (:mod:`hetero.hw.hls_binding`);
* :meth:`Op.critical_stage`: the deepest register-to-register stage of that component (the
  Xilinx Fmax estimate, :func:`hetero.synthesis.timing.xilinx_fmax`).

What the graph-level code asks of an op, so that no pass names an op type:

* folding (:mod:`hetero.passes.folding`): ``foldable``, :meth:`Op.mac_dims`,
  :meth:`Op.with_folding`;
* the hardware/host split (:func:`hetero.dataflow.host_and_hardware`, which the folding and
  :func:`hetero.dataflow.hardware_part` share): ``host_layout``;
* FIFO sizing and the top level (:func:`hetero.dataflow.fifo_depth`): :meth:`Op.window_geometry`;
* the conformance tolerance (:mod:`hetero.testing.conformance`): ``moves_values``,
  :meth:`Op.table_error`;
* the structural passes (:mod:`hetero.passes.pipeline`): :meth:`Op.quantizer`,
  :meth:`Op.clip_bounds`, :meth:`Op.fuse_clip`, :meth:`Op.affine`, ``is_relu``,
  :meth:`Op.fuse_epilogue`, :meth:`Op.absorb_input_affine`, :meth:`Op.host_float`.
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
    from hetero.ir.quant import QuantSpec
    from hetero.hw.cost import Family, Resources
    from hetero.hw.hls_binding import HlsCall
    from hetero.hw.window import WindowGeometry
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
    #: A MAC layer whose parallelism (``pe`` outputs x ``simd`` inputs per step) the folding
    #: chooses; such an op defines :meth:`mac_dims` and :meth:`with_folding`.
    foldable: bool = False
    #: Pure data movement the host may apply to the hardware's input while it writes it
    #: (a leading Transpose or Reshape: the order the input streams in is the host's choice).
    host_layout: bool = False
    #: Computes ``max(x, 0)`` and nothing else (a MAC layer in front of a model quantizer
    #: absorbs it: :meth:`fuse_epilogue`).
    is_relu: bool = False
    #: Every output value is one of the input values or a constant (data movement, max,
    #: clamp): the op adds no arithmetic error of its own (the conformance tolerance,
    #: :mod:`hetero.testing.conformance`).
    moves_values: bool = False

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

    def table_error(self, node: Node) -> float:
        """The largest error, in real units, a typed ``node`` adds beyond its output's rounding
        by approximating its function with a table (half a bin times the function's largest
        slope over the table); 0 for ops computed exactly (the default)."""
        return 0.0

    def window_geometry(self, node: Node) -> "WindowGeometry | None":
        """The sliding window (:class:`hetero.hw.window.WindowGeometry`) this node's hardware
        reads its input through, buffering ``(K_h - 1) * dilation_h + 1`` rows before its first
        window (the FIFO in front of it is sized to that: :func:`hetero.dataflow.fifo_depth`);
        None where it reads no multi-row window (the default; global pools, Pad's kernel-1
        scan). Raises UserError where the op has a window the hardware cannot build (3D)."""
        return None

    # -- folding (hetero.passes.folding) --------------------------------------------------------
    def mac_dims(self, node: Node) -> tuple[int, int]:
        """``(n_in, n_out)`` of a ``foldable`` node's matrix-vector unit: the inputs each
        output sums and the outputs per vector."""
        raise NotImplementedError(f"{self.name} is not foldable")

    def with_folding(self, node: Node, pe: int, simd: int) -> Node:
        """A ``foldable`` node built with ``pe`` outputs x ``simd`` inputs per step (every
        facet of the result, :meth:`cycles` and :meth:`resources` included, reflects it)."""
        raise NotImplementedError(f"{self.name} is not foldable")

    # -- structural passes (hetero.passes.pipeline) -------------------------------------------
    def quantizer(self, node: Node) -> "QuantSpec | None":
        """The model quantizer this node applies to its input (None: the node is none)."""
        return None

    def clip_bounds(self, node: Node) -> tuple[float | None, float | None] | None:
        """``(min, max)`` where the node only clamps its input to that range (None for an
        open side); None where it does anything else."""
        return None

    def fuse_clip(self, node: Node, clip: Node, lo: float | None, hi: float | None) -> Node | None:
        """One node computing ``node`` followed by ``clip`` (the sole reader of its output,
        clamping it to ``[lo, hi]``), named and with the outputs of ``clip``; None where the op
        does not absorb a clip. Raises UserError, naming both, if nothing is left."""
        return None

    def affine(self, node: Node) -> tuple[np.ndarray, np.ndarray] | None:
        """``(a, b)`` (constants broadcastable to the input) where the node computes
        ``x * a + b`` of its one computed input; None otherwise."""
        return None

    def fuse_epilogue(self, node: Node, consumer: Node, graph: Graph) -> Node | None:
        """One node computing ``node`` then ``consumer`` (the sole reader of ``node``'s
        output, which is no graph output), with ``consumer``'s outputs; None where the op does
        not absorb it (the default)."""
        return None

    def absorb_input_affine(self, node: Node, a: np.ndarray, c: np.ndarray) -> Node | None:
        """The node taking ``x`` where it took ``a * x + c`` (``a``, ``c``: one value per
        element of the input, flattened), computing the same outputs; None where the op cannot
        (the default)."""
        return None

    def host_float(self, node: Node) -> bool:
        """Whether the node may run in floating point on the host, as the model defines it,
        between real-valued graph inputs and the model's input quantizers (FINN's input
        scaling; layout changes): a constant affine map, a clip or data movement."""
        return False

    # -- resources (hetero.hw.cost) -----------------------------------------------------------
    def resources(self, node: Node, graph: Graph, family: "Family" = "xc7") -> "Resources":
        """Estimated LUT/FF/DSP/BRAM of :meth:`hardware` on a ``family`` part (a family name,
        or a :class:`hetero.hw.cost.Calibration` with explicit coefficients), pure arithmetic
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
