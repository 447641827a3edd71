"""The Verilog port list of a generated design, read from its Amaranth component.

:func:`ports` gives the ports :func:`amaranth.back.verilog.convert` emits for a
``wiring.Component`` converted without ``ports=``: one per member of its signature (the path
joined by ``__``, ``In`` an input, ``Out`` an output, the member's width) and the clock and reset
of each clock domain it uses (``clk``, ``rst`` for ``sync``; ``<domain>_clk``, ``<domain>_rst``
otherwise). Tools that place, time or simulate a design take this list instead of reading the
Verilog text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Value, ValueCastable
from amaranth.lib import wiring

__all__ = ["Port", "ports"]


@dataclass(frozen=True)
class Port:
    """One port of a Verilog module: ``direction`` ``"input"``, ``"output"`` or ``"inout"``,
    ``width`` in bits."""

    name: str
    direction: str
    width: int


def ports(component: wiring.Component, domains: Iterable[str] = ("sync",)) -> list[Port]:
    """The Verilog ports of ``component`` as Amaranth emits them (see the module docstring):
    first the clock and reset of every domain in ``domains`` (the domains the design uses;
    every hetero design uses ``sync``), then the signature's members in signature order."""
    out: list[Port] = []
    for domain in domains:
        cd = ClockDomain(domain)
        out += [Port(cd.clk.name, "input", 1), Port(cd.rst.name, "input", 1)]
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value):
            direction = "input" if member.flow == wiring.In else "output"
            out.append(Port("__".join(map(str, path)), direction, len(value)))
    return out
