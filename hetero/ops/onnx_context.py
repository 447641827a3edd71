"""What an op's import facet sees of the ONNX model: :class:`ImportContext` (constants,
per-inference shapes, the nodes made so far), attribute access (:func:`attr`), node naming for
errors (:func:`describe`), and the memory guard every new tensor passes (:func:`check_memory`)."""

from __future__ import annotations
from typing import Sequence
import numpy as np
import onnx
from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.ir.text import printable
from hetero.ir.graph import Node


# domains whose ops the importer knows (QONNX's current and legacy names)
KNOWN_DOMAINS = ("", "ai.onnx", "qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general",
                 "qonnx.custom_op.channels_last", "finn.custom_op.channels_last")

CHANNELS_LAST_DOMAINS = ("qonnx.custom_op.channels_last", "finn.custom_op.channels_last")

# ops that only move data: a quantized constant keeps its integers through them
_DATA_MOVEMENT = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")

class ImportContext:
    """What an op's ``import_onnx`` sees: constants, per-inference shapes, and where to put
    the nodes it makes."""

    def __init__(self, constants: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]):
        self.constants = constants
        self.shapes = shapes
        self.nodes: list[Node] = []
        self.aliases: dict[str, str] = {}
        self.names: set[str] = set()
        # constant name -> (integers, scale broadcast to the constant's shape, QuantSpec)
        self.quant_consts: dict[str, tuple[np.ndarray, np.ndarray, object]] = {}
        self.integer: set[str] = set()  # tensors whose ONNX values are the raw integers
        self.input_types: dict[str, FixedType] = {}  # integer graph inputs: their element type
        self.predicates: dict[str, tuple] = {}  # comparisons awaiting their Where (bipolar quantizers)
        self.quantized_model = False  # the model has quantizers of its own (QONNX, QDQ)
        self.batch_one = False  # every graph input declares a batch of exactly 1
        self.pending_perm: dict = {}  # Transposes that moved the batch axis, not yet undone (ops/transpose.py)
        self.opsets: list = []

    def quantized(self, tensor: str):
        """For a constant that a model quantizer produced: ``(integers, scale, spec)`` with
        integers and scale in the constant's own layout (scale broadcast to its shape); else None."""
        return self.quant_consts.get(tensor)

    def resolve(self, tensor: str) -> str:
        while tensor in self.aliases:
            tensor = self.aliases[tensor]
        return tensor

    def is_const(self, tensor: str) -> bool:
        return tensor in self.constants

    def const(self, onnx_node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        """The constant value of the node's input ``index``, or a UserError naming the node."""
        if index >= len(onnx_node.input) or not onnx_node.input[index]:
            raise UserError(f"{describe(onnx_node)}: missing {what} input")
        name = onnx_node.input[index]
        if name not in self.constants:
            raise UserError(f"{describe(onnx_node)}: {what} input '{name}' must be a constant "
                            f"(initializer); dynamic {what}s are not supported")
        return self.constants[name]

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The per-inference shape of a computed tensor; a UserError for any other name (a
        constant, a comparison awaiting its Where, a name nothing produced)."""
        try:
            return self.shapes[self.resolve(tensor)]
        except KeyError:
            raise UserError(f"tensor '{printable(tensor)}' is used where a computed tensor is needed, "
                            "but it is a constant, a comparison or produced by no node") from None

    def alias(self, output: str, input: str) -> None:
        """Make ``output`` another name for ``input`` (for ops that change nothing)."""
        self.aliases[output] = self.resolve(input)

    def add(self, onnx_node: onnx.NodeProto, op: str, inputs: Sequence[str], outputs: Sequence[str],
            out_shapes: Sequence[tuple[int, ...]], **fields) -> Node:
        """Append the IR node lowering ``onnx_node``; every output shape must be non-empty
        (no zero dimension) and fit :func:`check_memory`, else a UserError naming the node."""
        node = Node(name=self._unique(node_name(onnx_node)), op=op,
                    inputs=tuple(self.resolve(i) for i in inputs), outputs=tuple(outputs),
                    source=describe(onnx_node), **fields)
        for o, s in zip(outputs, out_shapes):
            self.shapes[o] = tuple(int(d) for d in s)
            if not all(d > 0 for d in self.shapes[o]):
                raise UserError(f"{describe(onnx_node)}: output '{printable(o)}' has shape "
                                f"{list(self.shapes[o])}: a tensor without elements has no hardware")
            check_memory(int(np.prod(self.shapes[o], dtype=np.float64)), f"{describe(onnx_node)}: output '{o}'")
        self.nodes.append(node)
        return node

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

def memory_limit() -> int:
    """Bytes the reference may use for one tensor: a quarter of the memory available now."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 4
    except OSError:
        pass
    return 4 << 30

def check_memory(elements: int, what: str) -> None:
    """Refuse, before allocating, a tensor whose per-inference float64 values would not fit."""
    need = elements * 8
    limit = memory_limit()
    if need > limit:
        raise UserError(f"{what}: needs {need / 2**30:.1f} GiB per inference, more than the "
                        f"{limit / 2**30:.1f} GiB this machine can give one tensor; model too large")

def attr(node: onnx.NodeProto, name: str, default=None):
    """The value of the node's attribute ``name``, or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default

def node_name(n: onnx.NodeProto) -> str:
    """The node's name as the model gives it (its first output's, else its op type, when
    unnamed): the IR node's name and the config's ``LayerName`` key. Model text: print it
    through :mod:`hetero.ir.text`."""
    return n.name or (n.output[0] if n.output else n.op_type)

def describe(n: onnx.NodeProto) -> str:
    """``<op type> node '<name>'`` for messages, printable (:func:`hetero.ir.text.printable`)."""
    return printable(f"{n.op_type} node '{node_name(n)}'")
