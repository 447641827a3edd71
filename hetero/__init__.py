"""hetero: from ONNX to FPGA hardware with open tools.

The public facade::

    graph = hetero.compile_model("model.onnx", config="cfg.yml", board="pynq")
    y = hetero.predict("model.onnx", x)                  # bit-accurate reference
    report = hetero.synth("model.onnx", "pynq", "out/")  # RTL, simulation, synthesis, report
    hetero.boards.get("pynq-z2")

The functions come from :mod:`hetero.api`, ``Config`` and ``FixedType`` from :mod:`hetero.ir`,
``boards`` is :mod:`hetero.boards`; each is imported on first use (``import hetero`` itself loads
only the error classes), so the command line and ``import hetero`` start in milliseconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hetero.errors import SimulationError, ToolError, UserError

if TYPE_CHECKING:
    from hetero import boards
    from hetero.api import compare, compile_model, csim, estimate, predict, simulate, synth
    from hetero.ir.config import Config
    from hetero.ir.fixed import FixedType

#: public name -> the module that defines it (``boards`` is a module of its own)
_LAZY = {
    "compile_model": "hetero.api",
    "predict": "hetero.api",
    "estimate": "hetero.api",
    "simulate": "hetero.api",
    "csim": "hetero.api",
    "synth": "hetero.api",
    "compare": "hetero.api",
    "boards": "hetero.boards",
    "Config": "hetero.ir.config",
    "FixedType": "hetero.ir.fixed",
}

__all__ = ["compile_model", "predict", "estimate", "simulate", "csim", "synth", "compare",
           "boards", "Config", "FixedType", "UserError", "ToolError", "SimulationError"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hetero' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if name == "boards" else getattr(loaded, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
