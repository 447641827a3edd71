"""Time `hetero estimate` for every model in shared/models: compile (import, passes, folding for
the board) plus the analytic estimate, in one process, wall and CPU seconds per model; models
that do not compile are listed with their one-line error.

    python benchmarks/estimate_speed.py [--board pynq-z2] [--md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetero import boards  # noqa: E402
from hetero.errors import UserError  # noqa: E402
from hetero.estimate import estimate  # noqa: E402
from hetero.flow import compile_model  # noqa: E402

MODELS = Path("/work/shared/models")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--md", action="store_true")
    args = ap.parse_args()
    board = boards.get(args.board)
    rows = []
    for path in sorted(MODELS.glob("*.onnx")):
        w, c = time.perf_counter(), time.process_time()
        try:
            est = estimate(compile_model(path, board=board), board).as_dict()
            what = (f"LUT {est['resources']['lut']:,} DSP {est['resources']['dsp']} "
                    f"BRAM36 {est['resources']['bram36']:g}, interval {est['interval_cycles']:,}"
                    + ("" if est["fits"] else " (does not fit)"))
        except UserError as e:
            what = f"not estimated: {str(e).splitlines()[0][:90]}"
        rows.append((path.name, time.perf_counter() - w, time.process_time() - c, what))
    print("| model | wall s | CPU s | estimate |\n|---|---|---|---|")
    for name, wall, cpu, what in rows:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {what} |")
    done = [r for r in rows if not r[3].startswith("not")]
    print(f"\nmax CPU {max(r[2] for r in done):.3f} s over {len(done)} estimated models "
          f"(of {len(rows)}); max wall {max(r[1] for r in done):.3f} s")


if __name__ == "__main__":
    main()
