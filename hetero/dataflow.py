"""Graph-level analyses of the hardware part, shared by the estimate, the generators and the
folding: which nodes run in hardware and which on the host (:func:`hardware_part`), the FIFO
depth every join and image link needs (:func:`fifo_depth`), and the design's interval and
latency from the ops' cycle models and the beat-level schedule (:func:`cycle_model`,
:func:`beat_schedule`; equal to Verilator's on every shared model, docs/hardware.md).
Pure functions of the typed graph; nothing here builds hardware."""

from __future__ import annotations
from dataclasses import dataclass
import numpy as np
from hetero.errors import UserError
from hetero.ir.graph import Graph, Node
from hetero.ops import op_of
from hetero.hw.cycles import Cycles
from hetero.hw import beats
from hetero.hw.stream import StreamLayout, tensor_layouts


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

def host_and_hardware(graph: Graph) -> tuple[tuple[Node, ...], tuple[Node, ...]]:
    """``(host nodes, hardware nodes)``, each in graph order, without checking that the
    hardware part can be built (:func:`hardware_part` checks). The host runs the nodes whose
    inputs are all untyped (float prefix, input quantizers), then any chain of ``host_layout``
    ops (:attr:`hetero.ops.base.Op.host_layout`: a leading NHWC -> NCHW Transpose) that is the
    only reader of what it computed and gives no graph output (the layout in which it streams
    the input is the host's choice); the hardware runs the rest."""
    host = [n for n in graph.nodes if all(graph.tensors[i].dtype is None for i in n.inputs)]
    host_out = set(graph.inputs) | {o for n in host for o in n.outputs}
    while True:
        names = {n.name for n in host}
        readers = [n for n in graph.nodes if n.name not in names and any(i in host_out for i in n.inputs)]
        if (len(readers) != 1 or not op_of(readers[0]).host_layout
                or any(o in graph.outputs for o in readers[0].outputs)):
            break
        host.append(readers[0])
        host_out.update(readers[0].outputs)
    host_names = {n.name for n in host}
    return tuple(host), tuple(n for n in graph.nodes if n.name not in host_names)


def hardware_part(graph: Graph) -> HardwarePart:
    """Split ``graph`` into host nodes and the hardware (:func:`host_and_hardware`). Raises
    UserError where the hardware would need several input streams, an untyped input, or the
    graph has several outputs."""
    host, hw = host_and_hardware(graph)
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
    geo = op_of(consumer).window_geometry(consumer)
    if geo is not None:
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
