"""Issue 15 items 3 and 8: any declared batch, inputs of any count, and the input-shape rule.

Item 3: a graph that fixes its batch (an input declared with batch 1, or a Reshape whose
constant shape fixes the leading axis: PyTorch/Brevitas exports of Flatten as
``Reshape(x, [1, -1])``) runs in onnxruntime one inference (or the batch it fixes) at a time, in
every step that runs onnxruntime (synth's float agreement, the CPU baseline's batch sweep,
compare's accuracy); onnxruntime prints nothing of its own.

Item 8: an input batch is accepted when its per-sample shape is the model's, or differs only in
axes of size 1; anything else is one ``error:`` line naming both shapes and the file, exit 2.

The models are built here with onnx.helper (a 4x4 image, a 3x3 convolution, a Reshape, a
MatMul): small enough that Verilator builds them in seconds.
"""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import model_path


def hetero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def assert_one_line_error(result, code=2, *contains):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for c in contains:
        assert c in lines[0], lines[0]


def assert_quiet_onnxruntime(result):
    """No onnxruntime log line (``[E:onnxruntime:...]``, ``[W:onnxruntime:...]``) and no traceback."""
    text = result.stdout + result.stderr
    assert ":onnxruntime:" not in text and "Traceback" not in text, text[-3000:]


