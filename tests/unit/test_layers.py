"""The layers of billportal, and the rule that no module imports one above its own.

    sdk  <-  core  <-  sso  <-  storage  <-  services  <-  web  <-  portal | dashboard | api  <-  cli | app

Every ``import`` of every module under ``src/billportal`` is read (those inside
functions and ``TYPE_CHECKING`` blocks too): a module may import its own layer
and those below it, never one above; the three sites (portal, dashboard, API)
never import one another; the SDK imports nothing of the server.
docs/architecture.md shows the same layers, and this test keeps the two equal.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

SRC: Final = Path(__file__).resolve().parents[2] / "src" / "billportal"
ARCHITECTURE: Final = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("sdk", ("billportal", "billportal._links", "billportal._client")),
    ("core", ("billportal.core",)),
    ("sso", ("billportal.sso",)),
    ("storage", ("billportal.storage",)),
    ("services", ("billportal.services",)),
    ("web", ("billportal.web",)),
    ("sites", ("billportal.portal", "billportal.dashboard", "billportal.api")),
    ("top", ("billportal.cli", "billportal.app", "billportal.server", "billportal.demo", "billportal.__main__")),
)
SITES: Final = ("billportal.portal", "billportal.dashboard", "billportal.api")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def prefix_of(name: str) -> str:
    """The longest layer prefix naming ``name``."""
    candidates = [p for _, prefixes in LAYERS for p in prefixes if name == p or name.startswith(p + ".")]
    return max(candidates, key=len)


def layer_of(name: str) -> int:
    prefix = prefix_of(name)
    return next(i for i, (_, prefixes) in enumerate(LAYERS) if prefix in prefixes)


def imports_of(path: Path, name: str) -> set[str]:
    """Every billportal module ``path`` imports (relative imports resolved)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # "from billportal import sessions" imports the module billportal.sessions
            found.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if (SRC.parent / base.replace(".", "/") / f"{alias.name}.py").exists()
                or (SRC.parent / base.replace(".", "/") / alias.name).is_dir()
            )
    return {m for m in found if m == "billportal" or m.startswith("billportal.")}


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in SRC.rglob("*.py") if "migrations" not in path.parts}


def test_every_module_belongs_to_a_layer() -> None:
    for name in all_modules():
        assert layer_of(name) >= 0, name


def test_no_module_imports_a_layer_above_its_own() -> None:
    breaches = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})"
        for name, path in all_modules().items()
        for imported in imports_of(path, name)
        if layer_of(imported) > layer_of(name)
    ]
    assert not breaches, "\n".join(sorted(breaches))


def test_the_sites_do_not_import_one_another() -> None:
    crossings = []
    for name, path in all_modules().items():
        site = prefix_of(name)
        if site not in SITES:
            continue
        crossings += [
            f"{name} imports {m}" for m in imports_of(path, name) if prefix_of(m) in SITES and prefix_of(m) != site
        ]
    assert not crossings, "\n".join(sorted(crossings))


def test_the_sdk_needs_nothing_of_the_server() -> None:
    for name in ("billportal", "billportal._links", "billportal._client"):
        path = all_modules()[name]
        assert all(layer_of(m) == 0 for m in imports_of(path, name)), name


def test_the_architecture_document_shows_these_layers() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    picture = re.search(r"```text\n(?P<picture>.*?)```", text, re.DOTALL)
    assert picture is not None, "docs/architecture.md has a ```text picture of the layers"
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix != "billportal":
                short = prefix.removeprefix("billportal.")
                assert short in picture["picture"], f"{short} (layer {layer}) is missing from the picture"
