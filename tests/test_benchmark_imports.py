"""The benchmarks run outside the test suite: at least every name they import from the portal must exist.

Importing a benchmark would start its work (databases, servers), so its imports are read from the
source and each named module is imported and asked for the names instead.
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


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_name_a_benchmark_imports_from_the_portal_exists(path: Path) -> None:
    missing = []
    for module_name, name in _imported_names(path):
        if module_name.startswith("benchmarks"):
            continue  # the benchmarks' own shared modules are checked as benchmarks themselves
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")  # a submodule
            except ModuleNotFoundError:
                missing.append(f"{module_name}.{name}")
    assert missing == [], f"{path.name} imports names that are gone: {missing}"
