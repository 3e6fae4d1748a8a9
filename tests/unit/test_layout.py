"""The tree matches docs/design.md's map: what each folder may import, and what pyproject ships."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"creditbus.streams": "streams", "creditbus.connectors": "connectors",
           "creditbus.services": "services"}
LAYERS = ("creditbus.streams", "creditbus.connectors", "creditbus.services",
          "creditbus.devtools", "creditbus.cli")
# what each part may import of the other parts (the core, creditbus.*, is open to all)
ALLOWED = {
    "core": set(),
    "creditbus.streams": set(),
    "creditbus.connectors": set(),
    "creditbus.services": set(),
    "creditbus.devtools": {"creditbus.streams", "creditbus.connectors", "creditbus.services"},
    "creditbus.cli": set(LAYERS),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in {"creditbus": "creditbus", **FOLDERS}.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _part(module: str) -> str:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")),
                "core")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", sorted(_modules()))
def test_a_module_imports_only_what_its_folder_may(module: str) -> None:
    part = _part(module)
    allowed = ALLOWED[part] | {part}
    for name in _imports(_modules()[module]):
        if not name.startswith("creditbus"):
            assert name.split(".")[0] not in {"streams", "connectors", "services"}, name
            continue
        other = _part(name)
        assert other == "core" or other in allowed, f"{module} ({part}) imports {name}"


def test_pyproject_ships_every_package_of_the_tree() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    assert setuptools["package-dir"] == FOLDERS
    packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert set(setuptools["packages"]) == packages


def test_design_map_names_every_folder() -> None:
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for path in _modules().values():
        if path.name == "__init__.py":
            folder = path.parent.relative_to(ROOT).as_posix()
            assert f"`{folder}/`" in design, f"docs/design.md's map does not name {folder}/"