def conv_model(path, *, channels=1, batch=1, reshape_batch=1, classes=3, size=4, flatten0=False):
    """x [batch, channels, size, size] -> Conv 3x3 (pad 1) to 2 channels -> Relu -> Reshape to
    ``[reshape_batch, -1]`` (a constant shape; ``0`` copies the batch: a batch-free graph) ->
    MatMul to ``classes`` -> Add. ``batch``: the declared batch (an int, or a name).
    ``flatten0``: a Flatten with axis 0 (Keras's exports) instead of the Reshape."""
    rng = np.random.default_rng(7)
    feat = 2 * size * size
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (2, channels, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.1, (2,)).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([reshape_batch, -1], np.int64), "shape"),
             numpy_helper.from_array(rng.normal(0, 0.3, (feat, classes)).astype(np.float32), "M"),
             numpy_helper.from_array(rng.normal(0, 0.1, (classes,)).astype(np.float32), "C")]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3],
                          pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         (helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=0) if flatten0 else
          helper.make_node("Reshape", ["r", "shape"], ["f"], name="flatten")),
         helper.make_node("MatMul", ["f", "M"], ["m"], name="dense"),
         helper.make_node("Add", ["m", "C"], ["y"], name="bias")],
        "fixed_batch", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def one_at_a_time(path, x):
    """The model's output, one inference per onnxruntime run at its declared shapes."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
    return np.concatenate([sess.run(None, {"x": xi.reshape(shape).astype(np.float32)})[0]
                           for xi in x])


# -- item 3: a graph that fixes its batch ----------------------------------------------------------

@pytest.mark.parametrize("batch, reshape_batch, flatten0", [(1, 1, False), ("N", 1, False), (2, 2, False),
                                                           (1, 0, False), ("N", 0, False), ("N", 0, True)])
def test_run_float_any_batch(tmp_path, batch, reshape_batch, flatten0):
    """onnxruntime's float outputs for 5 inputs whatever batch the graph fixes: the same as one
    inference at a time (batch 2 fixed: chunks of two, the last one padded)."""
    from hetero.frontend.onnxrt import run_float

    path = conv_model(tmp_path / "m.onnx", batch=batch, reshape_batch=reshape_batch, flatten0=flatten0)
    x = np.random.default_rng(1).standard_normal((5, 1, 4, 4))
    want = one_at_a_time(conv_model(tmp_path / "one.onnx", batch=1, reshape_batch=1), x)
    got = run_float(path, x)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch, reshape_batch, flatten0, fixed", [
    (1, 1, False, 1), ("N", 1, False, 1), (2, 2, False, 2), ("N", 0, False, None), (1, 0, False, None),
    ("N", 0, True, 1), (1, 0, True, 1)])
def test_fixed_batch_finds_the_reshape(tmp_path, batch, reshape_batch, flatten0, fixed):
    from hetero.frontend.onnxrt import fixed_batch

    got = fixed_batch(onnx.load(conv_model(tmp_path / "m.onnx", batch=batch, reshape_batch=reshape_batch,
                                           flatten0=flatten0)))
    assert (got[0] if got else None) == fixed
    if got:
        assert "flatten" in got[1]  # the node that fixes it is named


def test_mnist8_fixes_its_batch():
    """The ONNX-zoo MNIST (a Reshape to [1, 256]; the weight's own Reshape to [256, 10] is a
    constant and does not count)."""
    from hetero.frontend.onnxrt import fixed_batch, run_float

    path = model_path("onnxzoo_mnist-8_from_qonnx_wheel.onnx")
    got = fixed_batch(onnx.load(path))
    assert got is not None and got[0] == 1 and "Times212_reshape0" in got[1]
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    assert run_float(path, x).shape == (3, 10)


@pytest.mark.parametrize("batch", [1, "N"])
def test_synth_with_inputs_on_a_fixed_batch_model(tmp_path, batch):
    """``hetero synth --inputs`` (5 inputs) on a graph whose Reshape fixes batch 1: exit 0,
    float agreement over all 5, the CPU sweep timed at batch 1 only and saying why, and no
    onnxruntime log line."""
    path = conv_model(tmp_path / "m.onnx", batch=batch, reshape_batch=1)
    np.save(tmp_path / "x.npy", np.random.default_rng(2).standard_normal((5, 1, 4, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 0, 1]))
    r = hetero("synth", path, "-b", "pynq", "-o", tmp_path / "out", "--inputs", tmp_path / "x.npy",
               "--labels", tmp_path / "y.npy", "--no-synth")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_quiet_onnxruntime(r)
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    fa = rep["float_agreement"]
    assert fa["inferences"] == 5 and "skipped" not in fa and fa["class_agreement"] >= 0.8, fa
    cpu = rep["baselines"]["cpu"]
    assert cpu is not None, rep["baselines"]
    assert [row["batch"] for row in cpu["throughput"]] == [1]
    assert "flatten" in cpu["sweep_note"] and "batch 1" in cpu["sweep_note"], cpu["sweep_note"]
    assert "onnxruntime" in rep["accuracy"], rep["accuracy"]  # compare's accuracy ran it too


def test_sweep_of_a_batch_free_model_is_unchanged(tmp_path):
    """A graph that fixes nothing is timed over the whole sweep, without a note."""
    from hetero.report.baselines import cpu_baseline

    path = conv_model(tmp_path / "m.onnx", batch="N", reshape_batch=0)
    out = cpu_baseline(onnx.load(path), budget_s=0.2)
    assert [r["batch"] for r in out["throughput"]][:3] == [1, 2, 4]
    assert "sweep_note" not in out or "fix" not in out["sweep_note"]


def test_sweep_skips_batches_the_model_refuses_silently(tmp_path, capfd):
    """A graph that fails at batch sizes above 1 in a way hetero cannot see statically (the
    Reshape's shape computed, not constant) is timed at the sizes that run; onnxruntime's
    error lines are not printed."""
    from hetero.report.baselines import cpu_baseline

    path = conv_model(tmp_path / "m.onnx", batch="N", reshape_batch=1)
    model = onnx.load(path)
    # the constant shape through an Identity: not a constant initializer any more
    init = next(i for i in model.graph.initializer if i.name == "shape")
    init.name = "shape0"
    model.graph.node.insert(0, helper.make_node("Identity", ["shape0"], ["shape"], name="ident"))
    out = cpu_baseline(model, budget_s=0.2)
    assert [r["batch"] for r in out["throughput"]] == [1]
    assert "batch" in out["sweep_note"]
    captured = capfd.readouterr()
    assert ":onnxruntime:" not in captured.out + captured.err


def test_mnist8_synth_float_agreement(tmp_path):
    """The issue's case: the ONNX-zoo MNIST with 4 inputs, ``--no-synth --no-compare``."""
    path = model_path("onnxzoo_mnist-8_from_qonnx_wheel.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32))
    r = hetero("synth", path, "-b", "pynq", "-o", tmp_path / "out", "--inputs", tmp_path / "x.npy",
               "--no-synth", "--no-compare")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_quiet_onnxruntime(r)
    fa = json.loads((tmp_path / "out" / "report.json").read_text())["float_agreement"]
    assert fa["inferences"] == 4 and "class_agreement" in fa, fa


# -- item 8: the input-shape rule ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 16), (5, 4, 4, 3), (5, 2, 8), (5, 1, 16)])
def test_inputs_of_another_shape_are_refused(tmp_path, shape):
    """A flat batch, or one whose per-sample shape has other axes than the model's, is refused
    by predict (fixed and --float) and synth: one line naming both shapes and the file."""
    channels = 3 if shape[-1] == 3 else 1
    path = conv_model(tmp_path / "m.onnx", channels=channels, batch="N", reshape_batch=0)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(shape))
    per_sample = str(list(shape[1:]))
    model = f"[N, {channels}, 4, 4]"
    for extra in ((), ("--float",)):
        r = hetero("predict", path, "--inputs", x, "-o", tmp_path / "y.npy", *extra)
        assert_one_line_error(r, 2, str(x), per_sample, model, "does not match the model input")
        assert not (tmp_path / "y.npy").exists()
    r = hetero("synth", path, "-b", "pynq", "-o", tmp_path / "out", "--inputs", x, "--no-synth")
    assert_one_line_error(r, 2, str(x), per_sample, model)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(5, 1, 4, 4), (5, 4, 4), (5, 4, 4, 1), (5, 1, 4, 1, 4), (1, 4, 4)])
