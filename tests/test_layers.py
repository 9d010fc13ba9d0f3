"""The data flows one way: no module imports one above it in the pipeline order of docs/design.md.

Every import of every module under ``src/flowsentinel`` counts, those inside
functions included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "flowsentinel"

#: The pipeline order, lowest first; a module may import its own layer and the ones below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("__init__", "errors", "choices", "paths", "sampling")),
    ("schema", ("schema", "taxonomy", "synthetic")),
    ("io", ("io", "alerting")),
    ("sources", ("metering", "sources")),
    ("features", ("features",)),
    ("evaluation", ("evaluation",)),
    ("models", ("models", "backends")),
    ("persistence", ("persistence", "explain")),
    ("training", ("config", "training")),
    ("serving", ("serving", "collector", "spark")),
    ("service", ("service",)),
    ("cli", ("cli",)),
]
RANK = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def _top(module: str) -> str:
    """``flowsentinel.models.deep`` -> ``models``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def _imports(name: str, path: Path, is_package: bool):
    tree = ast.parse(path.read_text())
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flowsentinel"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = base[: len(base) - node.level + 1] + ([node.module] if node.module else [])
                module = ".".join(target)
            else:
                module = node.module or ""
            if not module.startswith("flowsentinel"):
                continue
            if module == "flowsentinel":  # from flowsentinel import x: x is a subpackage or a name of __init__
                for alias in node.names:
                    yield f"flowsentinel.{alias.name}", node.lineno
            else:
                yield module, node.lineno


def test_every_top_level_module_has_a_layer():
    tops = {_top(name) for name, _ in _modules()}
    assert tops - set(RANK) == set(), "give every new top-level module a layer here and in docs/design.md"


def test_no_module_imports_one_above_it():
    bad = []
    for name, path in _modules():
        own = RANK[_top(name)]
        for target, line in _imports(name, path, path.name == "__init__.py"):
            top = _top(target)
            if top in RANK and RANK[top] > own:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} ({LAYERS[own][0]}) imports "
                           f"{target} ({LAYERS[RANK[top]][0]})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_design_doc_lists_every_layer(layer):
    doc = (PACKAGE.parents[1] / "docs" / "design.md").read_text()
    assert f"**{layer}**" in doc


def test_sources_and_evaluation_import_without_the_meter():
    """The MindSpore environment has no nfstream (the meter's optional extra); loading flow files,
    evaluating and reading a meter config must not need it (a CI failure in that environment)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['nfstream'] = None\n"
            "import flowsentinel.sources, flowsentinel.training.experiment\n"
            "from flowsentinel.metering import MeterConfig\n"
            "MeterConfig()\n"
            "try:\n"
            "    from flowsentinel.metering import meter_capture\n"
            "except ImportError:\n"
            "    print('meter needs nfstream')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "meter needs nfstream"
