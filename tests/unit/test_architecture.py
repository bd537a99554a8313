"""The layering rules of design.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cgmtray"

QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")

#: For each layer: the cgmtray packages it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "share": {"domain"},
    # The one share_url rule (share/urls.py, standard library only) is shared with the loader.
    "storage": {"domain", "share.urls"},
    "fakeshare": {"domain", "share.regions"},
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_design_allows(layer: str) -> None:
    offences = []
    for path in _modules(layer):
        for name in _imports(path):
            if name.split(".")[0] in QT_MODULES:
                offences.append(f"{path.name} imports {name}")
            if not name.startswith("cgmtray."):
                continue
            inner = name.removeprefix("cgmtray.")
            if inner.startswith(layer) or inner in ("", "__init__"):
                continue
            if not any(inner == a or inner.startswith(a + ".") for a in ALLOWED[layer]):
                offences.append(f"{path.relative_to(SRC)} imports {name}")
    assert offences == []


def test_domain_uses_only_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offences = [
        f"{path.name} imports {name}"
        for path in _modules("domain")
        for name in _imports(path)
        if name.split(".")[0] not in stdlib and not name.startswith("cgmtray.domain")
    ]
    assert offences == []


def test_the_share_url_rule_storage_uses_needs_only_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offences = [
        name
        for name in _imports(SRC / "share" / "urls.py")
        if name.split(".")[0] not in stdlib and name != "cgmtray.share.regions"
    ]
    offences += [
        name for name in _imports(SRC / "share" / "regions.py") if name.split(".")[0] not in stdlib
    ]
    assert offences == []


def test_only_ui_imports_qt() -> None:
    offences = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        if "ui" not in path.relative_to(SRC).parts
        for name in _imports(path)
        if name.split(".")[0] in QT_MODULES
    ]
    assert offences == []


def test_core_packages_load_no_qt_in_a_fresh_interpreter() -> None:
    code = (
        "import sys\n"
        "import cgmtray.share.client, cgmtray.share.wire, cgmtray.share.errors\n"
        "import cgmtray.fakeshare.server, cgmtray.fakeshare.sensor, cgmtray.fakeshare.demo\n"
        "import cgmtray.domain.alerts, cgmtray.domain.schedule, cgmtray.domain.display\n"
        "import cgmtray.domain.stats, cgmtray.domain.units, cgmtray.domain.freshness\n"
        "import cgmtray.storage.settings, cgmtray.storage.history, cgmtray.storage.credentials\n"
        "import cgmtray.glance, cgmtray.glance_people, cgmtray.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{QT_MODULES!r})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
