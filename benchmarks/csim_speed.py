"""hetero csim's build and run times on the jet-tagging MLP at -O0, -O1 and -O2 (cold builds,
private cache), to choose hetero.hls.csim.OPT.

    python benchmarks/csim_speed.py [--n 10000]
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
    ap.add_argument("--n", type=int, default=10000)
    args = ap.parse_args()
    from hetero.flow import compile_model, random_inputs
    from hetero.hls.csim import csim_graph
    from hetero.hls.project import render_project

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


if __name__ == "__main__":
    sys.exit(main())
