"""Board database: every board of shared/reference/BOARDS.md, names, aliases, errors."""

from __future__ import annotations

import pytest

from hetero import boards
from hetero.errors import UserError

# name: (part, family, lut, ff, dsp, bram36, uram, clock_mhz) as in BOARDS.md
EXPECTED = {
    "pynq-z2": ("xc7z020clg400-1", "xc7", 53200, 106400, 220, 140, 0, 100),
    "pynq-z1": ("xc7z020clg400-1", "xc7", 53200, 106400, 220, 140, 0, 100),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", "xcup", 70560, 141120, 360, 216, 0, 100),
    "zcu104": ("xczu7ev-ffvc1156-2-e", "xcup", 230400, 460800, 1728, 312, 96, 100),
    "zcu102": ("xczu9eg-ffvb1156-2-e", "xcup", 274080, 548160, 2520, 912, 0, 100),
    "kv260": ("xck26-sfvc784-2LV-c", "xcup", 117120, 234240, 1248, 144, 64, 100),
    "alveo-u50": ("xcu50-fsvh2104-2L-e", "xcup", 872000, 1743000, 5952, 1344, 640, 300),
    "alveo-u250": ("xcu250-figd2104-2L-e", "xcup", 1728000, 3456000, 12288, 2688, 1280, 300),
    "alveo-u280": ("xcu280-fsvh2892-2L-e", "xcup", 1303680, 2607360, 9024, 2016, 960, 300),
    "arty-a7-35": ("xc7a35ticsg324-1L", "xc7", 20800, 41600, 90, 50, 0, 100),
    "arty-a7-100": ("xc7a100tcsg324-1", "xc7", 63400, 126800, 240, 135, 0, 100),
    "ulx3s-85f": ("LFE5U-85F-6BG381C", "ecp5", 83640, 83640, 156, 208 / 2, 0, 25),
    "orangecrab-25f": ("LFE5U-25F-8MG285C", "ecp5", 24288, 24288, 28, 56 / 2, 0, 48),
    "icebreaker": ("iCE40UP5K-SG48", "ice40", 5280, 5280, 8, 30 * 4 / 36, 4, 12),
}


def test_every_reference_board_present_with_its_figures() -> None:
    got = {b.name: b for b in boards.all_boards()}
    assert set(got) == set(EXPECTED)
    for name, (part, family, lut, ff, dsp, bram36, uram, clock) in EXPECTED.items():
        b = got[name]
        assert (b.part, b.family, b.lut, b.ff, b.dsp, b.uram) == (part, family, lut, ff, dsp, uram), name
        assert b.bram36 == pytest.approx(bram36), name
        assert b.clock_mhz == clock, name
        assert b.power_w_rough > 0, name
        assert b.family in boards.FAMILIES


def test_aliases_and_case_insensitive() -> None:
    assert boards.get("pynq") is boards.get("pynq-z2")
    assert boards.get("PYNQ").name == "pynq-z2"
    assert boards.get(" Ultra96-V2 ").name == "ultra96-v2"
    assert boards.get("pynq-z2").aliases == ("pynq",)


def test_unknown_board_lists_known_boards() -> None:
    with pytest.raises(UserError) as info:
        boards.get("foo")
    msg = str(info.value)
    assert msg.startswith("unknown board 'foo'; known boards: pynq-z2 (pynq), pynq-z1")
    assert "\n" not in msg
    for name in EXPECTED:
        assert name in msg
    assert info.value.exit_code == 2


def test_all_boards_returns_fresh_list_of_frozen_boards() -> None:
    first = boards.all_boards()
    first.clear()
    assert len(boards.all_boards()) == len(EXPECTED)
    with pytest.raises(AttributeError):
        boards.get("kv260").lut = 1  # type: ignore[misc]


def test_bram36_conversion() -> None:
    assert boards.bram36_equivalent(2, 18) == 1
    assert boards.bram36_equivalent(9, 4) == 1


def test_one_utilization_rule_for_estimates_and_synthesis() -> None:
    """Resources.utilization is the one rule: percent of every resource the board counts, URAM
    included; a resource the board lacks is 0 when unused and inf when used."""
    from hetero.hw.cost import Resources
    from hetero.synthesis.yosys import SynthResult

    kv260, pynq = boards.get("kv260"), boards.get("pynq-z2")
    r = Resources(lut=kv260.lut / 2, ff=0, dsp=0, bram36=0, uram=kv260.uram)
    assert r.utilization(kv260) == {"lut": 50.0, "ff": 0.0, "dsp": 0.0, "bram36": 0.0,
                                    "uram": 100.0}
    assert r.fits(kv260) and not r.over(kv260)
    assert Resources(uram=1).utilization(pynq)["uram"] == float("inf")
    assert Resources(uram=1).over(pynq) == [{"resource": "uram", "needed": 1, "available": 0,
                                             "over_by_percent": None}]
    s = SynthResult(lut=100, ff=10, dsp=2, bram36=1.5, uram=0, tool="Yosys", family="xc7")
    assert s.utilization(pynq) == Resources(100, 10, 2, 1.5).utilization(pynq)
