"""Beat-level timing: the cycle at which every beat of one inference crosses every stream.

The cycle models of the ops (:meth:`hetero.ops.base.Op.cycles`) give a layer's latency and
interval alone, with its input offered in every cycle. A network's latency also depends on how
each layer's beats are spread out by the layers before it: a convolution folded to one window
per 16 cycles hands its successor one pixel per 16 cycles, and the successor finishes 16 cycles
per pixel behind it, not its own latency behind the whole image. This module computes that
exactly, in closed form (cumulative maxima, no per-cycle loop), from each component's rule.

Conventions: an array ``arrivals`` holds, per beat of one inference, the first cycle the beat is
offered (``valid`` high) at a component's input; the component takes it at that cycle or later,
when it is ready. A component's result holds, per output beat, the cycle it is offered and, the
consumer being ready, taken (a handshake at that clock edge). Components start idle at cycle 0
(reset), when the hardware's input is first offered; a window generator walks its leading
padding from then on, as the RTL does. The model ignores back pressure from
full FIFOs (they are sized so that it does not slow the pipeline, see
:func:`hetero.dataflow.fifo_depth`); it is checked against Verilator cycle for cycle in
tests/test_beats.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: "Long before": the arrival of a step that waits for no input beat.
NEVER = -(1 << 50)


def pipe(arrivals: np.ndarray, latency: int, interval: int = 1) -> np.ndarray:
    """A unit that takes a beat at most every ``interval`` cycles and offers its result
    ``latency`` cycles after taking it (a register stage: ``latency=1, interval=1``; a wire:
    ``latency=0``; the folded MVAU: ``F + 3, F``): beat ``k`` is taken at
    ``a_k = max(arrival_k, a_{k-1} + interval)``."""
    k = np.arange(len(arrivals), dtype=np.int64) * interval
    taken = np.maximum.accumulate(np.asarray(arrivals, dtype=np.int64) - k) + k
    return taken + latency


def join(arrivals: Sequence[np.ndarray]) -> np.ndarray:
    """Arrivals at a unit that takes one beat of each input together (Add, Concat): beat ``k``
    is there when it is there on every input."""
    return np.maximum.reduce([np.asarray(a, dtype=np.int64) for a in arrivals])


def gather(arrivals: np.ndarray, out_beats: int, latency: int = 1) -> np.ndarray:
    """A unit that takes its whole input (a beat per cycle) before it offers ``out_beats``
    beats on consecutive cycles, the first ``latency`` cycles after the last input beat (a
    global pool, a Regroup buffer)."""
    last = pipe(arrivals, 0)[-1]
    return last + latency + np.arange(out_beats, dtype=np.int64)


def walk(take: np.ndarray, emit: np.ndarray, arrivals: np.ndarray, interval: int = 1,
         latency: int = 0) -> tuple[int, np.ndarray]:
    """A unit that walks a fixed sequence of steps from cycle 0, one per cycle at most: step
    ``s`` takes the next input beat where ``take[s]`` (waiting for it), and where ``emit[s]``
    offers an output beat from the next cycle, moving on only once it is taken; its consumer
    takes one beat at most every ``interval`` cycles and offers its result ``latency`` cycles
    later (the window generator and the unit behind it; a plain walk: ``interval=1,
    latency=0``). Returns (the cycle the first input beat is taken, the cycle each of the
    consumer's results is offered).

    Closed form: with ``w_j`` the emitting steps and ``A_j`` the cycle the consumer takes beat
    ``j``, ``A_j = max(A_{j-1} + max(w_j - w_{j-1}, interval), X_j + 1)`` where ``X_j`` is the
    latest ``arrival + steps left to w_j`` of the inputs taken in ``(w_{j-1}, w_j]`` (and step 0
    at cycle 0 at the earliest): a cumulative maximum.
    """
    take, emit = np.asarray(take, dtype=bool), np.asarray(emit, dtype=bool)
    steps = np.arange(len(take), dtype=np.int64)
    arrivals = np.asarray(arrivals, dtype=np.int64)
    x = np.full(len(take), NEVER, dtype=np.int64)
    x[take] = arrivals[:int(take.sum())] - steps[take]
    x[0] = max(x[0], 0)
    w = steps[emit]
    starts = np.concatenate(([0], w[:-1] + 1))
    # steps after the last emit belong to the next inference
    y = np.maximum.reduceat(x[:w[-1] + 1], starts) + w + 1 if len(w) else w
    s = np.maximum(np.diff(w, prepend=-1), interval)
    c = np.cumsum(s)
    taken = np.maximum.accumulate(y - c) + c
    s0 = int(np.argmax(take))  # the first input beat's step
    j0 = int(np.searchsorted(w, s0))  # windows before it
    before = taken[j0 - 1] + s0 - w[j0 - 1] - 1 if j0 else s0
    return int(max(before, arrivals[0] if len(arrivals) else 0)), taken + latency


def fifo(arrivals: np.ndarray, delay: int) -> np.ndarray:
    """Beats through a FIFO that holds a beat ``delay`` cycles when empty."""
    return pipe(arrivals, delay)
