"""The notebooks' exploration cells run against the public API, from any working directory
(the synthesis cell, which takes a minute, is covered by test_e2e)."""

import json
import re

import matplotlib
import pytest

import hetero

from conftest import REPO, SHARED, model_path


def run_notebook(name: str) -> dict:
    """Execute a notebook's code cells but the synthesis one; returns their namespace."""
    nb = json.loads((REPO / "notebooks" / name).read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "hetero.synth(" in src:
            continue
        exec(compile(src, name, "exec"), scope)
    return scope


@pytest.mark.parametrize("where", ["notebooks", "elsewhere"])
def test_explore_folding_notebook_runs(monkeypatch, tmp_path, where):
    matplotlib.use("Agg")
    model_path("three_layer")
    if where == "notebooks":  # as Jupyter starts it: shared/ found by walking up (or the env)
        monkeypatch.chdir(REPO / "notebooks")
    else:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HETERO_SHARED", str(SHARED))
    scope = run_notebook("explore_folding.ipynb")
    rows = scope["rows"]
    assert rows[0][1] == 1 and rows[-1][1] == 128  # interval follows the reuse factor
    assert all(a[3] > b[3] for a, b in zip(rows, rows[1:]))  # fewer multipliers as it folds


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_notebooks_use_the_public_facade_only(name):
    nb = json.loads((REPO / "notebooks" / name).read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    imports = re.findall(r"^\s*(?:from|import)\s+(hetero[\w.]*)", code, re.M)
    assert set(imports) <= {"hetero"}, imports
    assert set(re.findall(r"\bhetero\.(\w+)", code)) <= set(hetero.__all__)
