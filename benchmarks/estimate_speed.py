"""Time `hetero estimate` for every model in shared/models: compile (import, passes, folding for
the board) plus the analytic estimate, in one process, wall and CPU seconds per model (and the
CPU seconds of the estimate alone); models that do not compile are listed with their one-line
error. Issue 6's target: under 1 s each.

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
        c_est = float("nan")
        try:
            graph = compile_model(path, board=board)
            c_est = time.process_time()
            est = estimate(graph, board).as_dict()
            c_est = time.process_time() - c_est
            what = (f"LUT {est['resources']['lut']:,} DSP {est['resources']['dsp']} "
                    f"BRAM36 {est['resources']['bram36']:g}, interval {est['interval_cycles']:,}"
                    + ("" if est["fits"] else " (does not fit)"))
        except UserError as e:
            what = f"not estimated: {str(e).splitlines()[0][:90]}"
        rows.append((path.name, time.perf_counter() - w, time.process_time() - c, c_est, what))
    print("| model | wall s | CPU s | of which estimate | estimate |\n|---|---|---|---|---|")
    for name, wall, cpu, cpu_est, what in rows:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {cpu_est:.3f} | {what} |")
    done = [r for r in rows if not r[4].startswith("not")]
    print(f"\nmax CPU {max(r[2] for r in done):.3f} s over {len(done)} estimated models "
          f"(of {len(rows)}), {sum(r[2] < 1.0 for r in done)} under 1 s; "
          f"max wall {max(r[1] for r in done):.3f} s")


if __name__ == "__main__":
    main()
