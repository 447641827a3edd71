"""The intermediate representation: an immutable dataflow graph of nodes over typed tensors.

Shapes are per inference (the batch axis is not part of the IR) and keep the model's layout
(ONNX's channels-first unless an op says otherwise). A tensor's ``dtype`` is a
:class:`~hetero.ir.fixed.FixedType` once precision has been assigned, or ``None`` while the graph is
still float. A typed tensor holds raw integers ``r`` meaning the real value
``(r - zero_point) * 2**-frac_bits * (scale or 1)``; ``scale`` and ``zero_point`` come from the
model's own quantizers (QONNX, QDQ) when their scale is not a power of two. Passes are plain functions ``Graph -> Graph``; a pass that changes nothing returns the
graph it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

from hetero.ir.fixed import FixedType


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Tensor:
    """A tensor between nodes: its per-inference shape and its fixed-point type (None: float).

    ``integer``: the ONNX tensor holds the raw integers themselves (a QuantizeLinear output or an
    int8 graph input), not the real values. ``quant``: for a graph input, the model's quantizer
    (:class:`~hetero.ir.quant.QuantSpec`) that turns real inputs into its raw values.
    """

    name: str
    shape: tuple[int, ...]
    dtype: FixedType | None = None
    scale: float | None = None
    zero_point: int = 0
    integer: bool = False
    quant: Any = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def real_scale(self) -> float:
        """The real value of one raw unit (the tensor must be typed)."""
        assert self.dtype is not None, self.name
        return 2.0 ** -self.dtype.frac_bits * (1.0 if self.scale is None else self.scale)

    def to_real(self, raw: np.ndarray) -> np.ndarray:
        """Real values of raw integers of this tensor."""
        return (np.asarray(raw, dtype=np.float64) - self.zero_point) * self.real_scale

    def onnx_value(self, raw: np.ndarray) -> np.ndarray:
        """What ONNX holds in this tensor: the integers themselves for ``integer`` tensors."""
        return np.asarray(raw, dtype=np.float64) if self.integer else self.to_real(raw)

    def __str__(self) -> str:
        t = str(self.dtype or "float")
        if self.scale is not None:
            t += f"*{self.scale:.6g}"
        if self.zero_point:
            t += f"@{self.zero_point:+d}"
        return f"{t}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class Node:
    """One operation. ``op`` names the module in :mod:`hetero.ops` that defines it.

    ``attrs`` hold scalars and small settings (including the hardware parallelism once chosen);
    ``params`` hold constant arrays (float weights at import, raw fixed-point after
    quantization); ``types`` hold the fixed-point types of params and internal values
    (``weight``, ``bias``, ``accum``, ...).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    types: Mapping[str, FixedType] = field(default_factory=dict)
    source: str = ""  # the ONNX node(s) it came from, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", _frozen(self.attrs))
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "types", _frozen(self.types))

    def evolve(self, **changes: Any) -> "Node":
        """A copy with some fields replaced; mappings given here are merged into the old ones."""
        for key in ("attrs", "params", "types"):
            if key in changes:
                changes[key] = {**getattr(self, key), **changes[key]}
        return replace(self, **changes)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order, tensors by name, and the graph's input and output names."""

    name: str
    nodes: tuple[Node, ...]
    tensors: Mapping[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", _frozen(self.tensors))

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def with_nodes(self, nodes: Iterable[Node], tensors: Mapping[str, Tensor] | None = None) -> "Graph":
        """A graph with new nodes (and tensors, merged over the old ones), unused tensors dropped."""
        nodes = tuple(nodes)
        merged = {**self.tensors, **(tensors or {})}
        used = set(self.inputs) | set(self.outputs)
        for n in nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        return replace(self, nodes=nodes, tensors={k: v for k, v in merged.items() if k in used})

    def __str__(self) -> str:
        lines = [f"graph {self.name}("]
        lines += [f"    {i}: {self.tensors[i]}," for i in self.inputs]
        lines.append(") {")
        for n in self.nodes:
            outs = ", ".join(f"{o}: {self.tensors[o]}" for o in n.outputs)
            extra = [f"{k}={v}" for k, v in n.attrs.items()]
            extra += [f"{k}:{t}" for k, t in n.types.items()]
            extra += [f"{k}{list(v.shape)}" for k, v in n.params.items()]
            lines.append(f"  {outs} = {n.op}[{n.name}]({', '.join(n.inputs)})" + (f"  # {' '.join(extra)}" if extra else ""))
        lines.append(f"  return {', '.join(self.outputs)}")
        lines.append("}")
        return "\n".join(lines)
