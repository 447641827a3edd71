"""hetero: from ONNX to FPGA hardware with open tools.

The public facade::

    graph = hetero.compile_model("model.onnx", config="cfg.yml", board="pynq")
    y = hetero.predict("model.onnx", x)                  # bit-accurate reference
    report = hetero.synth("model.onnx", "pynq", "out/")  # RTL, simulation, synthesis, report
    hetero.boards.get("pynq-z2")
"""

from hetero import boards
from hetero.ir.config import Config
from hetero.errors import SimulationError, ToolError, UserError
from hetero.ir.fixed import FixedType
from hetero.flows.common import compile_model, predict
from hetero.flows.synth import synth

__all__ = ["boards", "Config", "FixedType", "UserError", "ToolError", "SimulationError",
           "compile_model", "predict", "synth"]
