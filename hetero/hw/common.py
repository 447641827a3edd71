"""Small stream components shared by several ops."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fixed import FixedType
from .fixed_hw import vector_stream


class Passthrough(wiring.Component):
    """Wires a vector stream through unchanged (reshapes: the payload is already flat)."""

    def __init__(self, t: FixedType, n: int):
        super().__init__({"i": In(vector_stream(t, n)), "o": Out(vector_stream(t, n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready)]
        return m
