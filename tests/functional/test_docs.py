"""The docs against the code: routes, menu paths, quoted UI text and CLI commands (issue 19.5).

What docs/*.md and the README say a user will see or type is checked here, so that
they cannot drift from the product again.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from starlette.routing import BaseRoute, Match, Mount, Route, Router

from billportal.api.operations import OPERATIONS
from billportal.app import SITES
from billportal.cli import parser
from billportal.web.context import Context
from billportal.web.operations import OPERATIONS_PATHS
from tests.conftest import World

ROOT: Final = Path(__file__).resolve().parents[2]
# benchmarks.md is written by `make bench`: its words are measurements, not the product's.
DOCS: Final = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "benchmarks.md")]
SOURCES: Final = [*(ROOT / "src/billportal/templates").rglob("*.html"), *(ROOT / "src/billportal").rglob("*.py")]

# Double-quoted words in prose that are not text of the product's pages, and why.
NOT_UI_TEXT: Final = {
    "1234": "a customer id",
    "unavailable": "a word the architecture doc discusses",
    "cannot start a transaction within a transaction": "SQLite's own error message",
    "database disk image is malformed": "SQLite's own error message",
    "until": "the Try-it verdict's word, quoted in a sentence",
}
API_PREFIX: Final = "/api/v1"
API_PAGES: Final = ("", "/", "/docs", "/openapi.json", "/docs.css")
# Backticked absolute paths that are not routes of billportal.
NOT_ROUTES: Final = ("/dev/", "/proc/")


def prose(path: Path) -> str:
    """The text outside code: fenced blocks and inline code removed, bold markers and line breaks flattened."""
    text = re.sub(r"```.*?```", " ", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"\s+", " ", text.replace("**", ""))


def product_text() -> str:
    return re.sub(r"\s+", " ", " ".join(p.read_text(encoding="utf-8") for p in SOURCES)).lower()


def leaf_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount) and isinstance(route.app, Router) and route.path:
            yield from leaf_routes(route.app.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix, route


def documented_paths() -> list[tuple[str, str, str]]:
    """(doc, method or "", path) for every backticked absolute path in the docs."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for method, path in re.findall(r"`(?:(GET|POST|PATCH|DELETE) )?(/[A-Za-z0-9_./{}\-]*)[^`]*`", text):
            if path.startswith((*NOT_ROUTES, "/{")):
                continue
            found.append((doc.name, method, path))
    return found


def _api_route_exists(method: str, path: str) -> bool:
    rest = path.removeprefix(API_PREFIX)
    if rest in API_PAGES:
        return True
    shape = re.sub(r"\{[^}]*\}", "{}", rest)
    return any(
        re.sub(r"\{[^}]*\}", "{}", op.path) == shape and (not method or op.method == method) for op in OPERATIONS
    )


def test_every_documented_path_is_a_route(world: World) -> None:
    context = Context(world.settings, world.store, world.clock)
    routers = [build(context) for build in SITES.values()]
    routes = [r for router in routers if isinstance(router, Router) for r in leaf_routes(router.routes)]
    samples = {"{token}": "eyJh.eyJz.c2ln", "{id}": "1", "{kid}": "k1", "{key_id}": "1"}
    missing = []
    for doc, method, path in documented_paths():
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            if not _api_route_exists(method, path):
                missing.append(f"{doc}: {method} {path}")
            continue
        concrete = path + ("eyJh.eyJz.c2ln" if path == "/login/" else "")
        for placeholder, sample in samples.items():
            concrete = concrete.replace(placeholder, sample)
        if concrete in OPERATIONS_PATHS:
            continue
        scope = {"type": "http", "path": concrete, "method": method or "GET"}
        matches = [route.matches(scope)[0] for prefix, route in routes if not prefix]
        if Match.FULL not in matches and not (not method and Match.PARTIAL in matches):
            missing.append(f"{doc}: {method} {path}")
    assert missing == []


def test_every_menu_path_names_real_menus_and_headings() -> None:
    templates = ROOT / "src/billportal/templates/dashboard"
    labels = set()
    for page in templates.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        # a label as written, or marked for translation: {{ _("Single Sign-On") }}
        text = r'([^<{]+|\{\{ _\("[^"]+"\) \}\})'
        found = re.findall(rf"<a [^>]*>{text}</a>", html) + re.findall(rf"<h[12][^>]*>{text}</h[12]>", html)
        labels |= {re.sub(r'^\{\{ _\("(.*)"\) \}\}$', r"\1", m.strip()) for m in found}
    wrong = []
    for doc in DOCS:
        for trail in re.findall(
            r"Settings > Developers((?: > [^>]+?)+)(?=[,.;:()]|$| and | lists | or | in )", prose(doc)
        ):
            for segment in trail.split(" > ")[1:]:
                step = segment.strip()
                if not any(
                    step.lower().startswith(label.lower()) or label.lower().startswith(step.lower()) for label in labels
                ):
                    wrong.append(f"{doc.name}: {step!r} in 'Settings > Developers{trail}'")
    assert wrong == []


def test_quoted_ui_text_is_the_products() -> None:
    product = product_text()
    wrong = []
    for doc in DOCS:
        for quoted in re.findall(r'"([^"]{3,160})"', prose(doc)):
            if quoted in NOT_UI_TEXT:
                continue
            if quoted.lower() not in product:
                wrong.append(f"{doc.name}: {quoted!r}")
    assert wrong == []


def documented_commands() -> list[tuple[str, str]]:
    """(doc, command line) for every `billportal ...` in inline code or on a line of a code block."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL):
            lines = re.findall(r"^\s*(?:\$ )?(?:\.venv/bin/)?(billportal [^\n]*)$", block, flags=re.MULTILINE)
            found += [(doc.name, line) for line in lines]
        inline = re.findall(r"`(?:\.venv/bin/)?(billportal [^`\n]*)`", text)
        found += [(doc.name, line) for line in inline]
    return found


def _subcommands(command: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize(("doc", "command"), documented_commands())
def test_every_documented_command_and_option_exists(doc: str, command: str) -> None:
    """The subcommands named exist, and so does every ``--option`` given to the last of them."""
    words = re.sub(r"[\[\]]", " ", command.split("#", 1)[0]).split()[1:]
    command_parser = parser()
    named = ["billportal"]
    while words and words[0] != "..." and (choices := _subcommands(command_parser)):
        alternatives = words[0].split("|")  # "create|revoke": each one must exist
        for word in alternatives:
            assert word in choices, f"{doc}: {' '.join(named)} has no command {word!r} ({command!r})"
        command_parser = choices[alternatives[0]]
        named.append(words.pop(0))
    options = {option for action in command_parser._actions for option in action.option_strings}
    unknown = [w.split("=", 1)[0] for w in words if w.startswith("--") and w.split("=", 1)[0] not in options]
    assert unknown == [], f"{doc}: {' '.join(named)} has no option {unknown} ({command!r})"
