"""Who may import whom (docs/architecture.md), held by reading every import of the project,
function-local ones included (scripts/import_graph.py does the reading), and how long a
module may grow.

The lists of known exceptions below may only shrink: no change may add one, and a change
that removes one removes it here too."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "import_graph", Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
)
import_graph = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("import_graph", import_graph)
_spec.loader.exec_module(import_graph)

# The provider layer sits below the notification platform: it may name a channel
# (common.channels) but not reach into notification tables, the engine or its tasks.
NOTIFICATION_INTERNALS = ("notifications.models", "notifications.engine", "notifications.services", "notifications.tasks")

KNOWN_PROVIDER_VIOLATIONS: set[tuple[str, str]] = set()  # none left

# Modules still inside an import circle; a module outside this set may not join one.
KNOWN_CIRCLE_MEMBERS: set[str] = set()  # none left


def _is_internal(target: str) -> bool:
    return any(target == name or target.startswith(name + ".") for name in NOTIFICATION_INTERNALS)


def test_the_reader_sees_function_local_imports(tmp_path):
    # The rules below mean nothing if an import inside a function went unseen.
    source = tmp_path / "probe.py"
    source.write_text("from notifications import enums\n\ndef f():\n    from notifications.models import Notification\n")
    modules = {**import_graph.project_modules(), "providers.probe": source}
    imports = import_graph.imports_of("providers.probe", source, modules)
    assert [(i.target, i.local) for i in imports] == [("notifications.enums", False), ("notifications.models", True)]


def test_no_provider_module_imports_notification_internals():
    _, edges = import_graph.import_graph()
    found = {(e.source, e.target) for e in edges
             if e.source.split(".")[0] == "providers" and _is_internal(e.target)}
    new = found - KNOWN_PROVIDER_VIOLATIONS
    assert not new, f"the provider layer imports notification internals: {sorted(new)}"


def test_no_module_joins_an_import_circle():
    _, edges = import_graph.import_graph()
    members = {m for group in import_graph.cycles(edges) for m in group}
    new = members - KNOWN_CIRCLE_MEMBERS
    assert not new, f"new import circle through {sorted(new)}: {import_graph.cycles(edges)}"


def _sized_modules() -> dict[str, Path]:
    """Every project module but migrations and tests: the apps, scripts/ and bench/."""
    root = import_graph.ROOT
    modules = dict(import_graph.project_modules())
    for folder in ("scripts", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            modules[str(path.relative_to(root))] = path
    modules["manage"] = root / "manage.py"
    return modules


def test_no_module_is_over_600_lines():
    sizes = import_graph.line_counts(_sized_modules())
    assert len(sizes) > 100 and "notifications.engine.delivery" in sizes  # the reader sees the project
    big = {module: n for module, n in sizes.items() if n > import_graph.SIZE_LIMIT}
    assert not big, f"modules over {import_graph.SIZE_LIMIT} lines (split them along their seams): {big}"
