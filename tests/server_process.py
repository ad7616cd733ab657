"""One ``billportal serve`` process, for tests that need a real server: real sockets, signals, restarts."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt

from billportal.core.config import Settings
from billportal.storage import open_store
from tests.browser.conftest import free_port
from tests.conftest import MASTER_KEY


@dataclass
class App:
    """One ``billportal serve`` process."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1
    preexec_fn: Callable[[], None] | None = None  # e.g. to lower a resource limit
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15, follow_redirects=False))

    def start(self) -> None:
        # This machine runs the suite, databases and browsers on 2 cores: answers here run late for reasons
        # that are not the server's queue, so only the tests of shedding (test_connections.py) use its bound.
        env = {"BILLPORTAL_SHED_LATENCY_MS": "2000", **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "billportal", "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec_fn,  # noqa: PLW1509 - tests only, no threads started yet
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("billportal serve did not start:\n" + self.log.read_text(errors="replace"))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    def get(
        self, path: str, *, cookie: str | None = None, host: str = "acme", client_ip: str | None = None
    ) -> httpx.Response:
        headers = {"host": f"{host}.localhost:{self.port}"}
        if client_ip:
            headers["x-forwarded-for"] = client_ip  # believed: the fleet trusts 127.0.0.1 as its proxy
        if cookie:
            headers["cookie"] = f"__Host-bp_session={cookie}"
        return self.client.get(f"http://127.0.0.1:{self.port}{path}", headers=headers)


class Embedded:
    """A data directory seeded with the demo company, and the commands to run on it."""

    def __init__(self, data: Path, **settings: str) -> None:
        self.data = data
        self.database = data / "billportal.sqlite3"
        self.env = dict(os.environ)
        for name in ("BILLPORTAL_DATABASE_URL", "BILLPORTAL_REDIS_URL"):
            self.env.pop(name, None)
        self.env.update(
            {
                "BILLPORTAL_DATA_DIR": str(data),
                "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
                "BILLPORTAL_ACCESS_LOG": "0",
                **settings,
            }
        )
        assert self.cli("demo", "--no-serve").returncode == 0
        store = open_store(Settings.from_env(self.env), migrate=False)
        company = asyncio.run(store.company("acme"))
        store.close()
        assert company is not None
        self.sso_key = next(k.secret.decode() for k in company.sso_keys if k.state == "active")
        self.app = App(free_port(), self.env, data / "app.log")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "billportal", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def sign_in(self) -> str:
        now = int(time.time())
        token = jwt.encode({"sub": 1234, "iat": now, "exp": now + 300}, self.sso_key, algorithm="HS256")
        answer = self.app.get(f"/login/{token}")
        assert answer.status_code == 303
        return str(answer.cookies["__Host-bp_session"])

    def signed_in(self, cookie: str) -> bool:
        return self.app.get("/", cookie=cookie).status_code == 200
