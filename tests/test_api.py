"""hetero.api, the typed public facade: each of its seven functions on a tiny MLP, returning
its typed result whose to_json() is the JSON the command line writes."""

import json

import numpy as np
import pytest

from hetero import api
from hetero.errors import UserError
from hetero.ir.graph import Graph
from tiny_models import tiny_mlp


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_mlp(tmp_path_factory.mktemp("api") / "tiny.onnx")


def test_the_facade_names():
    import hetero

    for name in ("compile_model", "predict", "estimate", "simulate", "csim", "synth", "compare"):
        assert callable(getattr(api, name)) and getattr(api, name).__doc__
        assert getattr(hetero, name) is getattr(api, name)


def test_compile_model_and_predict(model, tmp_path):
    g = api.compile_model(model, board="pynq", dump=tmp_path / "dump")
    assert isinstance(g, Graph) and (tmp_path / "dump" / "00-import.txt").is_file()
    x = np.random.default_rng(0).standard_normal((5, 6))
    y = api.predict(model, x)
    from hetero.reference import predict as reference

    np.testing.assert_array_equal(y, reference(api.compile_model(model), x))
    assert y.shape == (5, 3)


def test_estimate_from_a_file_or_a_graph(model):
    e = api.estimate(model, "pynq-z2", target_interval=4)
    assert isinstance(e, api.Estimate) and e.interval_cycles <= 4
    same = api.estimate(api.compile_model(model, board="pynq", target_interval=4), "pynq")
    assert same.to_json() == e.to_json()
    j = json.loads(json.dumps(e.to_json()))
    assert {"resources", "latency_cycles", "interval_cycles", "layers", "utilization", "fits",
            "over"} <= set(j)
    assert set(j["utilization"]) == {"lut", "ff", "dsp", "bram36"} and j["fits"] is True
    assert isinstance(e.totals, api.Resources)


def test_bad_board_and_targets_are_user_errors(model):
    with pytest.raises(UserError, match="no-such-board"):
        api.estimate(model, "no-such-board")
    with pytest.raises(UserError, match="give one of them"):
        api.compile_model(model, board="pynq", target_interval=2, target_fps=1e6)


@pytest.mark.verilator
def test_simulate(model, tmp_path):
    r = api.simulate(model, n=40, backpressure=0.2, seed=3, out=tmp_path / "out")
    assert isinstance(r, api.SimResult) and r.bit_exact and r.inferences == 40
    assert isinstance(r.run, api.Run) and r.run.outputs.shape == (40, 3)
    j = json.loads(json.dumps(r.to_json()))
    assert j["bit_exact"] and j["latency_cycles"] == r.sim.latency_cycles
    assert not (tmp_path / "out" / "mismatches.npz").exists()


@pytest.mark.gxx
def test_csim(model, tmp_path):
    r = api.csim(model, n=20, out=tmp_path / "out")
    assert isinstance(r, api.CsimResult) and r.bit_exact
    assert r.to_json()["inferences"] == 20 and (tmp_path / "out" / "hls" / "hetero_top.cpp").is_file()


@pytest.mark.verilator
@pytest.mark.yosys
def test_synth(model, tmp_path):
    out = tmp_path / "out"
    r = api.synth(model, "pynq", out, n=30, compare=False)
    assert isinstance(r, api.Report) and r.bit_exact
    written = json.loads((out / "report.json").read_text())
    assert written == json.loads(json.dumps(r.to_json()))
    assert api.Report.from_json(written).to_json() == written
    assert r.resources["synth"]["lut"] > 0 and r.fits is True
    assert set(r.utilization) == {"lut", "ff", "dsp", "bram36", "uram"}


@pytest.mark.verilator
def test_compare_without_out(model):
    r = api.compare(model, "pynq", n=20)
    assert isinstance(r, api.Report) and r.baselines["fpga"]["batch1_latency_us"] > 0
    assert "cpu" in r.baselines and r.resources["synth"] is None
