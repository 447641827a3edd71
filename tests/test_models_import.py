"""Patterns of real exported models: a Transpose that moves the batch axis, undone by a later
Transpose, around elementwise ops and BatchNormalization (Keras's BatchNormalization of a
[N, C] tensor); and what cannot be carried through such a pair, refused with a UserError
naming the op."""

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper

from conftest import model_path
from hetero.ir.config import Config
from hetero.errors import UserError
from hetero.frontend.onnx import import_onnx, load_model
from hetero.frontend.onnxrt import run_float
from hetero.passes.pipeline import assign_precision, simplify
from hetero.reference import predict


def parse(text: str, opset: int = 13, **consts) -> onnx.ModelProto:
    model = onnx.parser.parse_model(f'<ir_version: 8, opset_import: ["" : {opset}]>\n' + text)
    for name, value in consts.items():
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
    onnx.checker.check_model(model)
    return model


def rng_x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)


def bn_consts(c, seed=1):
    r = np.random.default_rng(seed)
    return dict(g=r.uniform(0.5, 2, c), b=r.normal(size=c), m=r.normal(size=c), v=r.uniform(0.5, 2, c))


def check_float(model, x):
    g = import_onnx(model)
    got = predict(g, x)
    np.testing.assert_allclose(got, run_float(model, x), rtol=1e-5, atol=1e-6)
    return g


def ops(g):
    return [n.op for n in g.nodes]


# -- the Keras model ----------------------------------------------------------------------------

def _without_transposes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with every Transpose dropped: BatchNormalization on [N, C] directly (what
    the Keras export means; onnxruntime runs its [C, N] form only when N == C)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    skip = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Transpose"}

    def real(t):
        while t in skip:
            t = skip[t]
        return t

    kept = [n for n in m.graph.node if n.op_type != "Transpose"]
    for n in kept:
        n.input[:] = [real(i) for i in n.input]
    del m.graph.node[:]
    m.graph.node.extend(kept)
    del m.graph.value_info[:]
    for o in m.graph.output:
        o.name = real(o.name)
    return m


