"""Secrets: SSO keys sealed at rest, master key rotation with no key lost, imported keys checked.

These tests use their own SQLite data folder (and the real ``billportal`` CLI,
in-process), whatever database the rest of the run uses: a dump here is the
database file's bytes, with its write-ahead log. That no secret reaches a log
is tested on a real server's log, in test_real_server.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.cli import main
from billportal.core.config import Settings
from billportal.core.crypto import Sealed, SealError, master_key_id
from billportal.services.audit import CLI
from billportal.services.gateways import GATEWAY_SEAL_PURPOSE
from billportal.services.payments import Payments
from billportal.services.webhooks import SECRET_PURPOSE as WEBHOOK_SECRET_PURPOSE
from billportal.services.webhooks import Webhooks
from billportal.storage import open_store
from billportal.storage import schema as t
from billportal.storage.store import Store
from tests.conftest import MASTER_KEY, Clock, run
from tests.functional.test_signin import COOKIE
from tests.security.conftest import HS256, signed

OLD_MASTER = MASTER_KEY
NEW_MASTER = bytes(range(32))
SSO_KEY = "rotation-test-sso-key-0123456789abcdefghij"
SECOND_KEY = "second-company-sso-key-abcdefghij012345678"


def encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment for ``billportal`` commands over a data folder of their own."""
    for name in list(os.environ):
        if name.startswith("BILLPORTAL_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("BILLPORTAL_DATA_DIR", str(data))
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", encoded(OLD_MASTER))
    return data


def billportal(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def use_master(monkeypatch: pytest.MonkeyPatch, current: bytes, *previous: bytes) -> None:
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", encoded(current))
    if previous:
        monkeypatch.setenv("BILLPORTAL_PREVIOUS_MASTER_KEYS", ",".join(encoded(key) for key in previous))
    else:
        monkeypatch.delenv("BILLPORTAL_PREVIOUS_MASTER_KEYS", raising=False)


def open_with(data: Path, *master_keys: bytes) -> Store:
    return open_store(Settings(data_dir=data, master_key=master_keys[0], previous_master_keys=master_keys[1:]))


def sign_in_status(data: Path, *master_keys: bytes, key: str = SSO_KEY, tenant: str = "acme") -> int:
    """Sign customer 1234 in over HTTP, on a server that has only ``master_keys``."""
    store = open_with(data, *master_keys)
    try:
        clock = Clock()
        app = build_app(Settings(data_dir=data, master_key=master_keys[0]), store, clock)
        client = TestClient(app, base_url=f"https://{tenant}.localhost", follow_redirects=False)
        token = signed(HS256, {"sub": 1234, "exp": clock.now + 600}, key)
        status: int = client.get(f"/login/{token}").status_code
        return status
    finally:
        store.close()


def sealed_by(data: Path) -> list[str]:
    store = open_with(data, NEW_MASTER, OLD_MASTER)
    try:
        rows = run(store.read(lambda conn: conn.execute(select(t.sso_keys.c.master_key_id)).scalars().all()))
        return list(rows)
    finally:
        store.close()


@pytest.fixture
def two_companies(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    for tenant, key in (("acme", SSO_KEY), ("globex", SECOND_KEY)):
        assert billportal(capsys, "tenant", "create", tenant, "--name", tenant.title(), "--import-sso-key", key)[0] == 0
        assert billportal(capsys, "customer", "create", "--tenant", tenant, "--name", "Wile", "--id", "1234")[0] == 0
    # A rotated-out key too: retiring keys must survive the re-encryption as well.
    assert billportal(capsys, "sso-key", "rotate", "--tenant", "globex", "--grace", "7d")[0] == 0
    return cli_env


# -- master key rotation ---------------------------------------------------------------------------------


def test_master_key_rotation_loses_no_key(
    two_companies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = two_companies
    assert sign_in_status(data, OLD_MASTER) == 303

    use_master(monkeypatch, NEW_MASTER, OLD_MASTER)
    status, out, err = billportal(capsys, "master-key", "reencrypt")
    assert (status, err) == (0, "")
    result = json.loads(out)
    assert result == {
        "resealed": 3,
        "already_current": 0,
        "master_key_id": master_key_id(NEW_MASTER),
        "gateway_secrets_resealed": 0,
        "webhook_secrets_resealed": 0,
    }
    assert set(sealed_by(data)) == {master_key_id(NEW_MASTER)}

    # The old master key is no longer needed, and no longer enough.
    assert sign_in_status(data, NEW_MASTER) == 303
    assert sign_in_status(data, NEW_MASTER, key=SECOND_KEY, tenant="globex") == 303  # the retiring key still works
    store = open_with(data, OLD_MASTER)
    with pytest.raises(SealError):
        run(store.company("acme"))
    store.close()

    # Running it again changes nothing.
    use_master(monkeypatch, NEW_MASTER)
    status, out, _ = billportal(capsys, "master-key", "reencrypt")
    assert status == 0
    assert json.loads(out)["resealed"] == 0
    assert json.loads(out)["already_current"] == 3


def test_reencrypt_without_the_old_master_key_changes_nothing(
    two_companies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = two_companies
    before = sealed_by(data)
    use_master(monkeypatch, NEW_MASTER)  # BILLPORTAL_PREVIOUS_MASTER_KEYS forgotten
    status, out, err = billportal(capsys, "master-key", "reencrypt")
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("billportal: error:")
    assert "BILLPORTAL_PREVIOUS_MASTER_KEYS" in err
    assert "no key was changed" in err
    for secret in (SSO_KEY, SECOND_KEY, encoded(OLD_MASTER), encoded(NEW_MASTER)):
        assert secret not in err
    assert sealed_by(data) == before
    assert sign_in_status(data, OLD_MASTER) == 303


def test_a_sealed_key_moved_to_another_company_does_not_open(two_companies: Path) -> None:
    # The company id is the associated data: copying acme's sealed key onto globex's row gives nothing.
    store = open_with(two_companies, OLD_MASTER)
    try:
        acme = run(store.company("acme"))
        assert acme is not None

        def swap(conn: Any) -> None:
            c = t.sso_keys.c
            sealed = conn.execute(select(c.secret_encrypted).where(c.company_id == acme.id)).scalar_one()
            conn.execute(t.sso_keys.update().where(c.company_id != acme.id).values(secret_encrypted=sealed))

        run(store.backend.write(swap))
        store.forget_company("globex")
        globex = run(store.company("globex"))
        assert globex is not None
        with pytest.raises(SealError, match="integrity"):
            _ = globex.sso_keys[0].secret  # opened by the first sign-in that needs it, and it does not open
    finally:
        store.close()


# -- a dump reveals no key ----------------------------------------------------------------------------------


def spellings(secret: str) -> Iterator[bytes]:
    raw = secret.encode()
    yield raw
    yield secret.encode("utf-16-le")
    yield raw.hex().encode()
    yield base64.b64encode(raw).rstrip(b"=")
    yield base64.urlsafe_b64encode(raw).rstrip(b"=")


def test_a_database_dump_holds_no_sso_key_session_id_or_master_key(two_companies: Path) -> None:
    data = two_companies
    # Use the keys, so that every write a sign-in makes is in the files too.
    store = open_with(data, OLD_MASTER)
    clock = Clock()
    client = TestClient(
        build_app(Settings(data_dir=data, master_key=OLD_MASTER), store, clock),
        base_url="https://acme.localhost",
        follow_redirects=False,
    )
    token = signed(HS256, {"sub": 1234, "exp": clock.now + 600, "jti": "dump-test"}, SSO_KEY)
    response = client.get(f"/login/{token}")
    assert response.status_code == 303
    session_id = response.cookies[COOKIE]
    client.get(f"/login/{signed(HS256, {'sub': 1234, 'exp': clock.now + 600}, 'wrong key')}")
    store.close()

    files = sorted(path for path in data.iterdir() if path.name.startswith("billportal.sqlite3"))
    assert files
    dump = b"".join(path.read_bytes() for path in files)
    assert b"dump-test" in dump  # the control: what was written is in the dump
    secrets = [SSO_KEY, SECOND_KEY, session_id, encoded(OLD_MASTER).rstrip("="), token.split(".")[2]]
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in dump, secret[:6]
    assert OLD_MASTER not in dump


# -- imported keys --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", " ", " padded-key-0123456789abcdefghijklmnop ", "weakkey7"])
def test_an_empty_padded_or_weak_imported_key_is_refused(
    cli_env: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    status, out, err = billportal(capsys, "tenant", "create", "weakco", "--name", "Weak", "--import-sso-key", key)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    if key.strip():
        assert key.strip() not in err


def test_a_weak_key_imported_on_purpose_is_warned_about_and_marked(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = billportal(
        capsys, "tenant", "create", "weakco", "--name", "Weak", "--import-sso-key", "secret", "--allow-weak-key"
    )
    assert status == 0
    assert "warning" in err
    assert "secret" not in err.replace("SSO key", "")
    assert json.loads(out)["sso_key"]["weak"] is True


# -- files and command lines (issue 12.12) ----------------------------------------------------------------------


def test_the_sqlite_database_and_its_logs_are_readable_by_their_owner_only(cli_env: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which makes a new file 0644
    try:
        for _ in range(2):
            store = open_with(cli_env, OLD_MASTER)  # open: the -wal and -shm files exist
            try:
                run(store.company("acme"))
                # (billportal.sqlite3.lock and .writer, the empty files a restore and the writers lock on,
                # hold no data)
                files = {
                    f.name: f.stat().st_mode & 0o777
                    for f in cli_env.glob("billportal.sqlite3*")
                    if not f.name.endswith((".lock", ".writer"))
                }
            finally:
                store.close()
            assert set(files) == {"billportal.sqlite3", "billportal.sqlite3-wal", "billportal.sqlite3-shm"}
            assert set(files.values()) == {0o600}, files
            # A database made by an earlier release (0644) is tightened when it is next opened.
            for file in cli_env.glob("billportal.sqlite3*"):
                file.chmod(0o644)
    finally:
        os.umask(old_umask)


def test_secrets_can_come_from_stdin_or_the_environment_instead_of_the_command_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SSO_KEY + "\n"))
    assert billportal(capsys, "tenant", "create", "acme", "--name", "Acme", "--import-sso-key", "-")[0] == 0
    monkeypatch.setenv("GLOBEX_KEY", SECOND_KEY)
    assert (
        billportal(capsys, "tenant", "create", "globex", "--name", "Globex", "--import-sso-key", "env:GLOBEX_KEY")[0]
        == 0
    )
    for tenant in ("acme", "globex"):
        assert billportal(capsys, "customer", "create", "--tenant", tenant, "--name", "Wile", "--id", "1234")[0] == 0
    assert sign_in_status(cli_env, OLD_MASTER) == 303  # the key read from stdin is the one in force
    assert sign_in_status(cli_env, OLD_MASTER, key=SECOND_KEY, tenant="globex") == 303

    def token_of(url: str) -> str:
        return url.strip().split("/login/", 1)[1].split("?", 1)[0]

    monkeypatch.setattr("sys.stdin", io.StringIO(SECOND_KEY + "\n"))
    status, out, _ = billportal(capsys, "sso-url", "--tenant", "globex", "--customer", "1234", "--key", "-")
    assert status == 0
    from_stdin = token_of(out)
    status, out, _ = billportal(
        capsys, "sso-url", "--tenant", "globex", "--customer", "1234", "--key", "env:GLOBEX_KEY"
    )
    assert status == 0
    from_env = token_of(out)
    for token in (from_stdin, from_env):
        monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
        status, out, _ = billportal(capsys, "sso-explain", "--tenant", "globex", "-")  # a token is a secret too
        assert status == 0
        assert "would sign in" in out.lower(), out
    # Nothing to read is one line on stderr, never the empty key.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    status, out, err = billportal(capsys, "tenant", "create", "initech", "--name", "Initech", "--import-sso-key", "-")
    assert (status, out, err.count("\n")) == (2, "", 1)
    status, out, err = billportal(capsys, "sso-url", "--tenant", "acme", "--customer", "1234", "--key", "env:UNSET_X")
    assert (status, out, err.count("\n")) == (2, "", 1)


@pytest.mark.parametrize(("command", "option"), [("tenant create", "--import-sso-key"), ("sso-url", "--key")])
def test_help_says_how_to_keep_secrets_out_of_the_process_list(
    capsys: pytest.CaptureFixture[str], command: str, option: str
) -> None:
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert option in text
    assert "'-' reads it from stdin" in text
    assert "'env:NAME'" in text
    assert "process list (ps)" in text


def test_master_key_rotation_reseals_payment_gateway_secrets(
    two_companies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = two_companies
    store = open_with(data, OLD_MASTER)
    company = run(store.company("acme"))
    assert company is not None
    online = {"gateway": "stripe", "publishable_key": "pk_test_1"}
    run(Payments(store).configure(company, online, CLI, now=1, secret_key="sk_test_A", webhook_secret="whsec_B"))
    store.close()

    use_master(monkeypatch, NEW_MASTER, OLD_MASTER)
    status, out, err = billportal(capsys, "master-key", "reencrypt")
    assert (status, err) == (0, "")
    assert json.loads(out)["gateway_secrets_resealed"] == 2
    store = open_with(data, NEW_MASTER)  # the old master key is no longer needed
    try:
        settings = run(Payments(store).settings(company.id))
        opened = [
            store.master_keys.unseal(Sealed.from_text(text), GATEWAY_SEAL_PURPOSE, company.id)
            for text in (settings.secret_key_sealed, settings.webhook_secret_sealed)
        ]
    finally:
        store.close()
    assert opened == [b"sk_test_A", b"whsec_B"]


def test_master_key_rotation_reseals_webhook_signing_secrets(
    two_companies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = two_companies
    store = open_with(data, OLD_MASTER)
    company = run(store.company("acme"))
    assert company is not None
    hooks = Webhooks(store)
    added = run(hooks.add(company.id, "https://hooks.example/in", ["invoice.paid"], actor=CLI, now=1))
    rotated = run(hooks.rotate(company.id, added.endpoint.id, overlap=3600, actor=CLI, now=2))
    store.close()

    use_master(monkeypatch, NEW_MASTER, OLD_MASTER)
    status, out, err = billportal(capsys, "master-key", "reencrypt")
    assert (status, err) == (0, "")
    assert json.loads(out)["webhook_secrets_resealed"] == 2  # the secret and the previous one, in its overlap
    store = open_with(data, NEW_MASTER)  # the old master key is no longer needed
    try:
        endpoint = run(Webhooks(store).endpoint(company.id, added.endpoint.id))
        opened = [
            store.master_keys.unseal(Sealed.from_text(text), WEBHOOK_SECRET_PURPOSE, company.id)
            for text in (endpoint.secret_sealed, endpoint.previous_secret_sealed)
        ]
    finally:
        store.close()
    assert opened == [rotated.secret.encode(), added.secret.encode()]
