"""The ONNX importer on small text fixtures and on the real MLPs, against onnxruntime."""

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import helper, numpy_helper

from conftest import MLPS, model_path
from hetero.errors import UserError
from hetero.frontend.onnx import import_onnx, load_model
from hetero.frontend.onnxrt import run_float
from hetero.passes.pipeline import simplify
from hetero.reference import predict


def parse(text: str, **weights) -> onnx.ModelProto:
    model = onnx.parser.parse_model(text)
    for name, value in weights.items():
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
    onnx.checker.check_model(model)
    return model


MLP_TEXT = """
<ir_version: 8, opset_import: ["" : 13]>
mlp (float[N, 4] x) => (float[N, 3] y) {
    h = MatMul(x, W1)
    hb = Add(h, B1)
    d = Dropout(hb)
    r = Relu(d)
    f = Flatten(r)
    i = Identity(f)
    z = Gemm<transB = 1, alpha = 0.5>(i, W2, B2)
    y = Softmax<axis = 1>(z)
}
"""


def mlp_model():
    rng = np.random.default_rng(0)
    return parse(MLP_TEXT, W1=rng.normal(size=(4, 5)), B1=rng.normal(size=5),
                 W2=rng.normal(size=(3, 5)), B2=rng.normal(size=3))


def test_mlp_lowers_to_dense_relu_softmax():
    g = simplify(import_onnx(mlp_model()))
    assert [n.op for n in g.nodes] == ["Dense", "Relu", "Dense", "Softmax"]
    assert g.tensors[g.inputs[0]].shape == (4,)
    assert g.nodes[0].params["W"].shape == (4, 5)
    text = str(g)
    assert "Dense[h](x)" in text and "return y" in text


def test_float_reference_equals_onnxruntime_on_fixture():
    model = mlp_model()
    x = np.random.default_rng(1).normal(size=(20, 4))
    g = simplify(import_onnx(model))
    np.testing.assert_allclose(predict(g, x), run_float(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("key", list(MLPS))
def test_float_reference_equals_onnxruntime_on_real_mlps(key):
    path = model_path(key)
    g = simplify(import_onnx(path))
    x = np.random.default_rng(2).normal(size=(64,) + g.tensors[g.inputs[0]].shape)
    np.testing.assert_allclose(predict(g, x), run_float(path, x), rtol=1e-4, atol=1e-5)


def test_unsupported_ops_are_all_listed_with_their_nodes():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 4] x) => (float[N, 4] y) {
        a = Cos(x)
        b = Relu(a)
        y = Erf(b)
    }""")
    with pytest.raises(UserError) as e:
        import_onnx(model)
    msg = str(e.value)
    assert "Cos (node 'a')" in msg and "Erf (node 'y')" in msg and "supported: " in msg and "Gemm" in msg


def test_dynamic_weights_are_refused_by_node():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 4] x, float[4, 4] w) => (float[N, 4] y) {
        y = MatMul(x, w)
    }""")
    with pytest.raises(UserError, match="MatMul node 'y': weight input 'w' must be a constant"):
        import_onnx(model)


def test_nan_weights_refused():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 2] x) => (float[N, 2] y) { y = MatMul(x, W) }""", W=[[1, np.nan], [0, 1]])
    with pytest.raises(UserError, match="NaN or Inf"):
        import_onnx(model)


def test_unsorted_graph_refused():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 2] x) => (float[N, 2] y) { a = Relu(x) \n y = Relu(a) }""")
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    with pytest.raises(UserError, match="produced by no earlier node"):
        import_onnx(model)


def test_external_data_outside_model_folder_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    w = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[2, 2])
    w.data_location = onnx.TensorProto.EXTERNAL
    for k, v in {"location": "../secret.bin", "offset": "0", "length": "16"}.items():
        w.external_data.add(key=k, value=v)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])], [w])
    path = folder / "m.onnx"
    onnx.save(helper.make_model(g), str(path))
    with pytest.raises(UserError, match="outside the model's folder: refused"):
        load_model(path)


def test_not_onnx_and_missing_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01this is not a protobuf" * 10)
    with pytest.raises(UserError, match="not an ONNX model"):
        load_model(bad)
    with pytest.raises(UserError, match="file not found"):
        load_model(tmp_path / "nope.onnx")


def test_model_names_never_reach_generated_verilog():
    from hetero.ir.config import Config
    from hetero.backends.rtl.top import to_verilog
    from hetero.passes.pipeline import pipeline, run_pipeline

    evil = 'x */ endmodule module evil(); initial $finish; endmodule /* "\\n`define'
    rng = np.random.default_rng(0)
    model = parse(MLP_TEXT, W1=rng.normal(size=(4, 5)), B1=rng.normal(size=5),
                  W2=rng.normal(size=(3, 5)), B2=rng.normal(size=3))
    for k, node in enumerate(model.graph.node):
        node.name = f"{evil}{k}"
    model.graph.name = evil
    g = run_pipeline(import_onnx(model), pipeline(Config(), None))
    assert g.nodes[0].name.startswith(evil)  # names are kept for reports and configs...
    verilog = to_verilog(g)
    assert "evil" not in verilog and "$finish" not in verilog  # ...but never emitted


