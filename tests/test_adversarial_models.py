"""Hostile and malformed models (issue 16, items 4, 5, 6 and 10): model text is escaped for every
output (terminal, rich tables, Markdown, figures, JSON); external data is checked in every graph;
malformed models are one ``error:`` line (a UserError, exit 2), never a traceback or a number
onnxruntime would not give; resource bombs are refused before they cost memory or minutes."""

from __future__ import annotations

import io
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from hetero.errors import UserError
from hetero.frontend.onnx import import_onnx, load_model

ESC = "\x1b]0;pwned\x07\x1b[2J"  # set the window title, clear the screen


def _mlp(names=("fc1", "relu", "fc2"), alpha=None, opset=13, inputs=None, extra_nodes=()) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), name)
             for name, s in (("W1", (6, 5)), ("b1", (5,)), ("W2", (5, 3)), ("b2", (3,)))]
    gemm_attrs = {} if alpha is None else {"alpha": alpha}
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name=names[0], **gemm_attrs),
             helper.make_node("Relu", ["h"], ["r"], name=names[1]),
             *extra_nodes,
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name=names[2])]
    graph = helper.make_graph(nodes, "tiny", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _cli(*args):
    from hetero.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def _assert_one_line_error(result, contains: str = "") -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert contains in lines[0], lines[0]
    return lines[0]


# -- item 4: model text escaped for every output ---------------------------------------------------

def _no_terminal_controls(text: str) -> None:
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)


def test_error_line_shows_escape_sequences_of_node_names_as_text(tmp_path):
    model = _mlp(extra_nodes=[helper.make_node("NoSuchOp", ["r"], ["junk"], name="evil" + ESC + "\n# heading")])
    line = _assert_one_line_error(_cli("import", _save(model, tmp_path / "m.onnx")), "NoSuchOp")
    _no_terminal_controls(line)
    assert "\\x1b]0;pwned\\x07" in line  # shown, not executed


def test_import_and_estimate_tables_print_markup_and_controls_literally(tmp_path):
    path = _save(_mlp(names=("[/]fc1", "[bold]relu" + ESC, "fc2\n# heading")), tmp_path / "m.onnx")
    for args in (("import", path), ("estimate", path, "--board", "pynq-z2")):
        r = _cli(*args)
        assert r.exit_code == 0, (r.output, r.exception)
        _no_terminal_controls(r.output)
        assert "[/]fc1" in r.output and "[bold]relu" in r.output
    table = json.loads(_cli("import", path, "--json").output)
    assert [row["name"] for row in table["layers"]][:1] == ["[/]fc1"]  # JSON keeps the data


def _report_with(name: str, model: str = "m.onnx") -> dict:
    hist = {"edges": [-1.0, 0.0, 1.0], "counts": [2, 3]}
    return {
        "model": model, "board": "pynq-z2", "part": "xc7z020clg400-1", "clock_mhz": 100,
        "latency_cycles": 12, "interval_cycles": 2, "latency_us": 0.12, "throughput_per_s": 5e7,
        "layers": [{"runs_on": "fpga", "name": name, "op": "Dense", "in_type": "fixed<16,6>",
                    "out_type": "fixed<16,6>", "parallelism": {"pe": 2}, "cycles": {"latency": 4, "interval": 2},
                    "resources": {"lut": 10, "ff": 5, "dsp": 1, "bram36": 0}}],
        "simulation": {"simulator": "verilator", "inferences": 10, "bit_exact": True, "mismatches": 0},
        "resources": {"synth": None}, "utilization": None, "fits": None,
        "baselines": {"cpu": {"device": "[bold]cpu" + ESC, "batch1_latency_us": 8.0, "best_throughput_per_s": 4e6,
                              "energy": {"batch1_uj": 30.0, "throughput_uj": 1.1, "measured": False,
                                         "method": "TDP"}},
                      "fpga": {"device": "pynq-z2", "batch1_latency_us": 0.12, "best_throughput_per_s": 5e7,
                               "energy": {"power_w": 3.6, "batch1_uj": 0.4, "throughput_uj": 0.07}}},
        "fixed_point_error": {"samples": 10, "layers": [
            {"layer": name, "op": "Dense", "type": "fixed<16,6>", "lsb": 2 ** -10, "max_abs_error": 0.5,
             "rms_error": 0.1, "snr_db": 20.0, "hist": hist}]},
    }


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\n# Owned | cell" + ESC + " $\\frac{$ [/]"


