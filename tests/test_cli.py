"""The command line: predict, import, boards, and bad input (one line, exit 2, no traceback,
nothing half-written)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import MODELS, model_path
from hetero.frontend.onnxrt import run_float


def hetero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def assert_one_line_error(result, code=2, contains=""):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert contains in lines[0]


@pytest.mark.parametrize("key", ["three_layer", "three_layer_pytorch", "dense_big"])
def test_predict_agrees_with_float_onnxruntime_on_99_percent(tmp_path, key):
    path = model_path(key)
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = hetero("predict", path, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3000, 1)
    agreement = (y[:, 0] == run_float(path, x).argmax(1)).mean()
    assert agreement >= 0.99, agreement


def test_predict_two_layer_sigmoid_close_to_float(tmp_path):
    path = model_path("two_layer")
    x = np.random.default_rng(1).standard_normal((2000, 10))
    np.save(tmp_path / "x.npy", x)
    assert hetero("predict", path, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy").returncode == 0
    y, yf = np.load(tmp_path / "y.npy"), run_float(path, x)
    assert y.shape == yf.shape == (2000, 1)
    assert ((y > 0.5) == (yf > 0.5)).mean() >= 0.99
    assert np.abs(y - yf).max() < 0.02


def test_predict_float_mode_matches_onnxruntime(tmp_path):
    path = model_path("three_layer")
    x = np.random.default_rng(2).standard_normal((10, 16))
    np.save(tmp_path / "x.npy", x)
    assert hetero("predict", path, "--float", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy").returncode == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), run_float(path, x), rtol=1e-4, atol=1e-6)


def test_missing_model(tmp_path):
    r = hetero("synth", tmp_path / "nope.onnx", "--board", "pynq", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "nope.onnx: file not found")
    assert not (tmp_path / "out").exists()


def test_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("hello, I am not a model\n" * 20)
    r = hetero("synth", bad, "--board", "pynq", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "not an ONNX model")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_unsupported_op_names_op_node_and_supported_list(tmp_path):
    import onnx.parser

    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 4] x) => (float[N, 4] y) { a = Relu(x)  y = Erf(a) }""")
    onnx.save(model, tmp_path / "erf.onnx")
    r = hetero("synth", tmp_path / "erf.onnx", "--board", "pynq", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "Erf (node 'y')")
    assert "supported: " in r.stderr and "Gemm" in r.stderr
    assert not (tmp_path / "out").exists()


def test_op_without_hardware_yet_is_one_line_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")], "reflect",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], [pads])
    path = tmp_path / "reflect.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    r = hetero("import", path)  # imports, and says which layers have no hardware
    assert r.returncode == 0 and "without hardware" in r.stdout, r.stderr
    r = hetero("synth", path, "--board", "pynq", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "reflect")
    assert not (tmp_path / "out").exists()


