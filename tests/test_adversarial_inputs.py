"""Hostile configs, input files and options (issue 16, items 7 and 8): each is one ``error:`` line
on stderr naming what is wrong, exit code 2, no traceback, nothing written to ``-o``, and fast.

Every run is the real command line in a subprocess with its address space capped (a run that
tries to allocate what the input claims fails instead of swapping) and a timeout."""

import json
import resource
import subprocess
import sys

import numpy as np
import pytest

from tiny_models import tiny_mlp

MEMORY_CAP = 4 << 30  # bytes of address space for each run
TIMEOUT_S = 60


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def hetero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=TIMEOUT_S, preexec_fn=_cap_memory)


def assert_one_line_error(result, code=2, *contains):
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for text in contains:
        assert text in lines[0], (text, lines[0])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_mlp(tmp_path_factory.mktemp("model") / "mlp.onnx")


# -- item 7: configs -------------------------------------------------------------------------------

def _alias_bomb() -> str:
    """A valid-looking config (anchors under LayerType entries that match no layer) whose
    Precision expands to 9**10 values: minutes and gigabytes for whoever walks it."""
    lines = ["LayerType:", "  a0: {Trace: &a0 [x, x, x, x, x, x, x, x, x]}"]
    lines += [f"  a{i}: {{Trace: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    return "\n".join(lines) + "\nModel: {Precision: *a9}\n"


BAD_CONFIGS = {  # file name -> (text, what the error names besides the file)
    "section_str.json": (json.dumps({"Model": "abc"}), "Model"),
    "section_list.json": (json.dumps({"LayerType": [1, 2]}), "LayerType"),
    "section_number.yml": ("LayerName: 5\n", "LayerName"),
    "layer_list.yml": ("LayerType:\n  Dense: [[PE, 2]]\n", "LayerType Dense"),
    "layer_number.yml": ("LayerName:\n  fc1: 7\n", "LayerName fc1"),
    "top_list.yml": ("- Model\n- LayerType\n", "mapping"),
    "deep.json": ('{"Model": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep"),
    "deep.yml": ("Model: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep"),
    "int_bits.yml": ("Model:\n  Precision: fixed<16,100>\n", "Precision: fixed<16,100> has 100 integer bits"),
    "int_bits_flow.yml": ("Model: {Precision: fixed<16,100>}\n", "Precision: fixed<16,100> has 100 integer bits"),
    "table_size.yml": ("Model:\n  TableSize: 1099511627776\n", "TableSize"),
    "strategy.yml": ("Model:\n  Strategy: [1, 2]\n", "Strategy"),
    "alias_bomb.yml": (_alias_bomb(), "alias"),
    "huge.yml": ("Model: {}\n" + "#" * (2 << 20) + "\n", "MiB"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_error_naming_file_and_key(tmp_path, model, name):
    text, key = BAD_CONFIGS[name]
    path = tmp_path / name
    path.write_text(text)
    r = hetero("estimate", model, "-b", "pynq", "-c", path)
    assert_one_line_error(r, 2, str(path), key)


@pytest.mark.parametrize("name", ["section_str.json", "int_bits.yml", "table_size.yml"])
def test_bad_config_fails_synth_before_any_output(tmp_path, model, name):
    text, key = BAD_CONFIGS[name]
    path = tmp_path / name
    path.write_text(text)
    r = hetero("synth", model, "-b", "pynq", "-o", tmp_path / "out", "-c", path, "--no-synth",
               "--no-compare", "-n", 2)
    assert_one_line_error(r, 2, str(path), key)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("folder", ["plain", "configs"])
def test_import_rejects_a_bad_config_whatever_its_path(tmp_path, model, folder):
    """Exit 2 for a bad config, whether or not its path happens to contain the word 'config'."""
    for text in ("Model:\n  Precision: fixed<99,3>\n", "LayerName:\n  nosuchlayer: {PE: 2}\n"):
        path = tmp_path / folder / "c.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        assert_one_line_error(hetero("import", model, "-c", path), 2, str(path))


def test_import_rejects_an_unknown_board(model):
    assert_one_line_error(hetero("import", model, "-b", "nosuchboard"), 2, "nosuchboard")


def test_config_docstring_example_parses(tmp_path):
    import hetero.ir.config as config_module
    from hetero.ir.fixed import FixedType

    doc = config_module.__doc__
    example = doc.split("::\n", 1)[1].split("\n\n", 1)[0]
    path = tmp_path / "example.yml"
    path.write_text("\n".join(line[4:] for line in example.splitlines()) + "\n")
    cfg = config_module.Config.load(path)
    fc1 = cfg.for_layer("fc1", ("Dense",))
    assert fc1.type_of("weight") == FixedType(8, 3) and fc1.type_of("bias") == FixedType(16, 6)
    assert fc1.reuse_factor == 4
    relu = cfg.for_layer("fc1_relu", ("Relu",))
    assert relu.type_of("result") == FixedType(8, 3, signed=False)


def test_yaml_anchors_within_the_limits_still_work(tmp_path):
    from hetero.ir.config import Config
    from hetero.ir.fixed import FixedType

    path = tmp_path / "anchors.yml"
    path.write_text("LayerName:\n  fc1: &shared {ReuseFactor: 2, Precision: {weight: 'fixed<8,3>'}}\n"
                    "  fc2: *shared\n")
    cfg = Config.load(path)
    assert cfg.for_layer("fc2", ("Dense",)).reuse_factor == 2
    assert cfg.for_layer("fc2", ("Dense",)).type_of("weight") == FixedType(8, 3)


# -- item 8: input files ---------------------------------------------------------------------------

def _npy_claiming(path, shape, payload=b"\0" * 64):
    """A .npy file whose header claims ``shape`` (float64) followed by only ``payload``."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": shape})
        f.write(payload)
    return path


@pytest.mark.parametrize("case", ["empty", "header_only", "huge_header", "truncated"])
def test_bad_inputs_file_is_one_line_error(tmp_path, model, case):
    path = tmp_path / "x.npy"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "header_only":
        path.write_bytes(b"\x93NUMPY\x01\x00")
    elif case == "huge_header":  # 10**12 rows claimed: refused before anything is allocated
        _npy_claiming(path, (10**12, 6))
    else:
        _npy_claiming(path, (100, 6))
    r = hetero("predict", model, "--inputs", path, "-o", tmp_path / "y.npy")
    assert_one_line_error(r, 2, str(path))
    assert not (tmp_path / "y.npy").exists()
    r = hetero("synth", model, "-b", "pynq", "-o", tmp_path / "out", "--inputs", path, "--no-synth",
               "--no-compare")
    assert_one_line_error(r, 2, str(path))
    assert not (tmp_path / "out").exists()


def test_inputs_file_within_the_limits_loads(tmp_path, model):
    from hetero.flows.common import load_inputs

    x = np.random.default_rng(0).standard_normal((5, 6))
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_inputs(tmp_path / "x.npy"), x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x.astype(np.float32)))
    np.testing.assert_array_equal(load_inputs(tmp_path / "f.npy"), x.astype(np.float32))


# -- item 8: numeric options -----------------------------------------------------------------------

SYNTH = ("synth", "{model}", "-b", "pynq", "-o", "{out}", "--no-synth", "--no-compare")
BAD_OPTIONS = [  # (command line, the option the error names)
    (SYNTH + ("-n", "-1"), "-n"),
    (SYNTH + ("-n", "1000000000"), "-n"),
    (SYNTH + ("-n", "2", "--seed", "-1"), "--seed"),
    (SYNTH + ("-n", "2", "--seed", str(2**70)), "--seed"),
    (SYNTH + ("-n", "2", "--clock-mhz", "inf"), "--clock-mhz"),
    (SYNTH + ("-n", "2", "--clock-mhz", "nan"), "--clock-mhz"),
    (SYNTH + ("-n", "2", "--clock-mhz", "0"), "--clock-mhz"),
    (SYNTH + ("-n", "2", "--target-fps", "nan"), "--target-fps"),
    (SYNTH + ("-n", "2", "--target-fps", "inf"), "--target-fps"),
    (SYNTH + ("-n", "2", "--target-interval", str(2**80)), "--target-interval"),
    (("estimate", "{model}", "-b", "pynq", "--target-fps", "nan"), "--target-fps"),
    (("estimate", "{model}", "-b", "pynq", "--target-fps", "-inf"), "--target-fps"),
    (("compare", "{model}", "-b", "pynq", "-n", "-5"), "-n"),
    (("compare", "{model}", "-b", "pynq", "-n", "2", "--seed", "-1"), "--seed"),
    (("compare", "{model}", "-b", "pynq", "-n", "2", "--target-fps", "nan"), "--target-fps"),
    (("sim", "{model}", "-n", "1000000000"), "-n"),
    (("sim", "{model}", "-n", "2", "--seed", "-1"), "--seed"),
    (("sim", "{model}", "-n", "2", "--backpressure", "nan"), "--backpressure"),
    (("sim", "{model}", "-n", "2", "--backpressure", "1"), "--backpressure"),
    (("sim", "{model}", "-n", "2", "--backpressure", "-0.5"), "--backpressure"),
    (("sim", "{model}", "-b", "pynq", "-n", "2", "--target-fps", "nan"), "--target-fps"),
    (("csim", "{model}", "-n", "-1"), "-n"),
    (("csim", "{model}", "-n", "2", "--seed", "-1"), "--seed"),
]


@pytest.mark.parametrize("argv,option", BAD_OPTIONS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_OPTIONS])
def test_bad_numeric_option_is_one_line_error(tmp_path, model, argv, option):
    out = tmp_path / "out"
    r = hetero(*(a.format(model=model, out=out) for a in argv))
    assert_one_line_error(r, 2, f"'{option}")
    assert not out.exists()


def test_report_json_refuses_non_finite_numbers():
    """The report.json writer uses allow_nan=False: a NaN or Infinity can never be written."""
    import inspect

    import hetero.flows.synth as synth_flow

    source = inspect.getsource(synth_flow)
    writes = [line for line in source.splitlines() if '"report.json"' in line and "json.dumps" in line]
    assert writes and all("allow_nan=False" in line for line in writes), writes


def test_end_of_file_is_a_bad_input_not_an_interrupt(capsys):
    """main()'s classification is by type: an EOFError escaping a command (a file that ends
    early) is exit 2, not click's "interrupted" (130)."""
    import click

    from hetero.cli import _Group

    @click.group(cls=_Group)
    def group():
        pass

    @group.command()
    def reads():
        raise EOFError("No data left in file")

    with pytest.raises(SystemExit) as e:
        group.main(args=["reads"], prog_name="hetero")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == "error: unexpected end of a file (No data left in file)\n", err


@pytest.mark.parametrize("role", ["calibrate", "labels"])
def test_calibration_and_labels_files_are_checked_before_loading(tmp_path, model, role):
    """--calibrate and --labels files pass the same header check as --inputs (10**12 rows
    claimed: refused before anything is allocated)."""
    huge = _npy_claiming(tmp_path / f"{role}.npy", (10**12, 6))
    if role == "calibrate":
        x = tmp_path / "x.npy"
        np.save(x, np.zeros((4, 6)))
        r = hetero("predict", model, "--inputs", x, "--calibrate", huge, "-o", tmp_path / "y.npy")
    else:
        x = tmp_path / "x.npy"
        np.save(x, np.zeros((4, 6)))
        r = hetero("synth", model, "-b", "pynq", "-o", tmp_path / "out", "--inputs", x,
                   "--labels", huge, "--no-synth")
    assert_one_line_error(r, 2, str(huge), "at most")
    assert not (tmp_path / "out").exists() and not (tmp_path / "y.npy").exists()


def test_types_too_wide_for_the_reference_name_the_layer(tmp_path, model):
    """A config whose types make an accumulator wider than the 62 bits raw values may take is
    one line naming the layer, not a ValueError from the type."""
    cfg = tmp_path / "wide.yml"
    cfg.write_text("Model:\n  Precision: fixed<32,0>\n")
    r = hetero("estimate", model, "-b", "pynq", "--config", cfg)
    assert_one_line_error(r, 2, "Gemm node", "width", "narrower types")


def test_report_values_that_are_not_finite_are_written_as_null():
    from hetero.report.synth import json_safe

    value = {"a": [1.0, float("nan"), np.float64("inf")], "b": {"c": float("-inf")}, "d": (2, 3)}
    assert json.loads(json.dumps(json_safe(value), allow_nan=False)) == {
        "a": [1.0, None, None], "b": {"c": None}, "d": [2, 3]}
