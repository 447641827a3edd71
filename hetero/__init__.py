"""hetero: from ONNX to FPGA hardware with open tools.

The public facade::

    graph = hetero.compile_model("model.onnx", config="cfg.yml", board="pynq")
    y = hetero.predict("model.onnx", x)                  # bit-accurate reference
    report = hetero.synth("model.onnx", "pynq", "out/")  # RTL, simulation, synthesis, report
    hetero.boards.get("pynq-z2")
"""

from . import boards
from .config import Config
from .errors import SimulationError, ToolError, UserError
from .fixed import FixedType
from .flow import compile_model, predict, synth

__all__ = ["boards", "Config", "FixedType", "UserError", "ToolError", "SimulationError",
           "compile_model", "predict", "synth"]