def test_unknown_board_lists_boards(tmp_path):
    r = hetero("synth", model_path("two_layer"), "--board", "zedboard9000", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "unknown board 'zedboard9000'")
    assert "pynq-z2" in r.stderr and "alveo-u250" in r.stderr and "ulx3s-85f" in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_inputs_file(tmp_path):
    (tmp_path / "x.npy").write_text("nope")
    r = hetero("predict", model_path("two_layer"), "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(r, 2, "x.npy")
    np.save(tmp_path / "x.npy", np.zeros((4, 3)))
    r = hetero("predict", model_path("two_layer"), "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(r, 2, "does not match the model input")
    assert not (tmp_path / "y.npy").exists()


def test_import_and_boards_commands():
    r = hetero("import", model_path("three_layer"), "--board", "pynq", "--graph")
    assert r.returncode == 0, r.stderr
    assert "Dense[" in r.stdout and "pe=" in r.stdout and "4,256" in r.stdout  # graph, folding, MACs
    r = hetero("boards")
    assert r.returncode == 0 and "xc7z020clg400-1" in r.stdout


def test_output_path_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    r = hetero("synth", model_path("two_layer"), "--board", "pynq", "-o", tmp_path / "out")
    assert_one_line_error(r, 2, "not a folder")
    assert (tmp_path / "out").read_text() == "a file"


def test_import_quantized_model_lists_layers_and_what_lacks_hardware():
    r = hetero("import", model_path("finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx"), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    dense = [row for row in report["layers"] if row["op"] == "Dense"]
    assert len(dense) == 4 and dense[0]["macs"] == 490 * 256 and dense[0]["out_type"].startswith("ufixed<3,3>")
    assert report["totals"]["macs"] == 490 * 256 + 2 * 256 * 256 + 256 * 12
    assert all(row["hardware"] == "yes" or row["hardware"].startswith("no: ") for row in report["layers"])


@pytest.mark.verilator
def test_sim_folds_to_the_target_interval(tmp_path):
    r = hetero("sim", model_path("two_layer"), "--board", "pynq", "--target-interval", "8", "-n", "6")
    assert r.returncode == 0, r.stderr
    interval = float(re.search(r"interval\s+([\d.]+) cycles", r.stdout).group(1))
    assert interval <= 8 and "bit-exact: yes" in r.stdout


def test_bad_folding_targets_are_one_line_errors(tmp_path):
    assert_one_line_error(hetero("sim", model_path("two_layer"), "--target-interval", "0"), 2,
                          "--target-interval must be at least 1")
    assert_one_line_error(hetero("sim", model_path("two_layer"), "--target-fps", "1000"), 2,
                          "--target-fps needs a board")
    assert_one_line_error(hetero("synth", model_path("two_layer"), "-b", "pynq", "-o", tmp_path / "o",
                                 "--target-interval", "4", "--target-fps", "5"), 2, "give one of them")
    assert not (tmp_path / "o").exists()


# -- start-up: `import hetero` and the command line load no heavy module --------------------------

HEAVY = ("amaranth", "onnx", "onnxruntime", "numpy", "scipy", "matplotlib", "jinja2", "jschon",
         "rich", "yaml", "cocotb")


def test_import_hetero_and_its_cli_loads_no_heavy_module():
    code = "import json, sys, hetero, hetero.cli; print(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = {m.split(".")[0] for m in json.loads(r.stdout)}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_lists_every_command_with_its_help():
    from hetero.cli import main

    r = hetero("--help")
    assert r.returncode == 0, r.stderr
    assert "From ONNX to FPGA hardware" in r.stdout
    for name, command in main.commands.items():
        line = next((ln for ln in r.stdout.splitlines() if ln.split()[:1] == [name]), None)
        assert line is not None, name
        assert command.get_short_help_str(limit=300)[:20] in line, (name, line)
    r = hetero("--version")
    assert r.returncode == 0 and "version" in r.stdout


def test_facade_names_load_on_first_use():
    import hetero

    assert set(hetero.__all__) <= set(dir(hetero))
    assert hetero.boards.get("pynq-z2").name == "pynq-z2"
    from hetero.ir.config import Config
    from hetero.ir.fixed import FixedType

    assert hetero.Config is Config and hetero.FixedType is FixedType
    assert issubclass(hetero.ToolError, hetero.UserError) and issubclass(hetero.SimulationError, hetero.UserError)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        hetero.nope  # noqa: B018


def test_facade_functions_are_the_public_api():
    api = pytest.importorskip("hetero.api")
    import hetero

    for name in ("compile_model", "predict", "estimate", "simulate", "csim", "synth", "compare"):
        assert getattr(hetero, name) is getattr(api, name)


def test_synth_dump_writes_the_graph_after_every_pass(tmp_path):
    from hetero.passes.pipeline import pipeline

    # -n 0 fails after the pipeline (exit 2, nothing in -o): the dump is written as passes run
    r = hetero("synth", model_path("two_layer"), "-b", "pynq", "-o", tmp_path / "out", "--no-synth",
               "-n", "0", "--dump", tmp_path / "dump")
    assert_one_line_error(r, 2, "no inputs")
    names = ["import"] + [name for name, _ in pipeline()]
    files = sorted((tmp_path / "dump").iterdir())
    assert [f.name for f in files] == [f"{k:02d}-{name}.txt" for k, name in enumerate(names)]
    assert "Dense[" in files[-1].read_text() and "pe=" in files[-1].read_text()
    assert not (tmp_path / "out").exists()


def test_import_dump_prints_the_graph_after_every_pass():
    from hetero.passes.pipeline import pipeline

    r = hetero("import", model_path("two_layer"), "--dump")
    assert r.returncode == 0, r.stderr
    names = ["import"] + [name for name, _ in pipeline()]
    assert re.findall(r"^--- after (\w+) ---$", r.stdout, re.M) == names
