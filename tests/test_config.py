"""hls4ml-style configs: precedence, spellings, errors that name the file and key."""

import json

import numpy as np
import pytest

from conftest import model_path
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.flows.common import compile_model


def test_default_is_fixed_16_6():
    cfg = Config().for_layer("any", ("Dense",))
    t = cfg.type_of("weight")
    assert (t.width, t.int_bits, t.signed) == (16, 6, True)


def test_precedence_model_then_type_then_name(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("""
Model:
  Precision: fixed<12,4>
  ReuseFactor: 2
LayerType:
  Dense:
    Precision: {weight: "fixed<8,2>"}
LayerName:
  fc1:
    Precision:
      result: ufixed<6,3,RND,SAT>
    PE: 4
    SIMD: 2
""")
    cfg = Config.load(path)
    fc1 = cfg.for_layer("fc1", ("Dense",))
    assert fc1.type_of("weight") == FixedType(8, 2)
    assert fc1.type_of("result") == FixedType(6, 3, False, "RND", "SAT")
    assert fc1.type_of("bias") == FixedType(12, 4)
    assert (fc1.pe, fc1.simd, fc1.reuse_factor) == (4, 2, 2)
    other = cfg.for_layer("fc2", ("Relu",))
    assert other.type_of("weight") == FixedType(12, 4)


def test_json_config_and_layer_names_apply(tmp_path):
    path = tmp_path / "c.json"
    dense = "_class__keras_layers_core_Dense__"
    path.write_text(json.dumps({"Model": {"Precision": "fixed<16,6>"},
                                "LayerName": {dense: {"ReuseFactor": 16, "Precision": {"weight": "fixed<6,1>"}}}}))
    g = compile_model(model_path("three_layer"), path)
    node = g.node(dense)
    assert str(node.types["weight"]) == "fixed<6,1>"
    assert node.attrs["pe"] * node.attrs["simd"] >= 16 * 64 / 16


@pytest.mark.parametrize("text,match", [
    ("Model: {Precision: fixed<16>}", "cannot parse fixed-point type"),
    ("Model: {Precison: fixed<16,6>}", "unknown key.*Precison"),
    ("Models: {}", "unknown config section"),
    ("Model: {ReuseFactor: -1}", "ReuseFactor: expected a positive integer"),
    ("Model: {Precision: {wieght: 'fixed<8,3>'}}", "unknown Precision key"),
    ("Model: [1, 2", "not a valid YAML"),
])
def test_bad_configs_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        Config.load(path).for_layer("x", ("Dense",))
    assert str(path) in str(e.value)


def test_unknown_layer_name_lists_layers(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("LayerName: {nosuchlayer: {ReuseFactor: 2}}")
    with pytest.raises(UserError, match="nosuchlayer.*matches no layer"):
        compile_model(model_path("two_layer"), path)