def test_keras_batchnorm_between_transposes():
    path = model_path("hls4ml_examplemodels_three_layer_bn_keras.onnx")
    model = load_model(path)
    assert sum(n.op_type == "Transpose" for n in model.graph.node) == 8
    g = import_onnx(model)
    assert "Transpose" not in ops(g)
    assert ops(g).count("ScaleShift") == 4
    assert all(n.params["a"].shape == g.tensors[n.inputs[0]].shape for n in g.nodes if n.op == "ScaleShift")
    g = simplify(g)
    assert ops(g) == ["Dense", "Relu"] * 3 + ["Dense", "Softmax"]  # every batch norm folded

    x = rng_x(500, 16)
    want = run_float(_without_transposes(model), x)
    got = predict(g, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    gt = assign_precision(g, Config())
    cls = predict(gt, x).reshape(len(x), -1)
    cls = cls.reshape(-1) if cls.shape[1] == 1 else cls.argmax(1)  # argmax strategy: class indices
    assert np.mean(cls == got.argmax(1)) >= 0.99


def test_keras_pattern_declared_shapes_batch_one():
    """The Keras form itself (batch 1, [C, 1] shapes declared), against numpy."""
    c = bn_consts(6)
    m = parse("""g (float[1, 6] x) => (float[1, 6] y)
        <float[6, 1] t, float[6, 1] u> {
        t = Transpose(x)
        u = BatchNormalization<epsilon = 0.001>(t, g, b, m, v)
        y = Transpose(u)
    }""", opset=7, **c)
    g = import_onnx(m)
    assert ops(g) == ["ScaleShift"] and g.tensors[g.outputs[0]].shape == (6,)
    x = rng_x(4, 6)
    a = np.float32(c["g"]) / np.sqrt(np.float32(c["v"]) + 0.001)
    want = (x - np.float32(c["m"])) * a + np.float32(c["b"])
    np.testing.assert_allclose(predict(g, x), want, rtol=1e-5, atol=1e-6)


# -- patterns onnxruntime runs at any batch size ----------------------------------------------

def test_elementwise_between_transposes_vs_onnxruntime():
    m = parse("""g (float[N, 5] x) => (float[N, 5] y) {
        t = Transpose<perm = [1, 0]>(x)
        s = Mul(t, k)
        r = Relu(s)
        z = Add(r, d)
        y = Transpose<perm = [1, 0]>(z)
    }""", k=np.float32(1.5), d=np.float32(-0.25))
    g = check_float(m, rng_x(7, 5))
    assert ops(g) == ["ScaleShift", "Relu", "Add"]


def test_batchnorm_channel_axis_through_permutation_vs_onnxruntime():
    """[N, C, H, W] -> [C, H, N, W]: BatchNormalization's channels are H."""
    m = parse("""g (float[N, 2, 3, 4] x) => (float[N, 2, 3, 4] y) {
        t = Transpose<perm = [1, 2, 0, 3]>(x)
        u = BatchNormalization(t, g, b, m, v)
        r = Relu(u)
        y = Transpose<perm = [2, 0, 1, 3]>(r)
    }""", **bn_consts(3))
    g = check_float(m, rng_x(5, 2, 3, 4))
    assert ops(g) == ["ScaleShift", "Relu"]
    assert g.nodes[0].params["a"].shape == (1, 3, 1)


def test_closing_transpose_leaves_a_permutation_vs_onnxruntime():
    """Composed, the two Transposes keep the batch first but swap H and W: one IR Transpose."""
    m = parse("""g (float[N, 2, 3, 4] x) => (float[N, 2, 4, 3] y) {
        t = Transpose<perm = [1, 2, 0, 3]>(x)
        u = BatchNormalization(t, g, b, m, v)
        y = Transpose<perm = [2, 0, 3, 1]>(u)
    }""", **bn_consts(3))
    g = check_float(m, rng_x(5, 2, 3, 4))
    assert ops(g) == ["ScaleShift", "Transpose"] and g.nodes[1].attrs["perm"] == (0, 2, 1)
    gt = assign_precision(g, Config())
    assert np.mean(np.abs(predict(gt, rng_x(5, 2, 3, 4)) - predict(g, rng_x(5, 2, 3, 4)))) < 0.01


def test_two_pairs_in_a_row_and_an_identity_between():
    m = parse("""g (float[N, 4] x) => (float[N, 4] y) {
        t = Transpose<perm = [1, 0]>(x)
        i = Identity(t)
        y1 = Transpose<perm = [1, 0]>(i)
        t2 = Transpose<perm = [1, 0]>(y1)
        s = Sigmoid(t2)
        y = Transpose<perm = [1, 0]>(s)
    }""")
    g = check_float(m, rng_x(3, 4))
    assert ops(g) == ["Sigmoid"]


# -- refused, naming the op ---------------------------------------------------------------------

@pytest.mark.parametrize("body,match", [
    # an op with an axis between the two
    ("t = Transpose<perm = [1, 0]>(x) \n s = Softmax<axis = 1>(t) \n y = Transpose<perm = [1, 0]>(s)",
     "Transpose node 'y': Softmax node 's' lies between it and Transpose node 't'.*batch axis"),
    # a layer between the two
    ("t = Transpose<perm = [1, 0]>(x) \n s = MatMul(t, w) \n y = Transpose<perm = [1, 0]>(s)",
     "MatMul node 's'"),
    # the closing Transpose still moves the batch axis
    ("t = Transpose<perm = [1, 0, 2]>(x3) \n y = Transpose<perm = [2, 1, 0]>(t)",
     "Transpose node 'y': perm \\[2, 1, 0\\] after Transpose node 't'.*still moves the batch axis"),
    # an intermediate tensor used twice
    ("t = Transpose<perm = [1, 0]>(x) \n r = Relu(t) \n e = Elu(r) \n y = Transpose<perm = [1, 0]>(r)",
     "Transpose node 'y': 'r' .* is also used by Elu node 'e'"),
    # per-element constant in the transposed layout
    ("t = Transpose<perm = [1, 0]>(x) \n s = Mul(t, k) \n y = Transpose<perm = [1, 0]>(s)",
     "Mul node 's'"),
    # batch norm whose scale does not match the channel axis it gets
    ("t = Transpose<perm = [1, 0]>(x) \n u = BatchNormalization(t, g3, g3, g3, g3) \n"
     "y = Transpose<perm = [1, 0]>(u)",
     "BatchNormalization node 'u': after Transpose node 't'.*4 elements but it has 3 scale values"),
])
def test_refused_between_transposes(body, match):
    outputs = "float[N, 4] y" if "x3" not in body else "float[N, 2, 3] y"
    inputs = "float[N, 4] x" if "x3" not in body else "float[N, 2, 3] x3"
    m = parse(f"g ({inputs}) => ({outputs}) {{ {body} }}", w=np.ones((1, 4)), k=np.ones((4, 1)),
              g3=np.ones(3))
    with pytest.raises(UserError, match=match):
        import_onnx(m)


@pytest.mark.parametrize("body", [
    "y = Transpose<perm = [1, 0, 2]>(x)",
    "t = Transpose<perm = [1, 0, 2]>(x) \n y = Relu(t)",
])
def test_never_closed_is_refused(body):
    """A batch-moving Transpose that nothing undoes: a UserError naming it (at the end of the
    import where onnx_import calls ``transpose.finish_import``, else when the graph is typed
    or run)."""
    m = parse(f"g (float[N, 2, 3] x) => (float[2, N, 3] y) {{ {body} }}")
    match = "Transpose node '[ty]': perm \\[1, 0, 2\\] moves the batch axis.*no later Transpose restores it"
    with pytest.raises(UserError, match=match):
        predict(import_onnx(m), rng_x(2, 2, 3))
    with pytest.raises(UserError, match=match):
        assign_precision(import_onnx(m), Config())
