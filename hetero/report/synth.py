"""The report of ``hetero synth`` (``OUT/report.json``) as a typed value.

:meth:`Report.to_json` gives report.json's keys and values, in this order: ``model, board,
part, clock_mhz, latency_cycles, interval_cycles, latency_us, throughput_per_s, cycle_model,
layers, io, notes, simulation, stages_s, fmax_mhz, timing, clock_source, resources,
utilization, fits, estimate, bram_blocks``, then the optional sections where present:
``over`` (with synthesis), ``csim``, ``float_agreement`` (with ``--inputs``), ``calibration``
(with ``--calibrate``), ``baselines``, ``fixed_point_error``, ``accuracy`` (with ``--labels``),
``published`` (with the comparison), ``saturation`` (per layer, how many of its results on the
simulated inputs its fixed-point type clipped: :func:`hetero.reference.saturation`) and
``fit_advice`` (only for a design that does not fit the board: what to do, and the nearest
fitting design, :func:`hetero.report.verdict.fit_advice`). The README lists the stable keys;
:mod:`hetero.report.html` renders the JSON form.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Report"]

#: sections absent from report.json (rather than null) when not computed
OPTIONAL = ("over", "csim", "float_agreement", "calibration", "baselines", "fixed_point_error",
            "accuracy", "published", "saturation", "fit_advice")


@dataclass
class Report:
    """report.json of one ``hetero synth`` run; see the module docstring for the keys.

    Cycle figures come from the RTL simulation; ``clock_mhz`` is the clock latency and
    throughput use; ``resources`` is ``{synth: {tool, lut, ff, dsp, bram36} | None, estimate:
    {lut, ff, dsp, bram36, lutram}}``; ``utilization`` (percent) and ``fits`` are synthesis'
    (None without it); ``estimate`` is the analytic model's ``{model_version, utilization,
    fits, over}``; ``stages_s`` is the wall time per stage, live while the flow runs."""

    model: str
    board: str
    part: str
    clock_mhz: float
    latency_cycles: int
    interval_cycles: float
    latency_us: float
    throughput_per_s: float | None
    cycle_model: dict[str, int]
    layers: list[dict[str, Any]]
    io: dict[str, Any]
    notes: list[str]
    simulation: dict[str, Any]
    stages_s: dict[str, float]
    fmax_mhz: float | None
    timing: dict[str, Any] | None
    clock_source: str
    resources: dict[str, dict[str, Any] | None]
    utilization: dict[str, float] | None
    fits: bool | None
    estimate: dict[str, Any]
    bram_blocks: dict[str, Any]
    over: list[dict[str, Any]] | None = None
    csim: dict[str, Any] | None = None
    float_agreement: dict[str, Any] | None = None
    calibration: Any = None
    baselines: dict[str, Any] | None = None
    fixed_point_error: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    published: list[dict[str, Any]] | None = None
    saturation: list[dict[str, Any]] | None = None
    fit_advice: dict[str, Any] | None = None

    @property
    def bit_exact(self) -> bool:
        """The RTL simulation matched the reference on every inference."""
        return bool(self.simulation["bit_exact"])

    def to_json(self) -> dict[str, Any]:
        """report.json's object (a new dict; the sections are shared, not copied, except
        ``stages_s``, copied as it stands)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in OPTIONAL:
                continue
            out[f.name] = dict(value) if f.name == "stages_s" else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Report":
        """The report of a report.json object (as :meth:`to_json` writes it). Raises
        TypeError on unknown or missing keys."""
        return cls(**data)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf, also numpy's) replaced by None, in
    new containers: what strict JSON (``allow_nan=False``) can hold; report.json is written
    through it, so a figure no one could compute reads ``null``."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
