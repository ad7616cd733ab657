"""Operators' endpoints, request ids, forwarded headers and logs."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.storage import open_store
from billportal.web.logging import AccessLog, JsonFormatter, RedactingFilter, request_id
from tests.conftest import World, run


def _client(world: World, address: str, **settings: object) -> TestClient:
    app = build_app(replace(world.settings, **settings), world.store, world.clock)  # type: ignore[arg-type]
    return TestClient(app, base_url="https://acme.localhost", follow_redirects=False, client=(address, 40000))


def test_healthz_and_readyz_answer_on_any_host(world: World) -> None:
    client = _client(world, "203.0.113.9")
    assert client.get("/healthz", headers={"host": "10.0.0.5:8000"}).text == "ok\n"
    ready = client.get("/readyz", headers={"host": "anything.example"})
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["checks"]["database"] is True
    assert ready.json()["status"] == "ok"


def test_metrics_only_for_operator_networks(world: World) -> None:
    world.client().get(f"/login/{world.token()}")
    world.client().get("/login/garbage")
    public = _client(world, "203.0.113.9").get("/metrics")
    assert public.status_code == 404
    operator = _client(world, "127.0.0.1").get("/metrics")
    assert operator.status_code == 200
    body = operator.text
    assert 'billportal_sign_ins_total{reason="ok",result="success"}' in body
    assert 'billportal_sign_ins_total{reason="token_malformed",result="failure"}' in body
    assert "billportal_request_seconds_bucket" in body
    assert "billportal_database_up 1.0" in body


def test_every_answer_has_a_request_id_and_a_safe_incoming_one_is_kept(world: World) -> None:
    client = world.client()
    generated = client.get("/signed-out").headers["x-request-id"]
    assert len(generated) == 16
    assert client.get("/signed-out", headers={"x-request-id": "lb-1234"}).headers["x-request-id"] == "lb-1234"
    forged = client.get("/signed-out", headers={"x-request-id": "bad\nid"}).headers["x-request-id"]
    assert forged != "bad\nid"


def test_forwarded_host_is_believed_only_from_a_trusted_proxy(world: World) -> None:
    token = world.token()
    behind = _client(world, "10.0.0.2", trusted_proxies=("10.0.0.2",))
    headers = {"host": "internal:8000", "x-forwarded-host": "acme.localhost", "x-forwarded-proto": "https"}
    assert behind.get(f"/login/{token}", headers=headers).status_code == 303
    stranger = _client(world, "198.51.100.7", trusted_proxies=("10.0.0.2",))
    assert stranger.get(f"/login/{token}", headers=headers).status_code == 404


def test_forwarded_for_sets_the_logged_ip_only_from_a_trusted_proxy(world: World) -> None:
    behind = _client(world, "10.0.0.2", trusted_proxies=("10.0.0.2",))
    behind.get("/login/garbage", headers={"x-forwarded-for": "192.0.2.44"})
    stranger = _client(world, "198.51.100.7", trusted_proxies=("10.0.0.2",))
    stranger.get("/login/garbage", headers={"x-forwarded-for": "192.0.2.45"})

    ips = [e.ip for e in run(world.store.sign_in_events(world.acme.id))]
    assert ips == ["198.51.100.7", "192.0.2.44"]


def test_json_logs_carry_the_request_id_and_never_the_token() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2lnbmF0dXJl"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/login/{token}?redirect_to=invoices", "1.1", 303),
        None,
    )
    RedactingFilter().filter(record)
    marker = request_id.set("req-42")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(marker)
    entry = json.loads(line)
    assert entry["request_id"] == "req-42"
    assert entry["path"] == "/login/[redacted]?redirect_to=invoices"
    assert entry["status"] == 303
    assert token not in line


@pytest.mark.parametrize("json_format", [False, True])
def test_the_access_log_writes_each_line_once_without_the_token(tmp_path: Path, json_format: bool) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2lnbmF0dXJl"
    target = tmp_path / "access.log"
    with target.open("w", encoding="utf-8") as stream:
        handler = AccessLog(stream, json_format=json_format)
        for index, path in enumerate([f"/login/{token}", "/invoices/3?key=k3y&page=2", "/invoices"] * 200):
            handler.handle(
                logging.LogRecord(
                    "uvicorn.access",
                    logging.INFO,
                    __file__,
                    1,
                    '%s - "%s %s HTTP/%s" %d',
                    ("127.0.0.1:5000", "GET", path, "1.1", 303 if index % 3 == 0 else 200),
                    None,
                )
            )
        handler.close()  # what logging does at exit: every queued line is written
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 600
    text = "\n".join(lines)
    assert token not in text
    assert "k3y" not in text
    if json_format:
        first = json.loads(lines[0])
        assert (first["path"], first["status"]) == ("/login/[redacted]", 303)
    else:
        assert lines[0].endswith(' 127.0.0.1:5000 "GET /login/[redacted] HTTP/1.1" 303 See Other')
        assert lines[2].endswith(' 127.0.0.1:5000 "GET /invoices HTTP/1.1" 200 OK')


def test_a_wrong_master_key_is_not_ready_and_sign_ins_answer_503(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(replace(world.settings, master_key=bytes(range(32))), migrate=False)
    try:
        app = build_app(world.settings, store, world.clock)
        with TestClient(app, base_url="https://acme.localhost", follow_redirects=False) as client:  # starts up
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert ready.json()["reasons"]["master_key"] == "the master key opens none of the stored SSO keys"
            signed_in = client.get(f"/login/{world.token()}")
            assert signed_in.status_code == 503
            assert "Temporarily unavailable" in signed_in.text
    finally:
        store.close()
    assert "the master key opens none of the" in caplog.text
    assert "unhandled" not in caplog.text