def test_inputs_differing_in_size_one_axes_are_accepted(tmp_path, shape):
    """Only axes of size 1 differ: the same numbers in the same order, accepted as the model's
    shape ((1, 4, 4) is one unbatched sample of a [N, 1, 4, 4] model)."""
    path = conv_model(tmp_path / "m.onnx", batch="N", reshape_batch=0)
    x = np.random.default_rng(3).standard_normal(shape)
    np.save(tmp_path / "x.npy", x)
    r = hetero("predict", path, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--float")
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    n = 1 if shape == (1, 4, 4) else 5
    assert y.shape == (n, 3)
    np.testing.assert_allclose(y, one_at_a_time(path, x.reshape(n, 1, 4, 4)), rtol=1e-4, atol=1e-4)


def test_check_inputs_rule():
    """The rule itself, on hetero.reference.check_inputs: per-sample shapes compared with
    their size-1 axes dropped."""
    from hetero.errors import UserError
    from hetero.frontend.onnx import import_onnx
    from hetero.reference import check_inputs
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        g = import_onnx(conv_model(Path(d) / "m.onnx", channels=3, batch="N", reshape_batch=0))
    assert check_inputs(g, np.zeros((2, 3, 4, 4))).shape == (2, 3, 4, 4)
    assert check_inputs(g, np.zeros((3, 4, 4))).shape == (1, 3, 4, 4)  # one unbatched sample
    assert check_inputs(g, np.zeros((2, 1, 3, 4, 1, 4))).shape == (2, 3, 4, 4)
    for bad in [(2, 48), (2, 4, 4, 3), (2, 3, 16), (2, 12, 4), ()]:
        with pytest.raises(UserError, match="does not match the model input") as e:
            check_inputs(g, np.zeros(bad), "X.npy")
        assert "X.npy" in str(e.value) and "[N, 3, 4, 4]" in str(e.value)


def test_calibration_file_follows_the_rule(tmp_path):
    """--calibrate data of another per-sample shape is refused the same way."""
    path = conv_model(tmp_path / "m.onnx", batch="N", reshape_batch=0)
    np.save(tmp_path / "x.npy", np.zeros((5, 1, 4, 4)))
    np.save(tmp_path / "cal.npy", np.zeros((5, 16)))
    r = hetero("predict", path, "--inputs", tmp_path / "x.npy", "--calibrate", tmp_path / "cal.npy",
               "-o", tmp_path / "y.npy")
    assert_one_line_error(r, 2, str(tmp_path / "cal.npy"), "[16]", "[N, 1, 4, 4]")
