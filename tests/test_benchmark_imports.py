"""The benchmarks run outside the test suite: at least every name they import from the portal must exist.

Importing a benchmark would start its work (databases, servers), so its imports are read from the
source: each portal module named is imported and asked for the names, and each benchmark module
named is read for what it defines.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))
OURS = ("portal", "catalog", "provisioning", "benchmarks", "tests")


def _imported_names(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS
        for alias in node.names
    ]


def _defined_in(module_name: str) -> set[str]:
    """What a benchmark module defines or imports at its top level, read from its source."""
    if module_name == "benchmarks":
        return {path.stem for path in BENCHMARKS}  # ``from benchmarks import vm_bench``
    path = BENCHMARKS[0].parent / f"{module_name.split('.', 1)[1]}.py"
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_name_a_benchmark_imports_from_the_portal_exists(path: Path) -> None:
    missing = []
    for module_name, name in _imported_names(path):
        if module_name.split(".")[0] == "benchmarks":
            if name not in _defined_in(module_name):
                missing.append(f"{module_name}.{name}")
            continue
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")  # a submodule
            except ModuleNotFoundError:
                missing.append(f"{module_name}.{name}")
    assert missing == [], f"{path.name} imports names that are gone: {missing}"
