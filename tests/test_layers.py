"""The architecture's import rules (DESIGN.md), checked on every module's source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pippin"

# Lower layers may not import higher ones. A module's layer is its first package under pippin/.
FOUNDATIONS = {"store", "crypto", "config", "errors", "logs", "printable", "private_files", "text"}
SERVICES = {"dep", "mdm", "push", "pki", "admin", "inventory", "jobs"}
INTERFACES = {"api", "cli", "console", "device"}
# Above the interfaces: assembles the web sub-apps and their shared request dependencies and resources.
SERVER = "server"
# The one product module allowed to reach the simulator: the `pippin sim` command that starts it.
SIM_LAUNCHER = "cli/sim.py"
# The one CLI module allowed to reach the server root: `pippin serve`, which runs it.
SERVER_LAUNCHER = "cli/serve.py"


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


def _violations(relative: Path, imports: set[str]) -> list[str]:
    """What is wrong with module ``relative`` (under pippin/) importing ``imports``; empty when nothing is."""
    area = relative.parts[0].removesuffix(".py") if relative.parts else ""
    found: list[str] = []
    for imported in sorted(imports):
        target = _area(imported)
        if area == "sim":
            if target not in ("sim", ""):
                found.append(f"the simulator imports nothing of Pippin's product code ({imported})")
            continue
        if target == "sim" and str(relative) != SIM_LAUNCHER:
            found.append(f"product code never imports pippin.sim ({imported})")
        if area in FOUNDATIONS and target in SERVICES | INTERFACES | {SERVER}:
            found.append(f"a foundation imports a higher layer ({imported})")
        if area in SERVICES and target in INTERFACES | {SERVER}:
            found.append(f"a service imports an interface or the server ({imported})")
        if area in INTERFACES and target in INTERFACES and target != area:
            found.append(f"interfaces never import each other ({imported})")
        if area == "cli" and target == SERVER and str(relative) != SERVER_LAUNCHER:
            found.append(f"only `pippin serve` starts the server ({imported})")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_layers(path: Path) -> None:
    assert _violations(path.relative_to(SRC), _imports(path)) == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("console/tokens.py", "pippin.api.deps"),
        ("api/dep.py", "pippin.console.rendering"),
        ("api/app.py", "pippin.cli.context"),
        ("cli/dep.py", "pippin.api.app"),
        ("device/app.py", "pippin.console.app"),
        ("cli/dep.py", "pippin.server.app"),
        ("dep/sync.py", "pippin.server.resources"),
        ("store/db.py", "pippin.server.deps"),
        ("dep/sync.py", "pippin.api.errors"),
        ("crypto/keys.py", "pippin.dep.token"),
        ("api/app.py", "pippin.sim.app"),
    ],
)
def test_the_rules_refuse_each_forbidden_import(module: str, imported: str) -> None:
    assert _violations(Path(module), {imported}) != []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("server/app.py", "pippin.api.app"),
        ("server/app.py", "pippin.console.app"),
        ("server/app.py", "pippin.device.app"),
        ("api/dep.py", "pippin.server.deps"),
        ("console/tokens.py", "pippin.server.background"),
        ("cli/serve.py", "pippin.server.app"),
        ("cli/sim.py", "pippin.sim.app"),
        ("api/dep.py", "pippin.dep.token"),
    ],
)
def test_the_rules_allow_what_the_design_allows(module: str, imported: str) -> None:
    assert _violations(Path(module), {imported}) == []


def test_every_package_has_a_layer() -> None:
    """A new top-level package must be placed in a layer here, or the rules above would not apply to it."""
    known = FOUNDATIONS | SERVICES | INTERFACES | {SERVER, "sim", "__init__", "__main__"}
    packages = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in _modules()}
    assert packages <= known, f"place these in a layer in tests/test_layers.py: {sorted(packages - known)}"
