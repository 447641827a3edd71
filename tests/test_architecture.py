"""The package's layers: every import in hetero/ (at module level, inside functions and under
``TYPE_CHECKING`` alike) goes down the declared layer order or stays inside its layer, and no
set of modules imports itself in a cycle. docs/architecture.md describes the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hetero"

#: Lowest first. A module may import modules of its own layer and of the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("hetero.errors", "hetero.cache", "hetero.boards", "hetero.ir"),  # data: types, graph, targets
    ("hetero.hw",),                     # hardware blocks: component, cycles, cost
    ("hetero.ops",),                    # one module per op, every facet
    ("hetero.frontend",),               # ONNX / QONNX / QDQ to the IR
    ("hetero.reference", "hetero.dataflow"),  # the executable spec; graph-level hardware analyses
    ("hetero.passes",),                 # the pipeline: precision, calibration, folding
    ("hetero.backends",),               # generators: RTL (Amaranth), HLS C++
    ("hetero.sim", "hetero.synthesis"),  # running backends; Yosys, nextpnr, analytic estimate
    ("hetero.report",),                 # report, baselines, energy, plots, HTML
    ("hetero.flows",),                  # end-to-end flows (compile, synth, sim, csim)
    ("hetero.testing",),                # conformance harness, helpers for users' tests
    ("hetero.api",),                    # the typed public API
    ("hetero.cli", "hetero.__main__", "hetero"),  # command line and the lazy facade
]


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def imports() -> dict[str, set[str]]:
    """Module -> the hetero modules it imports anywhere in its text."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parent = base[:len(base) - node.level + 1]
                    module = ".".join(parent + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # ``from pkg import mod`` imports the module; ``from mod import name`` the module
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module
                           for a in node.names]
            edges[name] |= {t for t in targets if t in mods and t != name}
    return edges


def layer_of(module: str) -> int:
    best = None
    for k, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + ".") and p != "hetero":
                if best is None or len(p) > best[1]:
                    best = (k, len(p))
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to tests/test_architecture.py LAYERS")
    return best[0]


def test_every_module_has_a_layer():
    for m in modules():
        layer_of(m)


def test_imports_only_go_down():
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
              for a, bs in imports().items() for b in sorted(bs) if layer_of(b) > layer_of(a)]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = strongly_connected(imports())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_cycle_finder(edges, expected):
    assert strongly_connected(edges) == expected


def test_every_package_is_installed():
    """pyproject.toml lists the packages explicitly: a new sub-package must join the list, or a
    non-editable install lacks it."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert packages <= listed, f"missing from pyproject.toml [tool.setuptools] packages: {sorted(packages - listed)}"
