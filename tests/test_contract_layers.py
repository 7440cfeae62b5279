"""The architecture as import rules: the layers of docs/architecture.md, and no import circle at all.

The layers themselves are import-linter contracts in ``pyproject.toml`` (``lint-imports`` runs them,
in CI too); this test runs them as well, and looks for circles among every import, the ones inside
functions included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_imports_itself_back_lazily_or_not():
    graph = grimp.build_graph("convfilter")
    edges = {
        module: {d for d in graph.find_modules_directly_imported_by(module) if d.startswith("convfilter")}
        for module in graph.modules
    }
    circles = []
    for module, imported in edges.items():
        for other in imported:
            if graph.find_shortest_chain(importer=other, imported=module):
                circles.append(sorted((module, other)))
    assert not circles, f"import circles: {sorted(set(map(tuple, circles)))}"


@pytest.mark.slow
def test_the_layer_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
