"""ONNX backend node tests (shipped with onnx 1.22) through the importer and the reference executor.

Every case of :func:`hetero.testing.conformance.cases` must pass in float mode, unless it is a limit of
the design listed in ``EXPECTED_UNSUPPORTED`` (then the importer must refuse it with a
UserError: computing it silently, right or wrong, means the entry is stale or the op is wrong).
An exception other than UserError, in float or fixed mode, is always a failure: it is a bug.

``PENDING``: cases that fail today only because their op (or the op's feature) is still being
written. They are xfail (not strict) for AssertionError only, so a crash still fails them. Empty
it as the ops land: ``python -m hetero.testing.conformance`` shows what passes.
"""

import numpy as np
import pytest

from hetero.testing import conformance
from hetero.testing.conformance import EXPECTED_UNSUPPORTED, case, cases, run_case

PENDING: set[str] = set()  # cases whose op is not written yet (none left)


class ConformanceBug(Exception):
    """Not an AssertionError, so that PENDING's xfail never hides it."""


def _params():
    found = cases()
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no ONNX node tests under {conformance.data_dir()} (onnx 1.22 ships them)"))]
    return [pytest.param(c.name, id=c.name, marks=pytest.mark.xfail(
                strict=False, reason="op not implemented yet", raises=AssertionError))
            if c.name in PENDING else pytest.param(c.name, id=c.name)
            for c in found]


@pytest.mark.parametrize("name", _params())
def test_node_case(name):
    c = case(name)
    results = [run_case(c, "float"), run_case(c, "fixed")]
    for r in results:
        if r.status == "error":
            raise ConformanceBug(str(r))
    float_result = results[0]
    if name in EXPECTED_UNSUPPORTED:
        if float_result.status != "unsupported":
            raise ConformanceBug(
                f"{name} is a limit of the design ({EXPECTED_UNSUPPORTED[name]}) but the import did not "
                f"refuse it: float mode gave '{float_result.status}'"
                + (f" ({float_result.message})" if float_result.message else "")
                + "; the op must raise UserError (or, if it is now supported, drop the entry)")
        return
    assert float_result.status == "pass", str(float_result)


# -- the harness itself --------------------------------------------------------------------------

needs_data = pytest.mark.skipif(not cases(), reason="no ONNX node tests (onnx 1.22 ships them)")


@needs_data
def test_cases_cover_ops_and_lists_are_consistent():
    found = {c.name: c for c in cases()}
    assert {c.op for c in found.values()} <= set(conformance.OPS)
    assert {"Conv", "Gemm", "MatMul", "Add", "Resize", "QuantizeLinear"} <= {c.op for c in found.values()}
    assert set(EXPECTED_UNSUPPORTED) <= set(found), set(EXPECTED_UNSUPPORTED) - set(found)
    assert set(PENDING) <= set(found), set(PENDING) - set(found)
    assert set(conformance.EXPECTED_ROUNDED) <= set(found)
    assert not set(PENDING) & set(EXPECTED_UNSUPPORTED)
    # matched by the ops of the model, not by the folder's name; _expanded only on OPS
    assert found["test_celu_expanded"].ops == ("Constant", "Div", "Elu", "Mul")
    assert not any("_expanded" in n and set(c.ops) - set(conformance.OPS) - {"Constant"}
                   for n, c in found.items())


@needs_data
def test_data_input_rule():
    two = conformance.prepare(case("test_add"))  # x[3,4,5] + y[3,4,5]: two computed tensors
    assert sorted(two.feeds) == ["x", "y"] and not two.constants
    bcast = conformance.prepare(case("test_add_bcast"))  # x[3,4,5] + y[5]: a constant
    assert list(bcast.feeds) == ["x"] and list(bcast.constants) == ["y"]
    weights = conformance.prepare(case("test_matmul_2d"))  # a[3,4] @ b[4,3]: a weight matrix
    assert list(weights.feeds) == ["a"] and weights.constants["b"].shape == (4, 3)
    assert {i.name for i in weights.model.graph.input} == {"a"}
    conv = conformance.prepare(case("test_basic_conv_with_padding"))  # W becomes an initializer
    assert list(conv.feeds) == ["x"] and "W" in {i.name for i in conv.model.graph.initializer}


@needs_data
def test_result_statuses():
    ok = run_case(case("test_relu"), "float")
    assert ok.status == "pass" and ok.max_error < 1e-6
    fixed = run_case(case("test_relu"), "fixed")
    assert fixed.status == "pass" and fixed.details["lsb"] > 0
    refused = run_case(case("test_softmax_axis_0"), "float")
    assert refused.status == "unsupported" and refused.message
    with pytest.raises(ValueError):
        conformance._run(case("test_relu"), "double")
    assert run_case(case("test_relu"), "double").status == "error"


@needs_data
def test_fixed_tolerance_catches_an_error_of_a_few_lsb():
    c = case("test_relu")
    p = conformance.prepare(c)
    vals = conformance._float_values(p)
    lsb = 2.0 ** -10
    tol = conformance.fixed_tolerance(p, vals, lsb)["y"]
    assert 1.5 * lsb <= tol <= 3 * lsb  # data movement: input rounding, own rounding, one LSB margin
    gemm = conformance.prepare(case("test_gemm_default_no_bias"))
    gtol = conformance.fixed_tolerance(gemm, conformance._float_values(gemm), lsb)["y"]
    a, b = gemm.feeds["a"], gemm.constants["b"]
    bound = a.shape[1] * (np.abs(a).max() + np.abs(b).max())  # K * (max|a| + max|b|) roundings
    assert tol < gtol <= lsb * (2 + bound)


@needs_data
def test_cli_writes_markdown(tmp_path, capsys):
    out = tmp_path / "conformance.md"
    assert conformance.main(["--only", "test_relu", "--write", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    assert "| Relu | 1 | 1 | 1 |" in text and "| test_relu | Relu | pass | pass |" in text