def test_markdown_report_escapes_names(tmp_path):
    from hetero.report.html import render_markdown, write_report

    md = render_markdown(_report_with(HOSTILE, model="<b>net</b>\n# x.onnx"), {})
    assert "<script" not in md and "<img" not in md and "<b>" not in md
    assert not any(line.startswith("# Owned") or line.startswith("# x") for line in md.splitlines())
    _no_terminal_controls(md)
    error_rows = [line for line in md.splitlines() if "alert" in line and "Dense" in line]
    assert error_rows and all(line.count(" | ") == 4 for line in error_rows)  # no extra cell
    written = write_report(_report_with(HOSTILE), tmp_path)  # figures with mathtext in names
    assert (tmp_path / "report.html").is_file() and written


def test_comparison_table_prints_markup_literally():
    from rich.console import Console

    from hetero.report.baselines import print_comparison

    buf = io.StringIO()
    print_comparison(_report_with("x", model="models/[bold]evil.onnx"), console=Console(file=buf, width=200))
    out = buf.getvalue()
    assert "[bold]evil.onnx" in out and "[bold]cpu" in out
    _no_terminal_controls(out)


def test_calibration_table_prints_markup_literally():
    from rich.console import Console

    from hetero.passes.calibrate import print_report

    buf = io.StringIO()
    print_report({"samples": 3, "layers": [{"layer": "[/]x" + ESC, "op": "Dense", "result_type": "fixed<8,4>",
                                            "weight_type": None, "max_abs_error": None}]},
                 console=Console(file=buf, width=200))
    assert "[/]x" in buf.getvalue()
    _no_terminal_controls(buf.getvalue())


def test_text_helpers():
    from hetero.ir.text import markdown, plot_label, printable, rich_markup

    assert printable("a\x1b[2Jb\nc\u202e") == "a\\x1b[2Jb\\nc\\u202e"
    assert printable(b"RE\xff") == "RE\\xff"
    assert printable("plain name_1.weight") == "plain name_1.weight"
    assert "<" not in markdown("<b>") and "\\|" in markdown("a|b")
    assert rich_markup("[/]") == "\\[/]" and plot_label("$x$") == "\\$x\\$"


# -- item 5: external data in every graph ----------------------------------------------------------

def _external(name: str, location: str, dims=(1,), offset=None, length=None) -> onnx.TensorProto:
    t = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            t.external_data.add(key=key, value=str(value))
    return t


def test_external_data_inside_if_branch_is_checked(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    (tmp_path / "m").mkdir()
    const = helper.make_node("Constant", [], ["c"])
    const.attribute.append(helper.make_attribute("value", _external("c", "../secret.bin")))
    branch = helper.make_graph([const], "then", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    other = helper.make_graph([helper.make_node("Constant", [], ["d"], value_float=1.0)], "else", [],
                              [helper.make_tensor_value_info("d", TensorProto.FLOAT, [])])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
         helper.make_node("If", ["cond"], ["k"], then_branch=branch, else_branch=other),
         helper.make_node("Mul", ["x", "k"], ["y"])],
        "ifs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m" / "m.onnx")
    with pytest.raises(UserError, match="outside the model's folder"):
        load_model(path)
    _assert_one_line_error(_cli("import", path), "outside the model's folder")


# -- item 6: malformed models are one line ----------------------------------------------------------

def _with_external_w1(tmp_path, offset=None, length=None) -> onnx.ModelProto:
    model = _mlp()
    w1 = model.graph.initializer[0]
    (tmp_path / "w.bin").write_bytes(numpy_helper.to_array(w1).tobytes())  # 120 bytes
    model.graph.initializer[0].CopyFrom(_external("W1", "w.bin", (6, 5), offset, length))
    return model


def _no_output_node(tmp_path):
    return _mlp(extra_nodes=[helper.make_node("Relu", ["r"], [], name="sink")])


def _bad_dims(tmp_path):
    model = _mlp()
    model.graph.initializer[0].raw_data = np.zeros(10, np.float32).tobytes()  # dims [6, 5]
    return model


def _unknown_dtype(tmp_path):
    model = _mlp()
    model.graph.initializer[1].data_type = 99
    return model


