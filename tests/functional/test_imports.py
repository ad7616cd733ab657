"""A process loads only what it runs: an embedded (SQLite) worker imports no other backend's driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt

# What a SQLite worker never needs: PostgreSQL's driver, SQLAlchemy's PostgreSQL dialect, async bridge and ORM,
# Alembic (when its database is up to date), Redis, Stripe's package until a Stripe call, Pillow until a logo
# comes, and httpx until the webhook deliverer (running in every serving process) has an event to send; PyJWT
# (the verifier checks HS256 with the standard library) and cryptography until the first seal or unseal. And
# no site until a request comes to it: a worker whose hosts never ask for the dashboard never loads it.
NOT_FOR_SQLITE = (
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "alembic",
    "redis",
    "stripe._stripe_client",
    "PIL.Image",
    "httpx",
    "jwt",
    "cryptography",
    "billportal.portal",
    "billportal.dashboard",
    "billportal.api",
)

PROBE = """
import json, sys
from billportal.app import create_app
create_app()
print(json.dumps(sorted(sys.modules)))
"""


def test_an_embedded_worker_imports_no_driver_it_does_not_use(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "BILLPORTAL_DATA_DIR": str(tmp_path),
        "BILLPORTAL_PUBLIC_URL": "http://localhost:8000",
    }
    # The first start migrates the new database (with Alembic); a worker then starts on an up-to-date one.
    starts = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", PROBE], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        starts.append(done.stdout.strip().splitlines()[-1])
    first_start = starts[0]
    loaded = set(json.loads(starts[1]))
    assert "billportal.storage.sqlite" in loaded  # the probe did build a SQLite worker
    unwanted = sorted(name for name in loaded if any(name == m or name.startswith(m + ".") for m in NOT_FOR_SQLITE))
    assert unwanted == []
    assert "alembic" in set(json.loads(first_start))  # and the first start did migrate


# A worker built as uvicorn builds it, and one GET answered by it (its status).
WORKER = """
import asyncio, sys
from billportal.app import create_app

app = create_app()


