"""cocotb 2.x test bench: stream one-beat AXI-Stream inferences through a design.

Contract
--------
Design ports: ``clk``, ``rst`` (active-high, synchronous), ``s_axis_tdata/tvalid/tready/tlast``,
``m_axis_tdata/tvalid/tready/tlast``. One inference is one input beat and one output beat, both
with ``tlast=1``. Vector elements are packed little-endian: element ``i`` is at
``tdata[i*w +: w]``.

The job is a JSON file named by the environment variable ``HETERO_SIM_JOB``::

    inputs         path of an .npy array of raw int64, shape [N, n_in]
    in_width, in_signed, n_out, out_width, out_signed
    backpressure   probability that m_axis_tready is low in a cycle (seeded)
    input_gaps     probability that s_axis_tvalid stays low in a cycle between beats (seeded)
    seed, stall_timeout (cycles), reset_cycles
    result         path of the .npz to write

The result .npz holds ``outputs`` (int64 [N, n_out], sign-extended when ``out_signed``; rows
of inferences that never finished are 0), ``in_cycles`` and ``out_cycles`` (int64: the cycle at
whose rising edge each beat was accepted; cycle 0 is the first edge after reset), ``total_cycles``
(edges simulated after reset) and ``error`` ("" or a one-line message naming the stuck stream).

The user's own cocotb test modules may run after :func:`axis_run` in the same simulation
(``tests`` of :func:`hetero.sim.cocotb.simulate`, docs/cocotb.md): :func:`pack`, :func:`unpack`
and :data:`PORTS` are for them; the job file tells them the widths.

Sampling (Verilator under cocotb's runner, which sets COCOTB_TRUST_INERTIAL_WRITES=1): values
read right after ``RisingEdge(clk)`` are the values the design's flip-flops sample at that edge
(the edge callback runs before Verilator evaluates the edge), and writes are inertial, landing
after it. So one trigger per cycle suffices, even for tready paths that are combinational.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

__all__ = ["ContractError", "PORTS", "axis_run", "pack", "unpack"]


PORTS = ("clk", "rst", *(f"{d}_axis_{s}" for d in "sm" for s in ("tdata", "tvalid", "tready",
                                                                  "tlast")))
SIGNALS = ("tdata", "tvalid", "tready", "tlast")


class ContractError(Exception):
    """The design does not have the port contract; the message is reported verbatim."""


def pack(row: Any, width: int) -> int:
    """Pack raw integers (two's complement or unsigned) into one little-endian bit vector."""
    mask = (1 << width) - 1
    word = 0
    for i, v in enumerate(row):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack(word: int, n: int, width: int, signed: bool) -> list[int]:
    """Split a little-endian bit vector into ``n`` raw integers of ``width`` bits."""
    mask = (1 << width) - 1
    half = 1 << (width - 1)
    out = []
    for i in range(n):
        v = (word >> (i * width)) & mask
        if signed and v >= half:
            v -= 1 << width
        out.append(v)
    return out


def _bit_reader(handle: Any) -> Callable[[], int]:
    """A fast zero-argument reader of a 1-bit signal.

    ``handle.value`` builds a ``Logic``/``LogicArray`` object on every call; reading through
    the simulator object (cocotb 2.x internals; cocotb is pinned) skips that. With
    :func:`_word_reader` this makes the whole cycle loop ~1.4x faster. Falls back to the
    public API when the internals are not there.
    """
    raw = getattr(getattr(handle, "_handle", None), "get_signal_val_long", None)
    return raw if callable(raw) else (lambda: int(handle.value))


def _word_reader(handle: Any) -> Callable[[], int]:
    """A fast zero-argument reader of a bus as an unsigned int (see :func:`_bit_reader`)."""
    raw = getattr(getattr(handle, "_handle", None), "get_signal_val_binstr", None)
    if callable(raw):
        return lambda: int(raw(), 2)
    return lambda: handle.value.to_unsigned()


async def _stream(dut: Any, job: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Reset the design, stream ``rows`` through it and collect the output beats."""
    n, n_in = rows.shape
    in_w, n_out, out_w = int(job["in_width"]), int(job["n_out"]), int(job["out_width"])
    out_signed = bool(job["out_signed"])
    timeout = int(job["stall_timeout"])
    p_bp, p_gap = float(job["backpressure"]), float(job["input_gaps"])
    rng = random.Random(int(job["seed"]))

    ports = {}
    for name in PORTS:
        try:
            ports[name] = getattr(dut, name)
        except AttributeError:
            raise ContractError(f"design has no port '{name}'") from None
    clk, rst = ports["clk"], ports["rst"]
    s_data, s_valid, s_ready, s_last = (ports[f"s_axis_{s}"] for s in SIGNALS)
    m_data, m_valid, m_ready, m_last = (ports[f"m_axis_{s}"] for s in SIGNALS)
    s_ready_now, m_valid_now, m_last_now = map(_bit_reader, (s_ready, m_valid, m_last))
    m_data_now = _word_reader(m_data)
    for handle, name, n_el, w in ((s_data, "s_axis", n_in, in_w), (m_data, "m_axis", n_out, out_w)):
        if len(handle) != n_el * w:
            raise ContractError(f"{name}_tdata is {len(handle)} bits wide, expected "
                                f"{n_el * w} ({n_el} elements of {w} bits)")

    words = [pack(r, in_w) for r in rows.tolist()]
    out_words: list[int] = []
    in_cycles: list[int] = []
    out_cycles: list[int] = []

    s_valid.value = 0
    s_last.value = 1
    s_data.value = 0
    m_ready.value = 0
    rst.value = 1
    Clock(clk, 2, unit="step", impl="gpi").start(start_high=False)
    edge = RisingEdge(clk)
    for _ in range(int(job.get("reset_cycles", 4))):
        await edge
    rst.value = 0

    sent = got = cycle = 0
    offering = False          # s_axis_tvalid is high for words[sent]
    valid = False             # current s_axis_tvalid
    ready = False             # current m_axis_tready
    deadline = timeout        # cycle at which lack of progress becomes a stall
    low_since: int | None = None  # first cycle s_axis_tready was seen low while offering
    error = ""
    while got < n:
        # Drive the inputs for the coming edge (writes land after the previous edge).
        if not offering:
            if sent < n and (p_gap == 0.0 or rng.random() >= p_gap):
                s_data.value = words[sent]
                offering = True
            if offering != valid:
                s_valid.value = int(offering)
                valid = offering
        want = p_bp == 0.0 or rng.random() >= p_bp
        if want != ready:
            m_ready.value = int(want)
            ready = want

        await edge
        # Sample what the design sees at this edge.
        if offering:
            if s_ready_now():
                in_cycles.append(cycle)
                if sent == got:
                    deadline = cycle + timeout
                sent += 1
                offering = False
                low_since = None
            elif low_since is None:
                low_since = cycle
        if ready and m_valid_now():
            if sent == got:
                error = (f"m_axis: output beat at cycle {cycle} with no inference "
                         f"outstanding ({sent} inputs accepted, {got} outputs)")
                break
            if not m_last_now():
                error = f"m_axis: tlast low on output beat {got} (cycle {cycle})"
                break
            out_words.append(m_data_now())
            out_cycles.append(cycle)
            got += 1
            deadline = cycle + timeout
        cycle += 1
        if cycle >= deadline:
            error = _stall_message(dut, n, sent, got, timeout, offering, low_since, ready)
            break

    outputs = np.zeros((n, n_out), dtype=np.int64)
    for i, word in enumerate(out_words):
        outputs[i] = unpack(word, n_out, out_w, out_signed)
    return {"outputs": outputs, "in_cycles": np.asarray(in_cycles, dtype=np.int64),
            "out_cycles": np.asarray(out_cycles, dtype=np.int64), "total_cycles": cycle,
            "error": error}


def _stall_message(dut: Any, n: int, sent: int, got: int, timeout: int, offering: bool,
                   low_since: int | None, ready: bool) -> str:
    """One line naming the stuck stream and what its handshake signals were doing."""
    if sent == n:
        s_state = f"all {n} inputs accepted"
    elif offering and low_since is not None:
        s_state = f"s_axis_tready low since cycle {low_since}"
    else:
        s_state = f"s_axis_tready {'high' if dut.s_axis_tready.value else 'low'}"
    if sent > got:
        m_state = ("m_axis_tvalid low" if not dut.m_axis_tvalid.value else
                   "m_axis_tvalid high but m_axis_tready held low by backpressure"
                   if not ready else "m_axis_tvalid high")
        return (f"m_axis: no output for {timeout} cycles after {got} of {n} inferences; "
                f"{s_state}; {m_state}")
    return (f"s_axis: no input accepted for {timeout} cycles after {sent} of {n} inferences; "
            f"{s_state}")


@cocotb.test()
async def axis_run(dut: Any) -> None:
    """Run the job named by ``HETERO_SIM_JOB`` and write its result file."""
    job = json.loads(Path(os.environ["HETERO_SIM_JOB"]).read_text())
    rows = np.load(job["inputs"])
    try:
        result = await _stream(dut, job, rows)
    except Exception as exc:  # reported through the result file, as a one-liner
        msg = str(exc) if isinstance(exc, ContractError) else f"bench: {type(exc).__name__}: {exc}"
        result = {"outputs": np.zeros((rows.shape[0], int(job["n_out"])), dtype=np.int64),
                  "in_cycles": np.zeros(0, np.int64), "out_cycles": np.zeros(0, np.int64),
                  "total_cycles": 0, "error": msg.replace("\n", " ")}
    tmp = Path(job["result"] + ".tmp.npz")
    np.savez(tmp, **result)
    tmp.replace(job["result"])
