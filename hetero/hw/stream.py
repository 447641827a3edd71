"""How a tensor travels on a stream between layer components: the one convention every
component, the top level and the test benches share.

A tensor whose per-inference shape has one axis, ``(C,)``, is **one beat** of ``C`` lanes.
A tensor with spatial axes is streamed **pixel by pixel** in raster order (the last spatial axis
fastest), each beat carrying that pixel's ``C`` channels in channel order (FINN's and hls4ml's
``io_stream``): ``(C, H, W)`` channels-first and ``(H, W, C)`` channels-last are both ``H*W``
beats of ``C`` lanes. Lanes hold raw integers of the tensor's type, lane ``k`` at payload
element ``k`` (bits ``[k*W +: W]`` once flattened).

Handshake: ``amaranth.lib.stream`` (``valid``/``ready``/``payload``; ``valid`` never waits for
``ready``, a beat moves when both are high). Components take one input stream ``i`` (or
``i0``, ``i1``, ... for several inputs, in node input order) and give one output ``o``; they
know their own beat counts, so no ``last`` marker travels between layers (the top level's
AXI4-Stream ports add ``tlast`` on an inference's last beat).

Cycle model (:meth:`hetero.ops.base.Op.cycles`), measured on the component alone with input
beats offered in every cycle and the output always ready: ``latency`` is the cycle the last
output beat of the first inference is offered minus the cycle its first input beat is accepted;
``interval`` is the steady-state number of cycles between the first input beats of consecutive
inferences.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass

import numpy as np

from hetero.ir.graph import Tensor

__all__ = ["StreamLayout", "layout_of", "tensor_layouts", "to_beats", "from_beats"]


@dataclass(frozen=True)
class StreamLayout:
    """``beats`` beats of ``lanes`` lanes; ``channels_last`` says how the IR tensor is laid out."""

    beats: int
    lanes: int
    channels_last: bool = False

    def order(self, shape: tuple[int, ...]) -> np.ndarray:
        """Flat IR index of every (beat, lane) position: an int array [beats, lanes]."""
        idx = np.arange(int(np.prod(shape))).reshape(shape)
        if len(shape) == 1:
            return idx.reshape(1, -1)
        if self.channels_last:
            return idx.reshape(self.beats, self.lanes)
        return np.moveaxis(idx, 0, -1).reshape(self.beats, self.lanes)


def layout_of(t: Tensor, channels_last: bool = False) -> StreamLayout:
    """The stream layout of tensor ``t`` (``channels_last``: its last axis holds channels)."""
    return layout_of_shape(t.shape, channels_last)


def layout_of_shape(shape: tuple[int, ...], channels_last: bool = False) -> StreamLayout:
    """The stream layout of a tensor of per-inference ``shape``."""
    shape = tuple(shape)
    if len(shape) <= 1:
        return StreamLayout(1, int(np.prod(shape)) if shape else 1)
    lanes = shape[-1] if channels_last else shape[0]
    return StreamLayout(int(np.prod(shape)) // lanes, lanes, channels_last)


def to_beats(raw: np.ndarray, shape: tuple[int, ...], layout: StreamLayout) -> np.ndarray:
    """A batch [N, *shape] of raw values as beats [N, beats, lanes]."""
    flat = np.asarray(raw).reshape(len(raw), -1)
    return flat[:, layout.order(tuple(shape))]


def from_beats(beats: np.ndarray, shape: tuple[int, ...], layout: StreamLayout) -> np.ndarray:
    """Beats [N, beats, lanes] back to a batch [N, *shape]."""
    beats = np.asarray(beats)
    n = len(beats)
    flat = np.empty((n, int(np.prod(shape))), dtype=beats.dtype)
    flat[:, layout.order(tuple(shape)).reshape(-1)] = beats.reshape(n, -1)
    return flat.reshape((n,) + tuple(shape))


#: Ops whose output layout is not their input's even at equal rank.
_LAYOUT_CHANGING = ("Transpose", "Reshape")


def tensor_layouts(graph) -> dict[str, StreamLayout]:
    """The stream layout of every typed tensor of ``graph``: a tensor is channels-last when a
    node that produces or consumes it says so (``attrs["channels_last"]``, QONNX channels-last
    convolutions and pools), or when an op other than Transpose/Reshape makes it from a
    channels-last tensor of the same rank. Every component and the top level use this one
    answer. The result is shared between calls on the same graph object and on graphs of the
    same structure (the nodes' ops, tensors and ``channels_last``, and the tensors' shapes): do
    not modify it."""
    hit = _BY_GRAPH.get(id(graph))
    if hit is not None and hit[0]() is graph:
        return hit[1]
    key = (tuple((n.op, n.inputs, n.outputs, "channels_last" in n.attrs, n.attrs.get("channels_last"))
                 for n in graph.nodes),
           tuple((name, tuple(t.shape)) for name, t in graph.tensors.items()))
    layouts = _layouts(key)
    try:
        ref = weakref.ref(graph)
    except TypeError:  # an object without weak references: no identity memo
        return layouts
    _BY_GRAPH[id(graph)] = (ref, layouts)
    weakref.finalize(graph, _BY_GRAPH.pop, id(graph), None)
    return layouts


#: id(graph) -> (weak reference to it, its layouts): the identity memo of :func:`tensor_layouts`
#: (the graph is immutable; an entry leaves when its graph is collected).
_BY_GRAPH: dict[int, tuple[weakref.ref, dict[str, StreamLayout]]] = {}


@functools.lru_cache(maxsize=64)
def _layouts(key) -> dict[str, StreamLayout]:
    """:func:`tensor_layouts` of the graph structure ``key`` (hashable and immutable)."""
    nodes, shapes = key
    last: dict[str, bool] = {}
    for op, inputs, outputs, says, channels_last in nodes:
        if says:
            for name in inputs:
                last.setdefault(name, bool(channels_last))
    shape = dict(shapes)
    for op, inputs, outputs, says, channels_last in nodes:
        for name in outputs:
            if says:
                last[name] = bool(channels_last)
            elif inputs and op not in _LAYOUT_CHANGING and len(shape[name]) == len(shape[inputs[0]]):
                last.setdefault(name, last.get(inputs[0], False))
    return {name: layout_of_shape(s, last.get(name, False)) for name, s in shapes}