def test_inconsistent_declared_shape_is_refused():
    text = MLP_TEXT.replace("(float[N, 3] y)", "(float[N, 7] y)")
    rng = np.random.default_rng(0)
    model = onnx.parser.parse_model(text)
    for name, v in dict(W1=rng.normal(size=(4, 5)), B1=rng.normal(size=5),
                        W2=rng.normal(size=(3, 5)), B2=rng.normal(size=3)).items():
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(v, dtype=np.float32), name))
    with pytest.raises(UserError, match="tensor 'y'.*declares shape.*7.*compute.*3.*inconsistent"):
        import_onnx(model)


def test_model_too_large_for_memory_is_refused(monkeypatch):
    import hetero.ops.onnx_context as imp

    monkeypatch.setattr(imp, "memory_limit", lambda: 100)  # bytes: less than 43 float64 weights
    with pytest.raises(UserError, match="model too large"):
        import_onnx(mlp_model())


def test_shape_subgraph_folds_to_a_reshape():
    """FINN's TFC export: Shape -> Gather -> Unsqueeze -> Concat(-1) -> Reshape."""
    text = """
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[N, 1, 4, 4] x) => (float[N, 16] y) {
        s = Shape(x)
        i = Constant<value = int64 {0}>()
        b = Gather<axis = 0>(s, i)
        u = Unsqueeze<axes = [0]>(b)
        m = Constant<value = int64[1] {-1}>()
        t = Concat<axis = 0>(u, m)
        y = Reshape(x, t)
    }
    """
    g = import_onnx(parse(text))
    assert [n.op for n in g.nodes] == ["Reshape"] and g.tensors["y"].shape == (16,)
    x = np.random.default_rng(0).normal(size=(3, 1, 4, 4))
    np.testing.assert_array_equal(predict(g, x), x.reshape(3, 16))


# -- the pipeline: one list, its prefixes, its dump -----------------------------------------------

def test_pipeline_is_one_list_and_the_flows_run_its_prefixes():
    from hetero.ir.config import Config
    from hetero.passes.pipeline import float_graph, pipeline, run_pipeline

    names = [name for name, _ in pipeline()]
    assert names == ["fuse_quant_clip", "fuse_epilogues", "fold_input_affine", "assign_precision",
                     "set_folding"]
    assert [n for n, _ in pipeline(stop_before="assign_precision")] == names[:3]
    with pytest.raises(ValueError, match="no pass 'typo'.*fuse_quant_clip, fuse_epilogues"):
        pipeline(stop_before="typo")
    g = import_onnx(mlp_model())
    assert str(simplify(g)) == str(run_pipeline(g, pipeline(stop_before="fold_input_affine")))
    untyped = float_graph(g, Config())
    assert str(untyped) == str(run_pipeline(g, pipeline(Config(), None)[:3]))
    assert all(t.dtype is None for t in untyped.tensors.values())


def test_a_pass_that_changes_nothing_returns_its_input():
    from hetero.passes.pipeline import pipeline

    g = simplify(import_onnx(mlp_model()))
    for name, p in pipeline(stop_before="assign_precision"):
        assert p(g) is g, name  # already fused; no input affine to fold
    relu = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    r (float[N, 4] x) => (float[N, 4] y) {
        y = Relu(x)
    }
    """)
    passes = dict(pipeline())
    typed = passes["assign_precision"](import_onnx(relu))
    assert passes["set_folding"](typed) is typed  # no layer to fold


def test_dump_folder_writes_the_graph_after_every_pass(tmp_path):
    from hetero.passes.pipeline import dump_folder, pipeline, run_pipeline

    seen = []
    write = dump_folder(tmp_path / "dump")

    def dump(name, graph):
        seen.append((name, str(graph)))
        write(name, graph)

    run_pipeline(import_onnx(mlp_model()), pipeline(), dump=dump)
    files = sorted((tmp_path / "dump").iterdir())
    assert [f.name for f in files] == [f"{k:02d}-{name}.txt" for k, (name, _) in enumerate(seen)]
    assert [name for name, _ in seen] == ["import"] + [name for name, _ in pipeline()]
    assert all(f.read_text() == text + "\n" for f, (_, text) in zip(files, seen))
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="file: dump path exists and is not a folder"):
        dump_folder(tmp_path / "file")
