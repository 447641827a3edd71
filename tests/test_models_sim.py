"""Shared models through the whole hardware path: every layer's component joined by the top
level, simulated in Verilator (native harness) and compared bit for bit with the reference;
the design's interval equals the cycle model, its latency is within the model's bound (exact
for one-beat layers). benchmarks/sim_models.py runs every shared model (docs/hardware.md);
TFC-w1a1 (a larger build) is in benchmarks/finn_compare.py, its XNOR units in test_hw_mac."""

import re
import tempfile

import numpy as np
import pytest

from hetero.errors import UserError
from hetero.flows.common import compile_model, random_inputs
from hetero.passes.folding import FoldingTarget
from hetero.dataflow import cycle_model
from hetero.flows.sim import simulate_graph

from conftest import SHARED

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

MODELS = {  # name: (file, target interval)
    "jet_mlp": ("hls4ml_examplemodels_three_layer_keras.onnx", 16),
    "conv2d_keras": ("hls4ml_examplemodels_conv2d_small_keras.onnx", 1),
    "conv1d_keras": ("hls4ml_examplemodels_conv1d_small_keras.onnx", 1),
    "conv2d_maxpool_folded": ("hls4ml_examplemodels_conv2d_small_mp_keras.onnx", 64),
    "unsw_w2a2": ("finn_unsw_nb15_mlp_w2a2_qonnxzoo.qonnx.onnx", 64),
    "ad01_int8": ("mlperftiny_ad01_autoencoder_int8_qdq_tf2onnx.onnx", 256),
}


def compile_for(path, target):
    try:
        return compile_model(path, board="pynq", target=FoldingTarget(target))
    except UserError as e:  # streamed images: at least one cycle per pixel
        need = re.search(r"needs at least (\d+) cycles", str(e))
        assert need, e
        return compile_model(path, board="pynq", target=FoldingTarget(int(need.group(1))))


@pytest.mark.parametrize("name", list(MODELS))
def test_model_is_bit_exact_and_cycle_exact_in_verilator(name):
    file, target = MODELS[name]
    path = SHARED / "models" / file
    if not path.exists():
        pytest.skip("shared models missing")
    g = compile_for(path, target)
    with tempfile.TemporaryDirectory() as work:
        run = simulate_graph(g, random_inputs(g, 4, seed=1), work)
    np.testing.assert_array_equal(run.got, run.expected)
    r = run.sim
    model = cycle_model(g)
    assert np.diff(r.in_cycles)[-1] == model["interval"]  # steady state
    assert r.latency_cycles == model["latency"]  # the beat-level model (hetero.hw.beats)
