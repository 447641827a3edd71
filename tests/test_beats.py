"""The beat-level timing model (hetero.hw.beats) against a cycle-by-cycle walk of the same
handshake rules; the network-level model against Verilator is in tests/test_models_sim.py and
tests/test_top.py (latency equal to the simulated one)."""

import numpy as np
import pytest

from hetero.hw import beats
from hetero.hw.window import WindowGeometry


def _walk_by_cycle(take, emit, arrivals, interval, latency):
    """The RTL's rules cycle by cycle: the walker advances a step when its output register is
    free (empty, or taken in this cycle) and, at a taking step, its next input has arrived;
    an emitting step loads the register, visible from the next cycle; the consumer takes the
    register's beat when it is ``interval`` cycles past its last take."""
    s, k, reg, ready_at, t = 0, 0, False, 0, 0
    first, out = None, []
    while s < len(take):
        taken_now = reg and t >= ready_at
        if taken_now:
            out.append(t + latency)
            ready_at = t + interval
        en = not reg or taken_now
        adv = en and (not take[s] or arrivals[k] <= t)
        if en:
            reg = bool(adv and emit[s])
        if adv:
            if take[s]:
                first = t if first is None else first
                k += 1
            s += 1
        t += 1
    while reg:  # the last beat
        if t >= ready_at:
            out.append(t + latency)
            reg = False
        t += 1
    return first, np.array(out)


@pytest.mark.parametrize("seed", range(40))
def test_walk_equals_the_cycle_by_cycle_rules(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    take = rng.random(n) < 0.6
    take[int(rng.integers(n))] = True
    emit = rng.random(n) < 0.4
    emit[int(rng.integers(n))] = True  # steps after the last emit are the next inference's
    arrivals = np.cumsum(rng.integers(0, 9, int(take.sum())))
    interval, latency = int(rng.integers(1, 8)), int(rng.integers(0, 5))
    first, out = beats.walk(take, emit, arrivals, interval, latency)
    want_first, want = _walk_by_cycle(take, emit, arrivals, interval, latency)
    assert first == want_first
    np.testing.assert_array_equal(out, want)


def test_pipe_takes_a_beat_per_interval():
    got = beats.pipe(np.array([0, 0, 0, 10, 11]), latency=3, interval=2)
    np.testing.assert_array_equal(got, [3, 5, 7, 13, 15])


def test_gather_answers_after_the_whole_input():
    np.testing.assert_array_equal(beats.gather(np.array([0, 0, 5]), 2), [6, 7])


@pytest.mark.parametrize("k,s,p,interval", [(3, 1, 1, 1), (3, 2, 1, 4), (1, 1, 1, 3), (2, 2, 0, 2)])
def test_window_walk_agrees_with_the_layer_cycle_model(k, s, p, interval):
    """Input offered in every cycle: the window walk gives the layer's own latency."""
    geo = WindowGeometry.from_attrs(2, [7, 6], [k, k], [s, s], [1, 1], [p] * 4,
                                    [(7 + 2 * p - k) // s + 1, (6 + 2 * p - k) // s + 1])
    first, out = geo.beat_times(np.zeros(42, dtype=np.int64), 2, interval)
    assert out[-1] - first == geo.cycles(2, interval)[0]
