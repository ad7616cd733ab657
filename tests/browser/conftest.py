"""A real server process and Debian's chromium, driven by Playwright.

``live_server`` runs ``billportal serve`` on a free port over a fresh data
folder seeded by ``billportal demo --no-serve``; ``*.localhost`` resolves to
the loopback address in chromium, so ``http://acme.localhost:{port}`` reaches it.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.conftest import (
    MASTER_KEY,
    SCALE_OUT_DATABASE,
    SCALE_OUT_REDIS,
    drop_postgres_database,
    empty_redis,
    new_postgres_database,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A running ``billportal serve`` and the environment its CLI shares."""

    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]

    def url(self, host: str = "acme", path: str = "/") -> str:
        return f"http://{host}.localhost:{self.port}{path}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run ``billportal ARGS`` against this server's database; return its stdout."""
        result = subprocess.run(
            [sys.executable, "-m", "billportal", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip()

    def log(self) -> str:
        """The server's log, with the access lines of every request answered before this call: a request
        marked for the purpose is sent, and the log read once its line is in (lines are written in order,
        in batches, by a thread of the server's own)."""
        mark = f"log-mark-{time.monotonic_ns()}"
        url = f"http://127.0.0.1:{self.port}/signed-out?{mark}"
        httpx.get(url, headers={"Host": f"acme.localhost:{self.port}"}, timeout=10)
        deadline = time.monotonic() + 10
        while True:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if mark in text or time.monotonic() > deadline:
                return text
            time.sleep(0.01)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("live")
    port = free_port()
    env = dict(os.environ)
    if SCALE_OUT_DATABASE:
        # The scale-out pass: this server gets its own PostgreSQL database and Redis db.
        database = new_postgres_database(SCALE_OUT_DATABASE)
        env["BILLPORTAL_DATABASE_URL"] = database
        env["BILLPORTAL_REDIS_URL"] = SCALE_OUT_REDIS.rsplit("/", 1)[0] + "/14"
        # One Redis serves one deployment: what another module's server left there
        # (its company settings, its marks) belongs to another database.
        empty_redis(env["BILLPORTAL_REDIS_URL"])
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(data),
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
            "BILLPORTAL_BASE_DOMAIN": "localhost",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "billportal", "demo", "--no-serve", "--port", str(port)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log_path = data / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "billportal", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(port, env, log_path, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            # Python's resolver may not know *.localhost: ask the loopback address directly.
            httpx.get(f"http://127.0.0.1:{port}/signed-out", headers={"host": f"acme.localhost:{port}"}, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("billportal serve did not start:\n" + server.log()) from None
            time.sleep(0.1)
    yield server
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    if SCALE_OUT_DATABASE:
        drop_postgres_database(SCALE_OUT_DATABASE, env["BILLPORTAL_DATABASE_URL"])


# Module scope, not session: Playwright's sync API keeps an event loop running in
# this thread while it is open, and the other suites' asyncio.run() calls would
# fail after the browser tests if it stayed open.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def sign_in_to_dashboard(page: Page, server: LiveServer, email: str, password: str) -> None:
    """Sign an admin in on the dashboard's sign-in page (the first page after it is the home page's checklist)."""
    page.goto(server.url("dashboard", "/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Setting up")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot to docs/screenshots/{name}.png (shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
