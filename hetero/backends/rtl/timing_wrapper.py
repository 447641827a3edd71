"""The timing wrapper: a design of any port width behind three pins, for place and route.

:class:`TimingWrapper` has the ports ``clk``, ``sin`` and ``sout`` and instantiates the design
by module name (an ``Instance`` named :data:`DUT`, so the flattened cells of the design start
with ``dut.``) with the port list of :func:`hetero.backends.rtl.ports.ports`:

* the design's 1-bit input ``clock`` gets ``clk``;
* every other input port gets registers of its own of one shift register loaded from ``sin``,
  one per bit up to ``share``; a wider port reuses them cyclically (bit ``j`` from register
  ``j mod share``: the design is synthesized as a module of its own before it is connected, so
  shared drivers optimise none of its logic away);
* every output bit goes into registered stages of 4-input XORs (one LUT4 per register) down to
  one register driving ``sout``.

Every path of the wrapper's own has one LUT at most.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hetero.backends.rtl.ports import Port
from hetero.errors import UserError

__all__ = ["DUT", "SHARE", "WRAPPER_NAME", "TimingWrapper", "wrapper_verilog"]

#: Module name of the wrapper (callers add a suffix when the design has a module of that name).
WRAPPER_NAME = "hetero_timing_wrapper"
#: Instance name of the design inside the wrapper (flattened cell names start with it).
DUT = "dut"
#: Input registers per port: a wider port reuses them.
SHARE = 64


class TimingWrapper(wiring.Component):
    """Module ``clk``/``sin``/``sout`` around one instance of module ``top`` with ``ports``
    (see the module docstring). Raises UserError for inout ports or a design without outputs.

    Attributes: ``n_registers`` (shift-register bits), ``inputs`` (port name -> the register
    index driving each of its bits, bit 0 first), ``outputs`` (port name -> ``(lo, width)`` of
    its bits in the XOR tree's first level), ``stages`` (register count of each XOR stage,
    ending with 1)."""

    def __init__(self, ports: Sequence[Port], top: str, clock: str = "clk", share: int = SHARE):
        outputs = [p for p in ports if p.direction == "output"]
        inout = any(p.direction == "inout" for p in ports)
        if inout or not outputs:
            self._MustUse__silence = True  # never elaborated: no "unused" warning
            raise UserError(f"timing wrapper: module {top!r} has inout ports" if inout else
                            f"timing wrapper: module {top!r} has no outputs: nothing to time")
        self.top, self.clock = top, clock
        self.has_clock = any(p.name == clock and p.direction == "input" and p.width == 1
                             for p in ports)
        self.inputs: dict[str, list[int]] = {}
        lo = 0
        for p in ports:
            if p.direction == "input" and not (p.name == clock and p.width == 1):
                k = min(p.width, share)
                self.inputs[p.name] = [lo + j % k for j in range(p.width)]
                lo += k
        self.n_registers = lo
        self.outputs: dict[str, tuple[int, int]] = {}
        lo = 0
        for p in outputs:
            self.outputs[p.name] = (lo, p.width)
            lo += p.width
        self.n_out = lo
        self.stages: list[int] = []
        width = lo
        while width > 1 or not self.stages:  # a single output bit is still registered once
            width = (width + 3) // 4
            self.stages.append(width)
        super().__init__({"clk": In(1), "sin": In(1), "sout": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", reset_less=True, local=True)
        m.d.comb += cd.clk.eq(self.clk)
        conns: dict[str, object] = {}
        if self.has_clock:
            conns[f"i_{self.clock}"] = ClockSignal("sync")
        if self.n_registers:
            shift = Signal(self.n_registers, name="hetero_wrap_in")
            m.d.sync += shift.eq(Cat(self.sin, shift[:-1]) if self.n_registers > 1 else self.sin)
            for name, regs in self.inputs.items():
                conns[f"i_{name}"] = Cat(*(shift[r] for r in regs))
        out = Signal(self.n_out, name="hetero_wrap_out")
        for name, (lo, width) in self.outputs.items():
            conns[f"o_{name}"] = out[lo:lo + width]
        m.submodules[DUT] = Instance(self.top, **conns)
        prev = out
        for stage, width in enumerate(self.stages, 1):
            x = Signal(width, name=f"hetero_wrap_x{stage}")
            m.d.sync += [x[i].eq(prev[4 * i:min(4 * i + 4, len(prev))].xor()) for i in range(width)]
            prev = x
        m.d.comb += self.sout.eq(prev[0])
        return m


def wrapper_verilog(wrapper: TimingWrapper, name: str = WRAPPER_NAME) -> str:
    """Verilog text of ``wrapper``, module named ``name`` (it holds no module of the design)."""
    return verilog.convert(wrapper, name=name, emit_src=False)
