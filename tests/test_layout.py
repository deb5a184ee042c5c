"""The package layout shows the design: each layer imports only from the layers below it.

errors -> model -> planners -> analysis -> documents -> render -> execution -> hardware -> cli. A module that
reaches upward (say, a planner importing the profile loader) would tie the pure computation to
files or output, so this test fails on it, function-level imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import multispin_cli

LAYERS = ("errors", "model", "planners", "analysis", "documents", "render", "execution", "hardware", "cli")
PACKAGE = Path(multispin_cli.__file__).parent


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "multispin_cli" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "multispin_cli":
                for alias in node.names:
                    yield f"multispin_cli.{alias.name}"
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "errors")]
    assert loose == [], "modules belong in one of the layer packages: " + ", ".join(LAYERS[1:])


def test_imports_point_downward_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer("multispin_cli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if own is None:
            continue
        for module in _imports(path):
            other = _layer(module)
            if other is not None and other > own:
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert upward == []
