"""Dump `hetero estimate` (as JSON) of every shared model for some boards, and compare two
dumps: the check that a refactoring leaves every estimate as it was.

    python benchmarks/estimate_dump.py -o after.json [--boards pynq-z2 ulx3s-85f] [--src TREE]
    python benchmarks/estimate_dump.py --compare before.json after.json

--src runs another source tree's hetero (e.g. a `git worktree` of an earlier commit; trees from
before the layered packages are understood too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path("/work/shared/models")


def dump(src: Path, boards_: list[str]) -> dict:
    sys.path.insert(0, str(src))
    from hetero import boards
    from hetero.errors import UserError
    try:
        from hetero.api import compile_model
        from hetero.synthesis.estimate import estimate
    except ImportError:  # the flat layout before the layered packages
        from hetero.estimate import estimate
        from hetero.flow import compile_model
    out = {}
    for board in boards_:
        for p in sorted(MODELS.glob("*.onnx")):
            try:
                e = estimate(compile_model(p, board=board), boards.get(board))
                d = e.to_json() if hasattr(e, "to_json") else e.as_dict()
                out[f"{board}:{p.name}"] = json.loads(json.dumps(d, default=str))
            except UserError as err:
                out[f"{board}:{p.name}"] = f"error: {err}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", type=Path, help="write the dump here")
    ap.add_argument("--boards", nargs="+", default=["pynq-z2", "ulx3s-85f"])
    ap.add_argument("--src", type=Path, default=ROOT)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args()
    if a.compare:
        before, after = (json.loads(p.read_text()) for p in a.compare)
        differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        print(f"{len(before.keys() & after.keys())} runs in both, {len(differ)} differ")
        for k in differ:
            b, c = before.get(k, {}), after.get(k, {})
            keys = [f for f in ("interval_cycles", "latency_cycles", "resources", "fits")
                    if isinstance(b, dict) and isinstance(c, dict) and b.get(f) != c.get(f)]
            print(f"  {k}: " + "; ".join(f"{f} {b.get(f)} -> {c.get(f)}" for f in keys))
        return
    if not a.o:
        ap.error("-o is required without --compare")
    a.o.write_text(json.dumps(dump(a.src.resolve(), a.boards), indent=1, sort_keys=True))
    print(f"wrote {a.o}")


if __name__ == "__main__":
    main()
