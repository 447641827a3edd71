"""The cycle contract every hardware component states (:class:`Cycles`)."""

from __future__ import annotations
from dataclasses import dataclass


@dataclass(frozen=True)
class Cycles:
    """Cycles from an input beat accepted to the output beat offered (latency), and between
    consecutive accepted inputs at steady state (interval)."""

    latency: int
    interval: int
