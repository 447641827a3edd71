"""CPU and wall seconds of `hetero --version` and `hetero --help` as a user runs them (a new
interpreter each time: start-up and imports included), best of --repeat runs. With
--baseline SRC, the same commands from another source tree (e.g. a `git worktree` of an
earlier commit) run side by side, interleaved, so the ratio holds on a noisy machine.

    python benchmarks/startup.py [--repeat 7] [--baseline /path/to/other/checkout] [--md]
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
COMMANDS = (("--version",), ("--help",))


def run_once(src: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``python -m hetero ARGS`` with ``src`` first on
    the module path."""
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hetero", *args], env=env, check=True, cwd=src,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # cwd: ``-m`` looks there first
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--baseline", type=Path, help="another source tree to time side by side")
    ap.add_argument("--md", action="store_true", help="print a Markdown table")
    a = ap.parse_args()
    trees = {"this": ROOT} | ({"baseline": a.baseline.resolve()} if a.baseline else {})
    best = {(t, c): (float("inf"), float("inf")) for t in trees for c in COMMANDS}
    for _ in range(a.repeat):
        for cmd in COMMANDS:
            for tree, src in trees.items():  # interleaved: both see the same load
                w, c = run_once(src, cmd)
                old = best[tree, cmd]
                best[tree, cmd] = (min(old[0], w), min(old[1], c))
    if a.md:
        print("| command | tree | CPU s (best) | wall s (best) |")
        print("|---|---|---:|---:|")
    for cmd in COMMANDS:
        for tree in trees:
            w, c = best[tree, cmd]
            line = (f"| hetero {' '.join(cmd)} | {tree} | {c:.3f} | {w:.3f} |" if a.md else
                    f"hetero {' '.join(cmd):10s} {tree:8s} CPU {c:.3f} s  wall {w:.3f} s")
            print(line)
        if a.baseline:
            ratio = best["this", cmd][1] / best["baseline", cmd][1]
            print(f"{'' if not a.md else '|  | ratio this/baseline (CPU) | '}{ratio:.2f}{'' if not a.md else ' | |'}")


if __name__ == "__main__":
    main()
