"""Power and energy per inference for the CPU, the GPU and the FPGA. Every figure carries
``measured`` (True only for a hardware energy counter read around the timed runs) and ``method``
(how it was obtained, in words).

CPU
    * **measured** from Intel/AMD RAPL where the kernel exposes it readable
      (``/sys/class/powercap/intel-rapl*/energy_uj``, package domains): the counter's difference
      over the timed runs divided by the inferences. It is the whole package's energy, idle
      cores and other processes included, so it is an upper bound on what the model costs.
    * **estimated** otherwise, from the processor's TDP: ``threads * TDP / cores`` of the CPU
      family named in ``/proc/cpuinfo`` (:data:`CPU_TDP`, vendor spec-sheet figures), times the
      time per inference. TDP is a thermal design figure, not a reading: the estimate says so.

GPU
    * **measured** from NVML (``pynvml``, optional) ``nvmlDeviceGetTotalEnergyConsumption``
      (mJ since driver load, Volta and newer) around the timed runs;
    * **estimated** from NVML's power limit times the time where the counter is unsupported;
      no figure (with the reason) where pynvml is not installed.

FPGA: **estimated** from a power model (no board is measured):

    P = P_static + f_MHz * (LUT * c_lut + FF * c_ff + DSP * c_dsp + BRAM36 * c_bram)

* ``P_static``: the board's ``power_w_rough`` from ``hetero/data/boards.json`` (a rough public
  whole-board figure: regulators, DRAM and, on a Zynq, the ARM cores; see
  ``shared/reference/BOARDS.md``). It is counted whole, as MLPerf Tiny's energy figures count the
  whole board.
* ``c_*``: dynamic power per resource per MHz (:data:`DYNAMIC_UW_PER_MHZ`), rounded
  order-of-magnitude figures of the kind AMD's Xilinx Power Estimator (XPE, UG440) gives for
  7-series / UltraScale+ logic at its default activity (12.5 % toggle rate, fanout 3, BRAM
  enabled half the time) with routing and clock tree folded into LUT and FF. They are our
  reading of typical XPE results, not calibrated against a board; Lattice parts (ECP5, iCE40)
  use the same coefficients scaled by :data:`FAMILY_DYNAMIC_SCALE` (smaller, slower fabrics).
  Expect the dynamic part to be within a factor of 2-3 of a vendor tool's estimate; for small
  designs the static board power dominates anyway.

Energy per inference = power * time per inference. For the FPGA, ``throughput`` mode uses the
steady-state interval (``interval / clock``: inferences streamed back to back) and ``latency``
mode the latency of one inference through an idle pipeline (``latency / clock``); for the CPU and
GPU, throughput mode is the best batch and latency mode batch 1.
"""

from __future__ import annotations

import glob
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

# Package TDP (W) and core count of the CPU families whose names /proc/cpuinfo shows, from the
# vendors' spec sheets; matched in order (first regex that matches the model name wins).
CPU_TDP: tuple[tuple[str, float, int, str], ...] = (
    (r"EPYC\s*9\d\d4", 360.0, 96, "AMD EPYC 9654 (Genoa): 360 W, 96 cores"),
    (r"EPYC\s*7\d\d3", 280.0, 64, "AMD EPYC 7763 (Milan): 280 W, 64 cores"),
    (r"EPYC", 280.0, 64, "AMD EPYC, model not shown (assumed 7763, Milan): 280 W, 64 cores"),
    (r"Xeon.*Platinum", 270.0, 40, "Intel Xeon Platinum 8380 (Ice Lake): 270 W, 40 cores"),
    (r"Xeon", 235.0, 28, "Intel Xeon Gold 6348 (Ice Lake): 235 W, 28 cores"),
    (r"Ryzen", 105.0, 8, "AMD Ryzen 7 5800X: 105 W, 8 cores"),
    (r"Core\(TM\) i[3579]", 65.0, 8, "Intel Core desktop (i7-10700): 65 W, 8 cores"),
    (r"Apple|ARM|Neoverse|Cortex", 30.0, 8, "ARM server/laptop core cluster: ~30 W, 8 cores"),
)
DEFAULT_TDP = (65.0, 8, "unknown CPU: a 65 W, 8-core desktop part assumed")

# FPGA dynamic power, microwatts per MHz per resource (see the module docstring).
DYNAMIC_UW_PER_MHZ = {"lut": 0.12, "ff": 0.03, "dsp": 6.0, "bram36": 20.0}
FAMILY_DYNAMIC_SCALE = {"xc7": 1.0, "xcup": 0.7, "ecp5": 0.8, "ice40": 0.3}


@dataclass(frozen=True)
class Power:
    """A power figure: watts, whether a counter measured it, and how it was obtained."""

    watts: float | None
    measured: bool
    method: str


