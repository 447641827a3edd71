"""hetero.ir.fixed against real ap_fixed: bit-exact, over every raw value for small widths.

The ``gxx`` tests compile tests/cpp/apfixed_oracle.cpp once per session with g++ against the
ap_types headers of the installed hls4ml package, with a generated list of cases:

* fixed -> fixed: source types ap_fixed / ap_ufixed of width 1..6 with int_bits in
  {-2, 0, 1, ceil(w/2), w, w+2} (all 69 of them), destination types of width 1..5, signed and
  unsigned, int_bits -1..w+1, in every rounding x overflow mode (28); for each case every raw
  value of the source is converted (``D y = x;``) and compared with
  :func:`hetero.ir.fixed.requantize`; a few more cases shift by 60+ bits.
* double -> fixed: a few thousand doubles (random, exact grid values, exact ties of both signs,
  values one ulp either side of ties, huge values that wrap, values beyond range, infinities,
  subnormals) converted to fixed<5,2>, fixed<1,0>, ufixed<4,-1> and fixed<48,20>, each in every
  mode (``D y = (double)v;``), compared with :func:`hetero.ir.fixed.quantize`.

Each ap_fixed conversion instantiated costs ~40 ms of g++ time at -O0, so the fixed -> fixed
cases are not the full product (~100 000 pairs) but a selection that reaches every code path of
ap_fixed's assignment: every mode meets every destination width and both signednesses; every
overflow mode meets every relation between source and destination (source signed or not; fewer,
as many or more integer bits; fraction bits shifted left, kept, dropped by 1, by 2.., by exactly
the source width or by more); every rounding mode every (source sign, shift); every source type
is used (test_case_selection_covers_the_product checks all of this).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hetero.ir.fixed import MAX_WIDTH, OVERFLOW_MODES, ROUNDING_MODES, FixedType, bits_for_range, quantize, requantize, to_float, type_for_range

HARNESS = Path(__file__).parent / "cpp" / "apfixed_oracle.cpp"
MODES = list(itertools.product(ROUNDING_MODES, OVERFLOW_MODES))
MODE_IDS = [f"{q}-{o}" for q, o in MODES]


# ---------------------------------------------------------------------------------------------
# Cases for the oracle (deterministic)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairCase:
    id: int
    src: FixedType
    dst: FixedType


@dataclass(frozen=True)
class DoubleCase:
    id: int
    dst: FixedType


SRC_WIDTHS = range(1, 7)
DST_WIDTHS = range(1, 6)
DST_KINDS = [(w, s) for w in DST_WIDTHS for s in (True, False)]


def _src_types() -> list[FixedType]:
    return [
        FixedType(w, i, s)
        for w in SRC_WIDTHS
        for s in (True, False)
        for i in sorted({-2, 0, 1, (w + 1) // 2, w, w + 2})
    ]


def _dst_int_bits(w: int) -> list[int]:
    return sorted({-1, 0, 1, (w + 1) // 2, w, w + 1})


def _bucket(src: FixedType, dst: FixedType) -> tuple:
    """What steers ap_fixed's assignment code: source signedness, integer bits (sign bit not
    counted) fewer / as many / more than the destination's, and how the fraction bits shift
    (ap_fixed branches on F2 - F < 0, == 0, == 1, < W2, == W2, > W2)."""
    di = (src.int_bits - src.signed) - (dst.int_bits - dst.signed)
    df = src.frac_bits - dst.frac_bits
    if df <= 1:
        shift = "<0" if df < 0 else str(df)
    else:
        shift = "<W2" if df < src.width else "W2" if df == src.width else ">W2"
    return (src.signed, (di > 0) - (di < 0), shift)


def _rounding_key(bucket: tuple) -> tuple:
    """The part of a bucket rounding depends on: source signedness and the shift."""
    return (bucket[0], bucket[2])


def _pair_cases() -> list[PairCase]:
    """Per (rounding, overflow): one destination type of each width 1..5 (both signednesses in
    every mode), each with one source, chosen together, greedily: a source relation (bucket) this
    overflow mode has not met, or whose rounding part this rounding mode has not met; then the
    least-used destination int_bits, the rarest bucket, the least-used source. A final pass adds a
    pair (on a destination type already chosen, so no new type) for any relation still missed."""
    rng = np.random.default_rng(20240611)
    sources = _src_types()
    rarity = Counter(
        _bucket(s, FixedType(w, i, sg)) for s in sources for w, sg in DST_KINDS for i in _dst_int_bits(w)
    )
    met_q: dict[str, Counter] = {q: Counter() for q in ROUNDING_MODES}
    met_o: dict[str, Counter] = {o: Counter() for o in OVERFLOW_MODES}
    src_used: Counter = Counter()
    int_used: Counter = Counter()
    chosen: list[tuple[FixedType, dict]] = []
    cases: list[PairCase] = []

    def add(src: FixedType, dst: FixedType, b: tuple) -> None:
        met_q[dst.rounding][_rounding_key(b)] += 1
        met_o[dst.overflow][b] += 1
        src_used[src] += 1
        cases.append(PairCase(len(cases), src, dst))

    def least_used(pool: list[FixedType]) -> FixedType:
        fewest = min(src_used[s] for s in pool)
        pool = [s for s in pool if src_used[s] == fewest]
        return pool[rng.integers(len(pool))]

    for q, o in MODES:
        signs_here: set[bool] = set()
        for w in DST_WIDTHS:
            last = w == DST_WIDTHS[-1] and len(signs_here) == 1
            options = []
            for signed in (True, False):
                if last and signed in signs_here:
                    continue
                for i in _dst_int_bits(w):
                    dst = FixedType(w, i, signed, q, o)
                    by_bucket: dict[tuple, list[FixedType]] = {}
                    for src in sources:
                        by_bucket.setdefault(_bucket(src, dst), []).append(src)
                    for b in by_bucket:
                        gain = 2 * (met_q[q][_rounding_key(b)] == 0) + (met_o[o][b] == 0)
                        rank = (-gain, int_used[(w, signed, i)], rarity[b], rng.random())
                        options.append((*rank, dst, by_bucket, b))
            *_, dst, by_bucket, b = min(options, key=lambda v: v[:4])
            int_used[(w, dst.signed, dst.int_bits)] += 1
            signs_here.add(dst.signed)
            chosen.append((dst, by_bucket))
            add(least_used(by_bucket[b]), dst, b)
    # Repair pass.
    for q in ROUNDING_MODES:
        for key in sorted({_rounding_key(b) for b in rarity} - set(+met_q[q])):
            hosts = [(d, b) for d, bb in chosen if d.rounding == q for b in bb if _rounding_key(b) == key]
            if hosts:
                dst, b = hosts[rng.integers(len(hosts))]
                add(least_used(dict(chosen)[dst][b]), dst, b)
    for o in OVERFLOW_MODES:
        for b in sorted(set(rarity) - set(+met_o[o])):
            hosts = [d for d, bb in chosen if d.overflow == o and b in bb]
            if hosts:
                dst = hosts[rng.integers(len(hosts))]
                add(least_used(dict(chosen)[dst][b]), dst, b)
    for src in sources:  # every source type at least once
        if not src_used[src]:
            dst, by_bucket = chosen[rng.integers(len(chosen))]
            add(src, dst, _bucket(src, dst))
    # Shifts far beyond the int64 word (raw values must not overflow on the way): once per
    # rounding mode, the overflow mode cycling.
    extremes = [
        (FixedType(6, -60), FixedType(4, 2)),
        (FixedType(6, -61, False), FixedType(5, 0)),
        (FixedType(5, 40), FixedType(4, -30)),
        (FixedType(6, 6), FixedType(3, -60, False)),
    ]
    for n, q in enumerate(ROUNDING_MODES):
        src, dst = extremes[n % len(extremes)]
        cases.append(PairCase(len(cases), src, dst.with_modes(q, OVERFLOW_MODES[n % len(OVERFLOW_MODES)])))
    return cases


# double -> fixed: several types, each in every mode
DOUBLE_TYPES = [FixedType(5, 2), FixedType(1, 0), FixedType(4, -1, False), FixedType(48, 20)]


def _double_cases(first: int) -> list[DoubleCase]:
    types = [t.with_modes(q, o) for t in DOUBLE_TYPES for q, o in MODES]
    return [DoubleCase(first + n, t) for n, t in enumerate(types)]


def _double_values(frac_bits: set[int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    vals: list[np.ndarray] = [
        np.array([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -1e-300, 1e-20, -1e-20,
                  np.inf, -np.inf, 1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308,
                  2.0**52 + 1, -(2.0**52 + 1), 2.0**53, 2.0**62, -(2.0**62), 2.0**100 + 2.0**60,
                  -(2.0**100 + 2.0**49) - 2.0**48])
    ]
    k = np.arange(-32, 32, dtype=np.float64)
    for f in sorted(frac_bits):
        lsb = 2.0**-f
        ties = (k + 0.5) * lsb  # exact ties of both signs
        vals += [ties, k * lsb, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)]
        big = rng.integers(-(2**40), 2**40, 40).astype(np.float64)
        vals.append((big + 0.5) * lsb)  # ties far outside every range: wrap, saturate
        vals.append(big * lsb + rng.choice([-1.0, 1.0], 40) * 2.0 ** rng.integers(2, 30, 40))
    vals.append(rng.uniform(-8, 8, 400))
    vals.append(rng.uniform(-300, 300, 200))
    vals.append(rng.uniform(-1e6, 1e6, 100))
    vals.append(rng.choice([-1.0, 1.0], 300) * 2.0 ** rng.uniform(-40, 80, 300))
    vals.append(rng.integers(-(2**20), 2**20, 200) * 2.0**-12)  # exact on a fine grid
    out = np.concatenate(vals)
    assert not np.isnan(out).any()
    return out


PAIR_CASES = _pair_cases()
DOUBLE_CASES = _double_cases(len(PAIR_CASES))
DOUBLE_VALUES = _double_values({t.frac_bits for t in DOUBLE_TYPES} | {0, 1, 2, 3, 4, 6})


def test_case_selection_covers_the_product():
    """Every mode meets every destination width and both signednesses; every overflow mode meets
    every source relation, every rounding mode every (source sign, shift); every source type is
    used; int_bits include negative values and values above the width, on both sides; the double
    types are tried in every mode."""
    small = [c for c in PAIR_CASES if abs(c.src.int_bits) < 10 and abs(c.dst.int_bits) < 10]
    reachable = {
        _bucket(s, FixedType(w, i, sg)) for s in _src_types() for w, sg in DST_KINDS for i in _dst_int_bits(w)
    }
    for q, o in MODES:
        mine = [c for c in small if (c.dst.rounding, c.dst.overflow) == (q, o)]
        assert {c.dst.width for c in mine} == set(DST_WIDTHS)
        assert {c.dst.signed for c in mine} == {True, False}
    for q in ROUNDING_MODES:
        assert {_rounding_key(_bucket(c.src, c.dst)) for c in small if c.dst.rounding == q} == {
            _rounding_key(b) for b in reachable
        }, q
    for o in OVERFLOW_MODES:
        assert {_bucket(c.src, c.dst) for c in small if c.dst.overflow == o} == reachable, o
    for w, sg in DST_KINDS:
        ints = {c.dst.int_bits for c in small if (c.dst.width, c.dst.signed) == (w, sg)}
        assert ints == set(_dst_int_bits(w)), (w, sg)
    assert {c.src for c in small} == set(_src_types())
    assert any(c.src.int_bits < 0 for c in small) and any(c.src.int_bits > c.src.width for c in small)
    assert any(c.dst.int_bits < 0 for c in small) and any(c.dst.int_bits > c.dst.width for c in small)
    assert {c.dst.rounding for c in PAIR_CASES if c not in small} == set(ROUNDING_MODES)
    for t in DOUBLE_TYPES:
        modes = {(c.dst.rounding, c.dst.overflow)
                 for c in DOUBLE_CASES if c.dst.with_modes("TRN", "WRAP") == t}
        assert modes == set(MODES), t


# ---------------------------------------------------------------------------------------------
# Building and running the oracle
# ---------------------------------------------------------------------------------------------


def _ap_types_dir() -> Path:
    from hetero.sim.csim import ap_types_dir

    return ap_types_dir()  # hls4ml's bundled headers; UserError naming the fix when missing


_CASE_LINE = "namespace c{id} {{ typedef {src} S; typedef {dst} D; ORACLE_PAIR({id}, {ss}, {ds}) }}\n"
_DOUBLE_LINE = "namespace d{id} {{ typedef {dst} D; ORACLE_DOUBLE({id}, {ds}) }}\n"


def _case_source(cases: list) -> str:
    out = []
    for c in cases:
        if isinstance(c, PairCase):
            out.append(_CASE_LINE.format(id=c.id, src=c.src.cpp(), dst=c.dst.cpp(),
                                         ss=str(c.src.signed).lower(), ds=str(c.dst.signed).lower()))
        else:
            out.append(_DOUBLE_LINE.format(id=c.id, dst=c.dst.cpp(), ds=str(c.dst.signed).lower()))
    return "".join(out)


def _parse(text: str, kind: str) -> dict[int, np.ndarray]:
    res = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        assert parts[0] == kind, line[:80]
        res[int(parts[1])] = np.array([int(p) for p in parts[2:]], dtype=np.int64)
    return res


@dataclass
class Oracle:
    pairs: dict[int, np.ndarray]
    doubles: dict[int, np.ndarray]


@pytest.fixture(scope="session")
def oracle(tmp_path_factory) -> Oracle:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot compile the ap_fixed oracle")
    include = _ap_types_dir()
    work = tmp_path_factory.mktemp("apfixed_oracle")

    # One compile of all cases, split over the cores: one translation unit per core. The double
    # conversions share much of their instantiations, so they stay together, in the first part;
    # the pairs fill the parts to about equal cost (measured with g++ 12 at -O0: ~40 ms per pair,
    # ~20 ms per double case plus ~1.7 s for the double machinery).
    parts = max(1, min(os.cpu_count() or 1, 8))
    total = len(PAIR_CASES) + 0.5 * len(DOUBLE_CASES) + 40
    first = max(0, round(total / parts - 0.5 * len(DOUBLE_CASES) - 40)) if parts > 1 else len(PAIR_CASES)
    rest = PAIR_CASES[first:]
    chunks = [list(DOUBLE_CASES) + list(PAIR_CASES[:first])]
    chunks += [list(rest[k :: parts - 1]) for k in range(parts - 1) if rest[k :: parts - 1]]
    flags = ["-std=c++17", "-O0", "-DNDEBUG", "-w", "-fno-exceptions", "-fno-rtti",
             "-fno-asynchronous-unwind-tables", "-isystem", str(include)]

    def compile_part(k: int) -> Path:
        inc = work / f"cases_{k}.inc"
        inc.write_text(_case_source(chunks[k]))
        obj = work / f"part_{k}.o"
        cmd = [gxx, *flags, f'-DORACLE_CASES="{inc}"', "-c", str(HARNESS), "-o", str(obj)]
        if k == 0:
            cmd.insert(1, "-DORACLE_MAIN")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"compiling the ap_fixed oracle failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")
        return obj

    with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
        objs = list(pool.map(compile_part, range(len(chunks))))
    exe = work / "apfixed_oracle"
    r = subprocess.run([gxx, *map(str, objs), "-o", str(exe)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"linking the ap_fixed oracle failed:\n{r.stderr[-4000:]}")

    pairs = subprocess.run([str(exe), "pairs"], capture_output=True, text=True, check=True).stdout
    values = "".join(f"{float(v).hex()}\n" for v in DOUBLE_VALUES)
    doubles = subprocess.run(
        [str(exe), "doubles"], input=values, capture_output=True, text=True, check=True
    ).stdout
    out = Oracle(_parse(pairs, "P"), _parse(doubles, "D"))
    assert sorted(out.pairs) == [c.id for c in PAIR_CASES]
    assert sorted(out.doubles) == [c.id for c in DOUBLE_CASES]
    return out


def _report(mismatches: list[str], total: int) -> None:
    if mismatches:
        shown = "\n".join(mismatches[:25])
        pytest.fail(f"{len(mismatches)} of {total} values differ from ap_fixed:\n{shown}")


# ---------------------------------------------------------------------------------------------
# Bit-exact against ap_fixed
# ---------------------------------------------------------------------------------------------


@pytest.mark.gxx
@pytest.mark.parametrize("rounding,overflow", MODES, ids=MODE_IDS)
def test_requantize_matches_ap_fixed(oracle, rounding, overflow):
    cases = [c for c in PAIR_CASES if (c.dst.rounding, c.dst.overflow) == (rounding, overflow)]
    assert len(cases) >= len(DST_WIDTHS)
    mismatches, total = [], 0
    for c in cases:
        x = np.arange(c.src.min_raw, c.src.max_raw + 1, dtype=np.int64)
        want = oracle.pairs[c.id]
        assert want.shape == x.shape, c
        assert ((want >= c.dst.min_raw) & (want <= c.dst.max_raw)).all(), c  # oracle sanity
        got = requantize(x, c.src.frac_bits, c.dst)
        total += x.size
        for k in np.flatnonzero(got != want):
            mismatches.append(
                f"{c.src.cpp()} raw {x[k]} -> {c.dst.cpp()}: ap_fixed {want[k]}, requantize {got[k]}"
            )
    _report(mismatches, total)


@pytest.mark.gxx
@pytest.mark.parametrize("rounding,overflow", MODES, ids=MODE_IDS)
def test_quantize_matches_ap_fixed(oracle, rounding, overflow):
    cases = [c for c in DOUBLE_CASES if (c.dst.rounding, c.dst.overflow) == (rounding, overflow)]
    assert len(cases) == len(DOUBLE_TYPES)
    mismatches, total = [], 0
    for c in cases:
        want = oracle.doubles[c.id]
        assert want.shape == DOUBLE_VALUES.shape
        assert ((want >= c.dst.min_raw) & (want <= c.dst.max_raw)).all(), c  # oracle sanity
        got = quantize(DOUBLE_VALUES, c.dst)
        total += want.size
        for k in np.flatnonzero(got != want):
            mismatches.append(f"{DOUBLE_VALUES[k]!r} -> {c.dst.cpp()}: ap_fixed {want[k]}, quantize {got[k]}")
    _report(mismatches, total)


@pytest.mark.gxx
def test_oracle_exact_values_convert_exactly(oracle):
    """Sanity of the oracle itself: in-range values on the type's grid convert unchanged in
    every mode (so raw values are read back with the right scale and sign)."""
    for c in DOUBLE_CASES:
        t = c.dst
        with np.errstate(over="ignore"):
            raw = np.ldexp(DOUBLE_VALUES, t.frac_bits)
        exact = (raw == np.floor(raw)) & (raw >= t.min_raw) & (raw <= t.max_raw)
        if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
            exact &= raw != t.min_raw
        got = oracle.doubles[c.id][exact]
        assert (got == raw[exact].astype(np.int64)).all(), t
        assert (to_float(got, t) == DOUBLE_VALUES[exact]).all(), t


# ---------------------------------------------------------------------------------------------
# Pure Python
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("fixed<16,6>", FixedType(16, 6)),
        ("ufixed<8,0,RND,SAT>", FixedType(8, 0, False, "RND", "SAT")),
        ("ap_fixed<16,6,AP_RND_CONV,AP_SAT>", FixedType(16, 6, True, "RND_CONV", "SAT")),
        ("ap_ufixed<4, -2, AP_TRN_ZERO, AP_SAT_SYM>", FixedType(4, -2, False, "TRN_ZERO", "SAT_SYM")),
        ("ap_fixed<8,3,AP_RND>", FixedType(8, 3, True, "RND", "WRAP")),
        ("ap_fixed<8,3,AP_RND,AP_WRAP,0>", FixedType(8, 3, True, "RND", "WRAP")),
        ("int<8>", FixedType(8, 8)),
        ("uint<3>", FixedType(3, 3, False)),
        ("ap_uint<4>", FixedType(4, 4, False)),
        (" fixed < 10 , 12 > ", FixedType(10, 12)),
    ],
)
def test_parse(text, expected):
    t = FixedType.parse(text)
    assert t == expected
    assert FixedType.parse(str(t)) == t
    assert FixedType.parse(t.cpp()) == t


def test_str_and_cpp():
    assert str(FixedType(16, 6)) == "fixed<16,6>"
    assert str(FixedType(8, 0, False, "RND", "SAT")) == "ufixed<8,0,RND,SAT>"
    assert str(FixedType(8, 3, True, "RND")) == "fixed<8,3,RND,WRAP>"
    assert str(FixedType(8, 8)) == "fixed<8,8>"
    assert FixedType(16, 6, True, "RND_CONV", "SAT").cpp() == "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
    assert FixedType(4, -2, False).cpp() == "ap_ufixed<4,-2,AP_TRN,AP_WRAP>"


def test_parse_round_trips_every_mode():
    for q, o in MODES:
        for t in (FixedType(7, 3, True, q, o), FixedType(5, -1, False, q, o)):
            assert FixedType.parse(str(t)) == t
            assert FixedType.parse(t.cpp()) == t


@pytest.mark.parametrize(
    "text",
    [
        "", "fixed", "fixed<>", "fixed<16>", "fixed<a,b>", "float<8,2>", "fixed<16,6", "fixed<16,6>x",
        "fixed<16,6,FOO>", "fixed<16,6,RND,BAR>", "fixed<16,6,SAT,RND>", "fixed<0,0>", "fixed<100,4>",
        "int<8,3>", "int<>", "ap_fixed<8,3,AP_TRN,AP_WRAP,2>", "ap_fixed<8,3,AP_TRN,AP_WRAP,0,1>",
        "fixed<16.5,6>", None,
    ],
)
def test_parse_rejects_garbage(text):
    with pytest.raises(ValueError):
        FixedType.parse(text)


def test_constructor_rejects_bad_types():
    for args in [(0, 0), (MAX_WIDTH + 1, 0), (8, 3, True, "ROUND"), (8, 3, True, "TRN", "CLAMP")]:
        with pytest.raises(ValueError):
            FixedType(*args)


def test_type_for_range():
    assert type_for_range(0, 255, 0) == FixedType(8, 8, False)
    assert type_for_range(-128, 127, 0) == FixedType(8, 8, True)
    assert type_for_range(-129, 127, 0) == FixedType(9, 9, True)
    assert type_for_range(-1, 0, 4) == FixedType(1, -3, True)
    assert type_for_range(0, 0, 3) == FixedType(1, -2, False)
    assert type_for_range(0, 1, 0) == FixedType(1, 1, False)
    assert type_for_range(-5, 100, 10) == FixedType(8, -2, True)
    rng = np.random.default_rng(3)
    for _ in range(500):
        lo, hi = sorted(int(v) for v in rng.integers(-(2**40), 2**40, 2) >> rng.integers(0, 40))
        f = int(rng.integers(-8, 20))
        t = type_for_range(lo, hi, f)
        assert t.frac_bits == f and t.signed == (lo < 0)
        assert t.min_raw <= lo and hi <= t.max_raw
        narrower = FixedType(t.width - 1, t.int_bits - 1, t.signed) if t.width > 1 else None
        if narrower is not None:
            assert lo < narrower.min_raw or hi > narrower.max_raw
    assert bits_for_range(0, 3, signed=True) == (3, True)


def test_ap_fixed_corner_cases():
    """Behaviours the g++ oracle established, kept here for machines without g++."""
    sym = FixedType(4, 4, True, "TRN", "SAT_SYM")
    assert requantize(np.array([-9, -8, -7, 8]), 0, sym).tolist() == [-7, -7, -7, 7]
    one = FixedType(1, 1, True, "TRN", "SAT_SYM")  # 1-bit signed: SAT_SYM keeps -1, as SAT
    assert requantize(np.array([-5, -1, 0, 3]), 0, one).tolist() == [-1, -1, 0, 0]
    assert quantize(np.array([-3.0, 0.75]), one).tolist() == [-1, 0]
    assert requantize(np.array([5]), 0, FixedType(3, 3, False, "TRN", "SAT_SYM")).tolist() == [5]
    # one ulp above a negative tie is not a tie (float64 scaled - floor rounds it to 0.5)
    t = FixedType(5, 2)
    near = np.nextafter(-0.0625, np.inf)
    expected = [("RND", 0, 0), ("RND_INF", -1, 0), ("RND_MIN_INF", -1, 0), ("RND_ZERO", 0, 0)]
    for q, want_tie, want_near in expected:
        assert quantize(np.array([-0.0625, near]), t.with_modes(q)).tolist() == [want_tie, want_near], q
    # infinities: a huge power of two for ap_fixed
    assert quantize(np.array([np.inf, -np.inf, 1e300]), FixedType(8, 3)).tolist() == [0, 0, 0]
    assert quantize(np.array([np.inf, -np.inf]), FixedType(8, 3, True, "TRN", "SAT")).tolist() == [127, -128]
    assert quantize(np.array([-np.inf]), FixedType(8, 3, False, "RND", "SAT_ZERO")).tolist() == [0]


def test_quantize_rejects_nan():
    with pytest.raises(ValueError):
        quantize(np.array([1.0, np.nan]), FixedType(8, 3))


def _exact_requantize(r: int, src_frac: int, dst: FixedType) -> int:
    """Arbitrary-precision model (Python ints) of requantize, for shifts beyond 64 bits."""
    d = src_frac - dst.frac_bits
    if d > 0:
        fl, rem, half = r >> d, r & ((1 << d) - 1), 1 << (d - 1)
        up = {
            "TRN": False,
            "TRN_ZERO": rem != 0 and r < 0,
            "RND": rem >= half,
            "RND_ZERO": rem > half or (rem == half and r < 0),
            "RND_MIN_INF": rem > half,
            "RND_INF": rem > half or (rem == half and r >= 0),
            "RND_CONV": rem > half or (rem == half and fl & 1 == 1),
        }[dst.rounding]
        v = fl + up
    else:
        v = r << -d
    lo, hi = dst.min_raw, dst.max_raw
    if dst.overflow == "SAT_SYM" and dst.signed and dst.width > 1:
        lo = -hi  # ap_fixed: a 1-bit signed SAT_SYM type keeps -1 (acts as SAT)
    if dst.overflow == "WRAP":
        v &= (1 << dst.width) - 1
        return v - (1 << dst.width) if dst.signed and v > hi else v
    if lo <= v <= hi:
        return v
    if dst.overflow == "SAT_ZERO":
        return 0
    return lo if v < lo else hi


def test_requantize_huge_shifts_stay_exact():
    """Shifts of 63 bits and more (very negative or very large int_bits) must not overflow int64."""
    rng = np.random.default_rng(11)
    srcs = [
        FixedType(62, 0), FixedType(62, 62, False), FixedType(40, -50), FixedType(20, 60), FixedType(8, -70)
    ]
    dsts = [FixedType(62, 0), FixedType(10, 80), FixedType(10, -70, False), FixedType(4, 2), FixedType(1, 1)]
    for src, dst0, (q, o) in itertools.product(srcs, dsts, MODES):
        dst = dst0.with_modes(q, o)
        raw = np.concatenate([
            rng.integers(src.min_raw, src.max_raw, 30, endpoint=True),
            [src.min_raw, src.max_raw, 0, 1, -1 if src.signed else 2],
        ]).astype(np.int64)
        got = requantize(raw, src.frac_bits, dst)
        want = [_exact_requantize(int(r), src.frac_bits, dst) for r in raw]
        assert got.tolist() == want, (src, dst)


def test_to_float():
    assert to_float(np.array([3, -8]), FixedType(8, 3)).tolist() == [3 / 32, -0.25]
    assert to_float(np.array([3]), -2).tolist() == [12.0]
