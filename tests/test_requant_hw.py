"""Requantization logic (multiplier and comparator forms) against :class:`hetero.ir.quant.Requant`,
exhaustively over small input ranges, in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from hetero.ir.fixed import FixedType
from hetero.hw.requant_hw import out_shape, requant_expr, requant_unit, thresholds
from hetero.ir.quant import Requant, make_requant, requant_to_fixed

ROUNDINGS = ["FLOOR", "CEIL", "TO_ZERO", "HALF_UP", "HALF_DOWN", "HALF_EVEN", "HALF_AWAY", "HALF_ZERO"]


def run_comb(make, xs, width):
    m = Module()
    x = Signal(signed(width))
    y = make(x)
    out = Signal(y.shape())
    m.d.comb += out.eq(y)
    got = []

    async def bench(ctx):
        for v in xs:
            ctx.set(x, int(v))
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


CASES = [
    (make_requant(0.0884246 / 3, 0.37, 0, 3, r), 10) for r in ROUNDINGS
] + [
    (make_requant(0.75, -2.5, -8, 7, "HALF_EVEN", zero=1), 9),
    (make_requant(-0.3, 1.0, 0, 255, "HALF_AWAY"), 9),
    (make_requant(1 / 1024, 0, -128, 127, "HALF_EVEN"), 16),
    (requant_to_fixed(0.25, 0, FixedType(6, 3, True, "RND", "WRAP")), 10),
    (requant_to_fixed(0.3, 0, FixedType(6, 3, True, "RND_CONV", "SAT_ZERO")), 10),
    (requant_to_fixed(0.3, 0.5, FixedType(4, 2, True, "TRN", "SAT_SYM")), 10),
]


@pytest.mark.parametrize("rq,width", CASES, ids=[str(i) for i in range(len(CASES))])
def test_requant_logic_equals_reference(rq, width):
    xs = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    expected = rq(xs)
    np.testing.assert_array_equal(run_comb(lambda x: requant_expr(x, rq), xs, width), expected)
    got = run_comb(lambda x: requant_unit(x, rq, 0, int(xs[0]), int(xs[-1])), xs, width)
    np.testing.assert_array_equal(got, expected)
    assert out_shape(rq).signed == (expected.min() < 0) or expected.min() >= 0


def test_thresholds_count_levels():
    rq = make_requant(0.1, 0.0, 0, 3, "HALF_EVEN")
    ts, base, inc = thresholds(rq, 0, -100, 100)
    assert inc and base == 0 and ts == [5, 15, 25]
