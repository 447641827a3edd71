"""The notebooks' exploration cells run against the current API (the synthesis cell, which
takes a minute, is covered by test_e2e)."""

import json

import matplotlib

from conftest import REPO, model_path


def test_explore_folding_notebook_runs(monkeypatch):
    matplotlib.use("Agg")
    model_path("three_layer")
    nb = json.loads((REPO / "notebooks" / "explore_folding.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    monkeypatch.chdir(REPO / "notebooks")
    scope: dict = {}
    for cell in code:
        src = "".join(cell["source"])
        if "hetero.synth(" in src:
            continue
        exec(compile(src, "explore_folding.ipynb", "exec"), scope)
    rows = scope["rows"]
    assert rows[0][1] == 1 and rows[-1][1] == 128  # interval follows the reuse factor
    assert all(a[3] > b[3] for a, b in zip(rows, rows[1:]))  # fewer multipliers as it folds
