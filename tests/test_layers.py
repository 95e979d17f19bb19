"""The architecture's import rules (DESIGN.md), checked on every module's source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pippin"

# Lower layers may not import higher ones. A module's layer is its first package under pippin/.
FOUNDATIONS = {"store", "crypto", "config", "errors", "logs"}
SERVICES = {"dep", "inventory", "mdm", "push", "admin"}
INTERFACES = {"api", "cli", "console"}
# The one product module allowed to reach the simulator: the `pippin sim` command that starts it.
SIM_LAUNCHER = "cli/sim.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name == "pippin" or name.startswith("pippin.")}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_layers(path: Path) -> None:
    relative = path.relative_to(SRC)
    area = relative.parts[0].removesuffix(".py") if relative.parts else ""
    for imported in _imports(path):
        target = _area(imported)
        if area == "sim":
            assert target in ("sim", ""), f"the simulator imports nothing of Pippin's product code ({imported})"
            continue
        if target == "sim":
            assert str(relative) == SIM_LAUNCHER, f"product code never imports pippin.sim ({imported})"
        if area in FOUNDATIONS:
            assert target not in SERVICES | INTERFACES, f"a foundation imports a higher layer ({imported})"
        if area in SERVICES:
            assert target not in INTERFACES, f"a service imports an interface ({imported})"
