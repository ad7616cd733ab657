"""The sign-in log in the dashboard: filters, keyset pages, CSV export, and indexes at any depth."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from billportal.core.config import Settings
from billportal.dashboard import sign_in_log
from billportal.dashboard.forms import LogFilters
from billportal.storage import open_store
from billportal.storage.records import SignInEvent
from billportal.storage.sqlite import SQLiteBackend
from tests.conftest import MASTER_KEY, World, run
from tests.functional.dashboard_support import SSO, admin_of_acme

LOG = f"{SSO}/log"


def seed_events(world: World, count: int, **fields: Any) -> None:
    company_id = world.company("acme").id

    async def go() -> None:
        for n in range(count):
            values: dict[str, Any] = {
                "company_id": company_id,
                "at": world.clock.now + n,
                "result": "success",
                "reason": "ok",
                "customer_id": 1234,
                "issuer": "Ruby Backend",
                "kid": "sso_000000000001",
                "jti": None,
                "ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0",
            }
            values.update(fields)
            await world.store.record_event(SignInEvent(**values))

    run(go())


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr")[1:] if "empty" not in row]


def test_the_log_shows_every_attempt_with_its_details(world: World) -> None:
    dashboard = admin_of_acme(world)
    portal = world.client("acme", headers={"user-agent": "Firefox/140 <b>bold</b>"})
    portal.get(f"/login/{world.token()}")
    portal.get(f"/login/{world.token({'sub': 1235, 'iss': 'Node', 'exp': world.clock.now - 3600})}")
    page = dashboard.get(LOG)
    assert page.status_code == 200
    found = rows(page.text)
    assert len(found) == 2
    newest, oldest = found
    assert "badge-fail" in newest
    assert "<code>expired</code>" in newest
    assert "The link has expired." in newest
    assert ">1235<" in newest
    assert "Node" in newest
    assert "testclient" in newest  # the IP the test client reports
    assert "Firefox/140 &lt;b&gt;bold&lt;/b&gt;" in newest
    assert "<b>bold</b>" not in page.text
    assert "badge-on" in oldest
    assert world.company("acme").sso_keys[0].kid in oldest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 6),
        ("?result=success", 2),
        ("?result=failure", 4),
        ("?reason=expired", 3),
        ("?reason=ok", 2),
        ("?customer=1235", 3),
        ("?result=failure&reason=expired&customer=1235", 2),
        ("?result=success&reason=expired", 0),
        ("?reason=not_a_reason", 6),  # unknown filters are dropped
        ("?result=maybe", 6),
    ],
)
def test_log_filters(world: World, query: str, expected: int) -> None:
    dashboard = admin_of_acme(world)
    portal = world.client("acme")
    stale = world.clock.now - 3600
    for token in [
        world.token(),
        world.token({"sub": 1235, "exp": world.clock.now + 60}),
        world.token({"sub": 1235, "exp": stale}),
        world.token({"sub": 1235, "exp": stale}),
        world.token({"sub": 1234, "exp": stale}),
        world.token({"sub": 1234, "exp": world.clock.now + 60}, key="not-the-acme-key-0123456789abcdefghij"),
    ]:
        portal.get(f"/login/{token}")
    page = dashboard.get(LOG + query)
    assert page.status_code == 200
    assert len(rows(page.text)) == expected


def test_a_malformed_customer_filter_is_explained(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get(LOG + "?customer=12x")
    assert page.status_code == 400
    assert "positive whole number" in page.text
    assert dashboard.get(f"{SSO}/log.csv?customer=-1").status_code == 400


def test_keyset_pages_cover_every_event_once(world: World) -> None:
    dashboard = admin_of_acme(world)
    seed_events(world, 120, customer_id=1235, reason="expired", result="failure")
    seed_events(world, 5)  # successes, filtered out below
    seen: list[int] = []
    url = LOG + "?result=failure&customer=1235"
    pages = 0
    while url:
        page = dashboard.get(url)
        pages += 1
        seen += [
            int(n) for n in re.findall(r"<td class=\"nowrap\">[^<]*</td>\s*<td><a href=\"\?customer=(\d+)\"", page.text)
        ]
        older = re.search(r'<a href="(\?[^"]+)" rel="next">', page.text)
        url = LOG + older.group(1).replace("&amp;", "&") if older else ""
        if older:
            assert "result=failure" in older.group(1)
            assert "customer=1235" in older.group(1)
    assert pages == 3
    assert len(seen) == 120
    ids = [e.id for e in run(world.store.sign_in_events(world.company("acme").id, result="failure", limit=500))]
    assert len(set(ids)) == 120


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_is_an_escaped_attachment(world: World) -> None:
    dashboard = admin_of_acme(world)
    seed_events(world, 1, issuer='=HYPERLINK("https://evil.example","click")', user_agent="@SUM(A1:A9)")
    seed_events(world, 1, issuer='Quote " and, comma', user_agent="-2+3", reason="expired", result="failure")
    seed_events(world, 1, issuer="+cmd|' /C calc'!A0", user_agent="\tTabbed", customer_id=None)
    response = dashboard.get(f"{SSO}/log.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="sign-in-log-acme-')
    assert response.headers["cache-control"] == "no-store"
    lines = response.text.splitlines()
    assert lines[0] == '"time","result","reason","customer_id","issuer","kid","ip","user_agent","event_id","method"'
    records = parse_csv(response.text)
    assert [r["issuer"] for r in records] == [
        "'+cmd|' /C calc'!A0",
        'Quote " and, comma',
        '\'=HYPERLINK("https://evil.example","click")',
    ]
    assert [r["user_agent"] for r in records] == ["'\tTabbed", "'-2+3", "'@SUM(A1:A9)"]
    assert records[0]["customer_id"] == ""
    assert records[1]["reason"] == "expired"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", records[0]["time"])


def test_csv_export_follows_the_filters_and_walks_every_window(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sign_in_log, "SCAN_WINDOW", 40)
    dashboard = admin_of_acme(world)
    seed_events(world, 97, customer_id=1235, reason="expired", result="failure")
    seed_events(world, 30, customer_id=1235)
    seed_events(world, 20)
    everything = parse_csv(dashboard.get(f"{SSO}/log.csv").text)
    assert len(everything) == 147
    ids = [int(r["event_id"]) for r in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    failures = parse_csv(dashboard.get(f"{SSO}/log.csv?result=failure&customer=1235").text)
    assert len(failures) == 97
    assert {r["reason"] for r in failures} == {"expired"}
    customer = parse_csv(dashboard.get(f"{SSO}/log.csv?customer=1235").text)
    assert len(customer) == 127
    successes = parse_csv(dashboard.get(f"{SSO}/log.csv?result=success&customer=1235").text)
    assert len(successes) == 30
    page = dashboard.get(LOG + "?reason=expired")
    assert 'href="/settings/developers/sso/log.csv?reason=expired"' in page.text


def test_successes_of_every_customer_search_a_window_at_a_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sign_in_log, "SCAN_WINDOW", 50)
    dashboard = admin_of_acme(world)
    seed_events(world, 60, customer_id=1235)  # oldest
    seed_events(world, 100, customer_id=1234, reason="expired", result="failure")
    seed_events(world, 5, customer_id=1235)  # newest
    url = LOG + "?result=success"
    found: list[int] = []
    notes = 0
    while url:
        page = dashboard.get(url)
        found += [int(n) for n in re.findall(r'<td><a href="\?customer=(\d+)"', page.text)]
        notes += "attempts at a time" in page.text
        older = re.search(r'<a href="(\?[^"]+)" rel="next">', page.text)
        url = LOG + older.group(1).replace("&amp;", "&") if older else ""
    assert found == [1235] * 65
    assert notes >= 2  # windows with fewer matches than a page say so, and offer to search on


def test_one_customers_events_are_an_index_range_with_no_window(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sign_in_log, "SCAN_WINDOW", 50)
    dashboard = admin_of_acme(world)
    seed_events(world, 60, customer_id=1235)  # oldest
    seed_events(world, 100, customer_id=1234)
    seed_events(world, 5, customer_id=1235)  # newest
    page = dashboard.get(LOG + "?customer=1235")
    assert [int(n) for n in re.findall(r'<td><a href="\?customer=(\d+)"', page.text)] == [1235] * 50
    assert "attempts at a time" not in page.text


def test_another_companys_events_never_show(world: World) -> None:
    dashboard = admin_of_acme(world)
    world.client("globex").get(f"/login/{world.token({'sub': 77, 'exp': world.clock.now - 3600})}")
    assert rows(dashboard.get(LOG).text) == []
    assert len(parse_csv(dashboard.get(f"{SSO}/log.csv").text)) == 0


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_sign_in_events_company_id"),
        ({"result": "failure"}, "ix_sign_in_events_failures"),
        ({"reason": "kid_unknown"}, "ix_sign_in_events_failure_reason"),
        ({"result": "failure", "reason": "expired"}, "ix_sign_in_events_failure_reason"),
        ({"result": "failure", "customer": "1234"}, "ix_sign_in_events_customer"),
        ({"customer": "1234"}, "ix_sign_in_events_customer"),
        ({"result": "success"}, "ix_sign_in_events_company_id (company_id=? AND id>?"),
    ],
)
def test_every_log_filter_reads_a_bounded_index_range_in_sqlite(
    tmp_path: Path, filters: dict[str, str], index: str
) -> None:
    """Pages stay fast at a million events: no query reads the table whole or sorts it."""
    store = open_store(Settings(data_dir=tmp_path, master_key=MASTER_KEY))
    backend = store.backend
    assert isinstance(backend, SQLiteBackend)
    statements: list[tuple[str, Any]] = []

    def capture(**sent: Any) -> None:
        if "FROM sign_in_events" in sent["statement"]:
            statements.append((sent["statement"], sent["parameters"]))

    # Enough events that a window scan has a floor.
    seed = [(1, n, "success", "ok", n % 7, "", "", None, "", "") for n in range(sign_in_log.SCAN_WINDOW + 10)]
    backend.conn.executemany(
        "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        seed,
    )
    event.listen(backend.engine, "before_cursor_execute", capture, named=True)
    try:
        run(sign_in_log.log_page(store, 1, LogFilters.parse(filters), None, 50))
        plans = [
            " ".join(row[3] for row in backend.conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
            for statement, parameters in statements
        ]
    finally:
        event.remove(backend.engine, "before_cursor_execute", capture)
        store.close()
    assert any(f"USING INDEX {index}" in plan for plan in plans), plans
    for plan in plans:
        assert "SCAN sign_in_events" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
