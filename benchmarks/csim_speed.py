"""hetero csim's build and run times on the jet-tagging MLP at -O0, -O1 and -O2 (cold builds,
private cache), to choose hetero.sim.csim.OPT.

    python benchmarks/csim_speed.py [--n 10000]
    python benchmarks/csim_speed.py --all [--n 20]   # every model docs/hardware.md lists as
                                                     # bit-exact in RTL: csim against the reference
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--all", action="store_true")
    args = ap.parse_args()
    if args.all:
        return all_models(args.n or 20)
    args.n = args.n or 10000
    from hetero.flows.common import compile_model, random_inputs
    from hetero.sim.csim import csim_graph
    from hetero.backends.hls.project import render_project

    g = compile_model(REPO.parent / "shared" / "models" / "hls4ml_examplemodels_three_layer_keras.onnx")
    x = random_inputs(g, args.n, seed=0)
    project = render_project(g)
    print("| g++ flags | build (s) | run (s) | inferences/s | bit-exact |")
    print("|---|---|---|---|---|")
    for opt in ("-O0", "-O1", "-O2"):
        cache = tempfile.mkdtemp(prefix="csim-speed-")
        os.environ["HETERO_CACHE_DIR"] = cache
        r = csim_graph(g, x, project, opt=opt)
        shutil.rmtree(cache, ignore_errors=True)
        print(f"| {opt} | {r.build_seconds:.1f} | {r.run_seconds:.3f} | {len(x) / r.run_seconds:,.0f} | "
              f"{'yes' if r.bit_exact else 'NO'} |", flush=True)
    return 0


def all_models(n: int) -> int:
    """csim of every model docs/hardware.md marks bit-exact in RTL; a table row per model."""
    from hetero.flows.common import compile_model, random_inputs
    from hetero.sim.csim import csim_graph

    models = REPO.parent / "shared" / "models"
    rows = [line.split("|")[1].strip() for line in (REPO / "docs" / "hardware.md").read_text().splitlines()
            if line.startswith("| ") and "bit-exact" in line]
    print(f"| model (RTL bit-exact in docs/hardware.md) | csim ({n} random inputs) | build (s) | run (s) |")
    print("|---|---|---|---|")
    bad = 0
    for name in rows:
        try:
            g = compile_model(models / name)
            r = csim_graph(g, random_inputs(g, n, seed=1))
            res = "bit-exact" if r.bit_exact else f"{r.mismatches} mismatching"
            bad += not r.bit_exact
            print(f"| {name} | {res} | {r.build_seconds:.1f}{' (cached)' if r.build_cached else ''} | {r.run_seconds:.3f} |", flush=True)
        except Exception as e:  # noqa: BLE001 - reported per model
            bad += 1
            print(f"| {name} | error: {str(e).splitlines()[0][:100]} | | |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