async def get(host, path="/signed-out"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", host)], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent[0]["status"]
"""

SITE_PROBE = (
    WORKER
    + """

def sites():
    return [s for s in ("portal", "dashboard", "api") if f"billportal.{s}" in sys.modules]


print(sites(), asyncio.run(get(b"acme.localhost")), sites(), asyncio.run(get(b"dashboard.localhost")), sites())
"""
)


def test_a_worker_loads_each_site_on_its_first_request(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "BILLPORTAL_DATA_DIR": str(tmp_path),
        "BILLPORTAL_BASE_DOMAIN": "localhost",
    }
    done = subprocess.run(
        [sys.executable, "-c", SITE_PROBE], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # No company "acme" in this new database: its portal answers 404; the dashboard's /signed-out is not one
    # of its pages either. Each site's modules came with the first request to it, and not before.
    assert done.stdout.strip().splitlines()[-1] == "[] 404 ['portal'] 404 ['portal', 'dashboard', 'api']"


def test_the_sdk_loads_its_http_client_on_first_use() -> None:
    probe = "import sys, billportal; a = 'httpx' in sys.modules; billportal.Client; print(a, 'httpx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_the_newest_migration_file_is_alembics_head() -> None:
    # An embedded worker skips Alembic when its database is at the newest file's revision.
    from alembic.script import ScriptDirectory

    from billportal.storage.migrate import alembic_config
    from billportal.storage.sqlite import newest_revision

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [newest_revision()]


def test_the_command_table_is_what_the_command_modules_register() -> None:
    import argparse
    import pkgutil

    import billportal.cli
    from billportal.cli import ALIASES, COMMANDS

    registered: dict[str, tuple[str, str]] = {}
    aliases: dict[str, str] = {}
    for info in pkgutil.iter_modules(billportal.cli.__path__):
        if info.name.startswith("_"):
            continue
        commands = argparse.ArgumentParser().add_subparsers()
        __import__(f"billportal.cli.{info.name}", fromlist=["register"]).register(commands)
        for action in commands._choices_actions:
            registered[action.dest] = (info.name, str(action.help))
        for name, sub in commands.choices.items():
            if name not in registered:
                aliases[name] = next(n for n, p in commands.choices.items() if p is sub and n in registered)
    assert registered == COMMANDS
    assert aliases == ALIASES


def test_help_loads_no_command_and_a_command_loads_only_its_own() -> None:
    probe = (
        "import sys\n"
        "PREFIXES = ('billportal.cli.', 'billportal.storage', 'billportal.services', 'sqlalchemy', 'jwt')\n"
        "from billportal.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', *sorted(m for m in sys.modules if m.startswith(PREFIXES)))\n"
    )

    def loaded(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip().splitlines()[-1].split()[1:]

    assert loaded("--help") == []  # no command module, no storage, no SQLAlchemy
    assert loaded("sso-url", "--help") != []  # (the probe does see what a command loads)
    assert [m for m in loaded("payments", "--help") if m.startswith("billportal.cli.")] == [
        "billportal.cli._common",
        "billportal.cli.payments",
    ]
    assert "billportal.cli.master_keys" in loaded("keys", "--help")  # an alias loads its command's module


def test_a_lazy_module_is_whole_for_threads_that_first_use_it_at_once() -> None:
    # Stripe's package is first used by several requests' threads at the same moment.
    probe = (
        "import threading\n"
        "from billportal.core.lazy import lazy_import\n"
        "stripe = lazy_import('stripe')\n"
        "barrier = threading.Barrier(8)\n"
        "found = []\n"
        "def use():\n"
        "    barrier.wait()\n"
        "    found.append((stripe.StripeClient, stripe.IdempotencyError, stripe.CardError))\n"
        "threads = [threading.Thread(target=use) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(found), len(set(found)))\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
        assert done.stdout.split() == ["8", "1"], done.stderr[-2000:]


SIGN_IN_PROBE = (
    WORKER
    + """
import json

HEAVY = ("cryptography", "limits", "pycountry", "watchfiles", "websockets")


def loaded():
    return [m for m in HEAVY if m in sys.modules]


async def main():
    started = asyncio.Event()
    stop = asyncio.Event()

    async def receive():
        if not started.is_set():
            started.set()
            return {"type": "lifespan.startup"}
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message):
        pass

    lifespan = asyncio.create_task(app({"type": "lifespan"}, receive, send))
    await asyncio.sleep(0.2)  # started up: the master-key check has run
    import gc
    steps = [("idle", gc.get_freeze_count() > 10_000, loaded())]  # start-up's objects are out of the collector
    for name, path in (("page", "/signed-out"), ("sign-in", sys.argv[1]), ("failure", sys.argv[2])):
        steps.append((name, await get(b"acme.localhost", path), loaded()))
    stop.set()
    await lifespan
    print(json.dumps(steps))


asyncio.run(main())
"""
)


def test_keys_are_opened_and_failures_counted_only_when_a_sign_in_needs_them(tmp_path: Path) -> None:
    # An idle worker, and one that has served pages, holds no AES (cryptography), no rate-limit library and no ISO
    # tables; the master key is checked at start-up by the ids that sealed values carry. The first sign-in opens
    # the key (and loads AES); the first failure loads the counters.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "BILLPORTAL_DATA_DIR": str(tmp_path),
        "BILLPORTAL_BASE_DOMAIN": "localhost",
    }
    cli = [sys.executable, "-m", "billportal"]
    made = subprocess.run(
        [*cli, "tenant", "create", "acme", "--name", "Acme"], env=env, capture_output=True, text=True, check=True
    )
    key = json.loads(made.stdout)["sso_key"]["key"]
    subprocess.run([*cli, "customer", "create", "--tenant", "acme", "--name", "Bob", "--id", "7"], env=env, check=True)
    now = int(time.time())
    good = jwt.encode({"sub": "7", "iat": now, "exp": now + 60, "jti": "probe-1"}, key, algorithm="HS256")
    wrong_key = "not-the-key-of-acme-but-32-bytes!"
    bad = jwt.encode({"sub": "7", "iat": now, "exp": now + 60, "jti": "probe-2"}, wrong_key, algorithm="HS256")
    done = subprocess.run(
        [sys.executable, "-c", SIGN_IN_PROBE, f"/login/{good}", f"/login/{bad}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    assert steps == [
        ["idle", True, []],
        ["page", 200, []],
        ["sign-in", 303, ["cryptography"]],
        ["failure", 401, ["cryptography", "limits"]],
    ]
