"""Every migration can run while the previous release serves: no DDL that blocks writes or breaks it.

A static reading of each script's ``upgrade()`` under storage/migrations/versions
(the run under load is tests/scaleout/test_migrations.py). What a migration may
do to a table that already exists:

* build an index only through ``create_index_online`` (``CREATE INDEX
  CONCURRENTLY`` on PostgreSQL, outside any transaction);
* add a column only if it is nullable or has a server default (no table rewrite,
  and the previous release's inserts still work);
* never drop, rename or retype a column or table, nor add a constraint that
  scans the table under a lock.

A table created in the same migration is new and empty: anything goes there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import pytest

VERSIONS: Final = Path(__file__).resolve().parents[3] / "src" / "billportal" / "storage" / "migrations" / "versions"
SCRIPTS: Final = sorted(VERSIONS.glob("*.py"))

# Operations that rewrite or lock an existing table, or break the release still serving.
_BLOCKING: Final = frozenset(
    {
        "drop_column",
        "drop_table",
        "rename_table",
        "create_foreign_key",
        "create_unique_constraint",
        "create_check_constraint",
        "create_primary_key",
        "create_exclude_constraint",
    }
)
_RAW_DDL: Final = re.compile(r"\b(ALTER\s+TABLE|CREATE\s+(UNIQUE\s+)?INDEX(?!\s+CONCURRENTLY)|DROP\s+)", re.IGNORECASE)


def _name(node: ast.expr) -> str:
    return (
        node.func.attr
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        else (node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else "")
    )


def _constant(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _on_op(call: ast.Call) -> bool:
    """``op.x(...)`` rather than ``batch_op.x(...)``."""
    return isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id == "op"


def _table(call: ast.Call, position: int, batch: str | None) -> object:
    """The table a call changes: the batch's, or its argument at ``position`` (or ``table_name=``)."""
    if batch is not None and not _on_op(call):
        return batch
    return _constant(call.args[position] if len(call.args) > position else _keyword(call, "table_name"))


def problems(source: str) -> list[str]:
    """What in this migration's ``upgrade()`` is not safe to run online."""
    tree = ast.parse(source)
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    created = {
        _constant(call.args[0])
        for call in ast.walk(upgrade)
        if isinstance(call, ast.Call) and _name(call) == "create_table" and call.args
    }
    found: list[str] = []

    def visit(node: ast.AST, batch: str | None) -> None:
        if isinstance(node, ast.With):
            for item in node.items:
                if _name(item.context_expr) == "batch_alter_table" and isinstance(item.context_expr, ast.Call):
                    batch = str(_constant(item.context_expr.args[0]))
        if isinstance(node, ast.Call):
            check(node, batch)
        for child in ast.iter_child_nodes(node):
            visit(child, batch)

    def check(call: ast.Call, batch: str | None) -> None:
        name, line = _name(call), call.lineno
        if name == "create_index":
            table = _table(call, 1, batch)
            if table not in created:
                found.append(f"line {line}: create_index on existing table {table!r}: use create_index_online")
        elif name in _BLOCKING:
            table = _table(call, 0 if name != "create_foreign_key" else 1, batch)
            if table not in created or name in {"drop_column", "drop_table", "rename_table"}:
                found.append(f"line {line}: {name} blocks writes or breaks the release still serving")
        elif name == "alter_column":
            if (
                any(_keyword(call, k) is not None for k in ("type_", "new_column_name"))
                or _constant(_keyword(call, "nullable")) is False
            ):
                found.append(f"line {line}: alter_column retypes, renames or sets NOT NULL (a scan under lock)")
        elif name == "add_column":
            column = next((a for a in call.args if _name(a) == "Column"), None)
            if (
                isinstance(column, ast.Call)
                and _table(call, 0, batch) not in created
                and _constant(_keyword(column, "nullable")) is False
                and _keyword(column, "server_default") is None
            ):
                found.append(f"line {line}: add_column NOT NULL without a server default")
        elif name == "execute":
            texts = (n.value for n in ast.walk(call) if isinstance(n, ast.Constant) and isinstance(n.value, str))
            found.extend(f"line {line}: raw DDL that locks a table: {t[:60]!r}" for t in texts if _RAW_DDL.search(t))

    for statement in upgrade.body:
        visit(statement, None)
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_every_migration_is_safe_to_run_while_the_previous_release_serves(script: Path) -> None:
    assert problems(script.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('op.create_index("ix", "sign_in_events", ["a"])', "create_index on existing table"),
        ('with op.batch_alter_table("sign_in_events") as b:\n        b.create_index("ix", ["a"])', "create_index"),
        ('op.add_column("admins", sa.Column("x", sa.Boolean(), nullable=False))', "NOT NULL without"),
        ('op.alter_column("admins", "email", type_=sa.Text())', "alter_column"),
        ('op.drop_column("admins", "email")', "drop_column"),
        ('op.execute("CREATE INDEX ix ON sign_in_events (at)")', "raw DDL"),
    ],
)
def test_the_check_catches_blocking_ddl(body: str, expected: str) -> None:
    """The check is not vacuous: each kind of blocking change is caught."""
    found = problems(f"def upgrade() -> None:\n    {body}\n")
    assert found
    assert expected in found[0]


def test_the_check_allows_what_is_online_safe() -> None:
    source = (
        "def upgrade() -> None:\n"
        '    op.create_table("fresh", sa.Column("id", sa.Integer(), nullable=False))\n'
        '    op.create_index("ix_fresh", "fresh", ["id"])\n'
        '    create_index_online("ix_events", "sign_in_events", ["at"])\n'
        '    op.add_column("admins", sa.Column("x", sa.Boolean(), server_default="0", nullable=False))\n'
        "    op.execute(\"UPDATE sso_keys SET state = 'retiring'\")\n"
    )
    assert problems(source) == []