def cpu_model_name() -> str:
    """The processor's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_tdp_power(threads: int, model_name: str | None = None) -> Power:
    """Estimated power of ``threads`` busy cores: their share of the package TDP."""
    name = model_name or cpu_model_name()
    tdp, cores, source = DEFAULT_TDP
    for pattern, t, c, s in CPU_TDP:
        if re.search(pattern, name):
            tdp, cores, source = t, c, s
            break
    watts = threads * tdp / cores
    return Power(watts, False, f"estimated: {threads} thread(s) x TDP/cores = {threads} x {tdp:g} W / "
                               f"{cores} ({source}; no readable RAPL counter)")


def rapl_files() -> list[Path]:
    """The readable RAPL package energy counters (``energy_uj``), one per CPU package."""
    found = []
    for path in sorted(glob.glob("/sys/class/powercap/intel-rapl*/energy_uj")):
        p = Path(path)
        name = (p.parent / "name").read_text().strip() if (p.parent / "name").exists() else ""
        if name.startswith("package") and os.access(p, os.R_OK):
            found.append(p)
    return found


class EnergyMeter:
    """Reads an energy counter around a block: ``with meter.measure() as m: ...`` then
    ``m.joules`` (None where nothing was readable) and ``m.method``."""

    def __init__(self) -> None:
        self.joules: float | None = None
        self.seconds: float = 0.0
        self.method = ""

    def read(self) -> float | None:  # joules since some origin
        raise NotImplementedError

    def wrap(self) -> float | None:  # counter range in joules, for wrap-around
        return None

    @contextmanager
    def measure(self) -> Iterator["EnergyMeter"]:
        start, t = self.read(), time.perf_counter()
        try:
            yield self
        finally:
            self.seconds = time.perf_counter() - t
            end = self.read()
            if start is None or end is None:
                self.joules = None
            else:
                d = end - start
                if d < 0 and self.wrap():
                    d += self.wrap()
                self.joules = d if d >= 0 else None


class RaplMeter(EnergyMeter):
    """Sum of the RAPL package counters (microjoules, wrapping at ``max_energy_range_uj``)."""

    def __init__(self, files: list[Path] | None = None) -> None:
        super().__init__()
        self.files = rapl_files() if files is None else files
        self.method = (f"measured: RAPL package energy ({', '.join(str(f) for f in self.files)}) over "
                       "the timed runs; the whole package, idle cores and other processes included")

    def read(self) -> float | None:
        try:
            return sum(int(f.read_text()) for f in self.files) * 1e-6
        except (OSError, ValueError):
            return None

    def wrap(self) -> float | None:
        try:
            return sum(int((f.parent / "max_energy_range_uj").read_text()) for f in self.files) * 1e-6
        except (OSError, ValueError):
            return None


class NvmlMeter(EnergyMeter):
    """NVML's total energy counter of one GPU (millijoules since the driver loaded)."""

    def __init__(self, handle) -> None:
        super().__init__()
        self.handle = handle
        self.method = "measured: NVML total energy consumption of the GPU over the timed runs"

    def read(self) -> float | None:
        import pynvml

        try:
            return pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) * 1e-3
        except pynvml.NVMLError:
            return None


def cpu_meter() -> RaplMeter | None:
    """A RAPL meter where a package counter is readable, else None (use :func:`cpu_tdp_power`)."""
    meter = RaplMeter()
    return meter if meter.files and meter.read() is not None else None


def nvml_handle(index: int = 0):
    """``(handle, name)`` of GPU ``index`` through pynvml, or ``(None, reason)``."""
    try:
        import pynvml
    except ImportError:
        return None, "pynvml is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        return handle, name.decode() if isinstance(name, bytes) else str(name)
    except pynvml.NVMLError as e:
        return None, f"NVML: {e}"


def nvml_power_limit(handle) -> Power:
    """The GPU's power limit as an (upper-bound) power estimate."""
    import pynvml

    try:
        watts = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
    except pynvml.NVMLError as e:
        return Power(None, False, f"no GPU power figure (NVML: {e})")
    return Power(watts, False, f"estimated: NVML enforced power limit {watts:g} W (an upper bound) "
                               "x time; the energy counter is not supported on this GPU")


def fpga_power(board, resources: dict | None, clock_mhz: float | None = None) -> dict:
    """The FPGA power model (module docstring) for ``board`` with ``resources``
    (``lut``, ``ff``, ``dsp``, ``bram36``; None: static power only) at ``clock_mhz`` (default:
    the board's clock). Returns ``{static_w, dynamic_w, total_w, measured: False, method,
    coefficients_uw_per_mhz, resources_from}``."""
    clock = float(clock_mhz or board.clock_mhz)
    static = float(board.power_w_rough)
    scale = FAMILY_DYNAMIC_SCALE.get(board.family, 1.0)
    if resources:
        dynamic = clock * scale * sum(float(resources.get(k) or 0) * c
                                      for k, c in DYNAMIC_UW_PER_MHZ.items()) * 1e-6
        detail = "dynamic = f x sum(resource x coefficient)"
    else:
        dynamic = 0.0
        detail = "no resource counts (synthesis skipped): static only"
    return {
        "static_w": round(static, 4),
        "dynamic_w": round(dynamic, 4),
        "total_w": round(static + dynamic, 4),
        "clock_mhz": clock,
        "measured": False,
        "method": (f"estimated: power model (hetero.report.energy): board static {static:g} W "
                   f"(boards.json power_w_rough, rough) + {detail} at {clock:g} MHz "
                   f"({board.family} x{scale:g})"),
        "coefficients_uw_per_mhz": dict(DYNAMIC_UW_PER_MHZ),
    }


def energy_uj(watts: float | None, seconds_per_inference: float | None) -> float | None:
    """Microjoules per inference (None when either figure is missing)."""
    if watts is None or seconds_per_inference is None:
        return None
    return watts * seconds_per_inference * 1e6
