"""Several app processes over private PostgreSQL and Redis servers that the tests may stop.

These tests run in the scale-out pass of ``make test`` (they are not collected
in the embedded pass). They start their own PostgreSQL cluster (initdb as the
``postgres`` user) and Redis server on free loopback ports, so stopping them
never disturbs the machine's shared services or other tests.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
import pytest

from billportal.core.config import Settings
from billportal.storage import open_store
from tests.browser.conftest import free_port
from tests.conftest import MASTER_KEY
from tests.server_process import App

if TYPE_CHECKING:
    from tests.scaleout.test_concurrency import Api

_PG_BINS = glob.glob("/usr/lib/postgresql/*/bin")
PG_BIN = Path(max(_PG_BINS)) if _PG_BINS else None
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _as_postgres(*command: str) -> list[str]:
    """Run a PostgreSQL tool as the postgres user (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class PrivatePostgres:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        assert PG_BIN is not None
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-t",
                "30",
                "-l",
                str(self.data / "log"),
                "-o",
                f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        assert PG_BIN is not None
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            check=False,
            capture_output=True,
            timeout=60,
        )

    def _processes(self) -> list[int]:
        """The postmaster and its children (this cluster's only)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: connections stay open, nothing answers."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run([REDIS_CLI, "-p", str(self.port), "ping"], capture_output=True, check=False).stdout
            != b"PONG\n"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def flush(self) -> None:
        """Forget every key (the next test's database is a new one)."""
        subprocess.run([REDIS_CLI, "-p", str(self.port), "flushall"], capture_output=True, check=True, timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    assert PG_BIN is not None, "PostgreSQL server binaries are missing"
    data = Path(tempfile.mkdtemp(prefix="bp-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PrivatePostgres(data, free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class Fleet:
    """Processes that share one PostgreSQL database and one Redis."""

    env: dict[str, str]
    sso_key: str
    apps: list[App]

    def token(self, customer_id: int = 1234, **claims: object) -> str:
        payload = {"sub": customer_id, "iss": "fleet test", "iat": int(time.time()), "exp": int(time.time()) + 600}
        payload.update(claims)
        return jwt.encode(payload, self.sso_key, algorithm="HS256")

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "billportal", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout


def start_fleet(
    tmp: Path, database_url: str, redis_url: str, count: int, *, extra: dict[str, str] | None = None, workers: int = 1
) -> Fleet:
    env = dict(os.environ)
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(tmp),
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
            "BILLPORTAL_DATABASE_URL": database_url,
            "BILLPORTAL_REDIS_URL": redis_url,
            "BILLPORTAL_ACCESS_LOG": "0",
        }
    )
    env.update(extra or {})
    # A fresh database needs a fresh Redis: copies cached for an earlier test's database
    # (its company ids) must not be read for this one (docs/deploy.md: one Redis per database).
    flushed = subprocess.run([REDIS_CLI, "-u", redis_url, "flushdb"], capture_output=True, check=False, timeout=30)
    assert flushed.returncode == 0, flushed.stderr
    seeded = subprocess.run(
        [sys.executable, "-m", "billportal", "demo", "--no-serve"],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr.decode(errors="replace")
    # The demo's SSO key, read back from the shared database as the server reads it.
    store = open_store(Settings.from_env(env), migrate=False)
    company = asyncio.run(store.company("acme"))
    store.close()
    assert company is not None
    sso_key = next(k.secret.decode() for k in company.sso_keys if k.state == "active")
    apps = [App(free_port(), env, tmp / f"app{i}.log", workers=workers) for i in range(count)]
    for app in apps:
        app.start()
    return Fleet(env, sso_key, apps)


@pytest.fixture(scope="module")
def api(fleet: Fleet) -> Iterator[Api]:
    """The REST API of the module's ``fleet`` (both processes), with a key of the default scopes."""
    from tests.scaleout.test_concurrency import Api  # a test module that imports this one: not at the top

    created = json.loads(fleet.cli("api-key", "create", "--tenant", "acme", "--name", "scale-out tests"))
    client = Api(fleet, created["key"])
    yield client
    client.close()