def _invalid_utf8(tmp_path):
    data = _mlp(names=("fc1", "RELUNAME", "fc2")).SerializeToString().replace(b"RELUNAME", b"RE\xff\xfeNAME")
    return onnx.load_from_string(data)


def _zero_width(tmp_path):
    model = _mlp()
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.zeros((6, 0), np.float32), "W1"))
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.zeros((0,), np.float32), "b1"))
    model.graph.initializer[2].CopyFrom(numpy_helper.from_array(np.zeros((0, 3), np.float32), "W2"))
    return model


def _constant(**value):
    def build(tmp_path):
        return _mlp(extra_nodes=[helper.make_node("Constant", [], ["k"], name="k", **value),
                                 helper.make_node("Mul", ["r", "k"], ["r2"], name="mul")])
    return build


def _batchnorm_negative_variance(tmp_path):
    inits = [numpy_helper.from_array(np.ones(4, np.float32), "s"), numpy_helper.from_array(np.zeros(4, np.float32), "b"),
             numpy_helper.from_array(np.zeros(4, np.float32), "m"),
             numpy_helper.from_array(np.array([1, -2, 1, 1], np.float32), "v")]
    graph = helper.make_graph([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
                              "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _input_of(elem_type):
    return lambda tmp_path: _mlp(inputs=[helper.make_tensor_value_info("x", elem_type, [1, 6])])


def _duplicate_input(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
    return _mlp(inputs=[x, x])


def _edited(edit):
    def build(tmp_path):
        model = _mlp()
        edit(model)
        return model
    return build


def _quant_zero_point(tmp_path):
    consts = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in (("s", 0.5), ("z", 1e38), ("b", 4.0))]
    model = _mlp(extra_nodes=[helper.make_node("Quant", ["r", "s", "z", "b"], ["q"], name="quant",
                                               domain="qonnx.custom_op.general", signed=1, narrow=0,
                                               rounding_mode="ROUND")])
    model.graph.node[-1].input[0] = "q"
    model.graph.initializer.extend(consts)
    model.opset_import.append(helper.make_opsetid("qonnx.custom_op.general", 1))
    return model


MALFORMED = {
    "external offset beyond the file": (lambda p: _with_external_w1(p, offset=1_000_000), "offset"),
    "external length beyond the file": (lambda p: _with_external_w1(p, length=99_999), "length"),
    "negative external offset": (lambda p: _with_external_w1(p, offset=-8), "offset"),
    "non-integer external offset": (lambda p: _with_external_w1(p, offset="abc"), "offset"),
    "weight dims disagree with data": (_bad_dims, "W1"),
    "node without outputs": (_no_output_node, "sink"),
    "NaN Gemm alpha": (lambda p: _mlp(alpha=float("nan")), "alpha"),
    "Inf Gemm alpha": (lambda p: _mlp(alpha=float("inf")), "alpha"),
    "1e38 Gemm alpha": (lambda p: _mlp(alpha=1e38), "alpha"),
    "NaN Constant value_float": (_constant(value_float=float("nan")), "NaN"),
    "Inf Constant value_floats": (_constant(value_floats=[1.0, float("inf"), 1, 1, 1]), "NaN or Inf"),
    "unknown data type": (_unknown_dtype, "data type"),
    "invalid UTF-8 name": (_invalid_utf8, "UTF-8"),
    "zero-width layer": (_zero_width, "fc1"),
    "negative BatchNorm variance": (_batchnorm_negative_variance, "variance"),
    "string input": (_input_of(TensorProto.STRING), "STRING"),
    "complex input": (_input_of(TensorProto.COMPLEX64), "COMPLEX64"),
    "int64 input": (_input_of(TensorProto.INT64), "INT64"),
    "opset 1": (lambda p: _mlp(opset=1), "opset 1"),
    "opset 99": (lambda p: _mlp(opset=99), "opset 99"),
    "duplicated graph input": (_duplicate_input, "'x'"),
    # found by fuzzing
    "attribute of the wrong type": (lambda p: _mlp(alpha=[1.0, 2.0]), "alpha"),
    "attribute the op does not have": (_edited(lambda m: m.graph.node[1].attribute.append(
        helper.make_attribute("foo", 1))), "foo"),
    "required input left empty": (_edited(lambda m: m.graph.node[0].input.__setitem__(1, "")), "required"),
    "weight that is not a matrix": (_edited(lambda m: m.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.array(2.0, np.float32), "W1"))), "matrix"),
    "Quant zero point beyond its bit width": (_quant_zero_point, "zero point"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_model_is_one_error_line(tmp_path, case):
    build, contains = MALFORMED[case]
    path = _save(build(tmp_path), tmp_path / "m.onnx")
    with pytest.raises(UserError) as info:
        from hetero.flows.common import compile_model

        compile_model(path, None, "pynq-z2")
    assert contains in str(info.value) and "\n" not in str(info.value)
    _assert_one_line_error(_cli("import", path), contains)


def test_requantization_beyond_int64_is_refused():
    from hetero.ir.quant import make_requant

    with pytest.raises(UserError, match="beyond 64-bit"):  # was a silent cast of Inf to int64
        make_requant(np.array([0.5]), np.array([1e300]), -128, 127, "ROUND")


def test_inf_reaching_the_error_histograms_is_drawn():
    from hetero.report import plots
    from hetero.report.baselines import fixed_point_errors

    from hetero.ir.graph import Graph, Node, Tensor
    from hetero.ir.fixed import FixedType

    t = FixedType(8, 4)
    graph = Graph(name="g", nodes=(Node(name="relu", op="Relu", inputs=("x",), outputs=("y",)),),
                  tensors={"x": Tensor("x", (4,), dtype=t), "y": Tensor("y", (4,), dtype=t)},
                  inputs=("x",), outputs=("y",))
    rows = fixed_point_errors({"y": np.array([[1.0, np.inf, -np.inf, np.nan]])}, graph,
                              {"y": np.array([[16, 16, 16, 16]])})
    assert all(math.isfinite(e) for r in rows for e in r["hist"]["edges"])
    json.dumps(rows, allow_nan=False)  # report.json stays valid JSON
    assert plots.error_histograms(rows) is not None


# -- item 10: resource bombs -------------------------------------------------------------------------

def _constant_of_shape(n: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([n], np.int64))),
         helper.make_node("ConstantOfShape", ["shape"], ["big"], name="bomb",
                          value=numpy_helper.from_array(np.array([1.0], np.float32))),
         helper.make_node("ReduceSum", ["big"], ["s"], keepdims=1),
         helper.make_node("Mul", ["x", "s"], ["y"])],
        "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_constant_folding_bomb_is_refused_before_allocating(tmp_path, monkeypatch):
    monkeypatch.delenv("HETERO_FOLD_LIMIT_MB", raising=False)
    path = _save(_constant_of_shape(600_000_000), tmp_path / "bomb.onnx")  # 2.4 GB of float32
    assert path.stat().st_size < 400
    t = time.perf_counter()
    with pytest.raises(UserError, match="HETERO_FOLD_LIMIT_MB") as info:
        import_onnx(path)
    assert time.perf_counter() - t < 5 and "bomb" in str(info.value)
    import_onnx(_save(_constant_of_shape(1000), tmp_path / "small.onnx"))  # a small one folds
    monkeypatch.setenv("HETERO_FOLD_LIMIT_MB", "0.001")  # the limit is the user's to set
    with pytest.raises(UserError, match="HETERO_FOLD_LIMIT_MB"):
        import_onnx(tmp_path / "small.onnx")


def test_synth_refuses_a_design_grossly_over_the_board_before_generating_hardware(tmp_path, monkeypatch):
    import hetero.flows.synth as flow

    monkeypatch.delenv("HETERO_ALLOW_OVERSIZED", raising=False)
    W = np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
                              [numpy_helper.from_array(W, "W")])
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "big.onnx")

    def no_hardware(*args, **kwargs):
        raise AssertionError("hardware generated for a design 7x over the board")

    monkeypatch.setattr(flow, "Top", no_hardware)
    with pytest.raises(UserError, match="HETERO_ALLOW_OVERSIZED") as info:
        flow.synth(path, "icebreaker", tmp_path / "out", synthesize=False, compare=False)
    assert "BRAM36" in str(info.value) and "estimate" in str(info.value)
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("HETERO_ALLOW_OVERSIZED", "1")  # forced: it goes on to the hardware
    with pytest.raises(AssertionError, match="hardware generated"):
        flow.synth(path, "icebreaker", tmp_path / "out", synthesize=False, compare=False)
