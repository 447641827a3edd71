"""Time `hetero estimate` for every model in shared/models: compile (import, passes, folding for
the board) plus the analytic estimate, in one process, wall and CPU seconds per model (and the
CPU seconds of the estimate alone); models that do not compile are listed with their one-line
error. Issue 6's target: under 1 s each. With --cli, also the wall and CPU seconds of the
whole command as a user runs it (`hetero estimate MODEL --board B --json` in a new process:
interpreter start-up and imports included), the best of --repeat runs.

    python benchmarks/estimate_speed.py [--board pynq-z2] [--md] [--cli] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetero import boards  # noqa: E402
from hetero.errors import UserError  # noqa: E402
from hetero.synthesis.estimate import estimate  # noqa: E402
from hetero.flows.common import compile_model  # noqa: E402

MODELS = Path("/work/shared/models")


def command_seconds(path: Path, board: str, repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``hetero estimate PATH --board BOARD --json`` in a new
    process (CPU: the child's user + system time)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hetero", "estimate", str(path), "--board", board,
                        "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (wall, cpu))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--md", action="store_true")
    ap.add_argument("--cli", action="store_true", help="also time the whole command, start-up included")
    ap.add_argument("--repeat", type=int, default=3, help="--cli runs per model (the best counts)")
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
        row = [path.name, time.perf_counter() - w, time.process_time() - c, c_est, what]
        if args.cli:
            row += command_seconds(path, args.board, args.repeat)
        rows.append(row)
    cli_head = " command wall s | command CPU s |" if args.cli else ""
    print(f"| model | wall s | CPU s | of which estimate |{cli_head} estimate |\n"
          f"|---|---|---|---|{'---|---|' if args.cli else ''}---|")
    for name, wall, cpu, cpu_est, what, *cmd in rows:
        cli_cols = "".join(f" {v:.3f} |" for v in cmd)
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {cpu_est:.3f} |{cli_cols} {what} |")
    done = [r for r in rows if not r[4].startswith("not")]
    print(f"\nmax CPU {max(r[2] for r in done):.3f} s over {len(done)} estimated models "
          f"(of {len(rows)}), {sum(r[2] < 1.0 for r in done)} under 1 s; "
          f"max wall {max(r[1] for r in done):.3f} s")
    if args.cli:
        print(f"whole command: max wall {max(r[5] for r in done):.3f} s, max CPU "
              f"{max(r[6] for r in done):.3f} s, {sum(r[5] < 1.0 for r in done)} of {len(done)} "
              "under 1 s wall")


if __name__ == "__main__":
    main()
