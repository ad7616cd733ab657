"""The SDK as a user installs it: the built wheel, in a fresh venv without the server extra (issue 19.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

from tests.browser.conftest import LiveServer, live_server

__all__ = ["live_server"]  # the fixture, imported so that it is found here

ROOT = Path(__file__).resolve().parents[2]

# Run in the fresh venv: the SDK alone signs customer 1234 in on the live server.
JOURNEY = textwrap.dedent(
    """
    import importlib.util, sys
    import billportal, httpx
    assert importlib.util.find_spec("starlette") is None, "the server extra is installed"
    api_key, base = sys.argv[1], sys.argv[2]
    with billportal.Client(api_key, base) as client:
        link = client.customers.sign_in_link(1234, ttl=60, redirect_to="invoices")
    assert link["url"].startswith(base.replace("://", "://acme.") + "/login/"), link["url"]
    host = link["url"].split("/")[2]
    with httpx.Client(follow_redirects=False) as browser:
        answer = browser.get(link["url"].replace(host, "127.0.0.1:" + host.split(":")[1]), headers={"Host": host})
    assert answer.status_code == 303, answer.status_code
    assert answer.headers["location"] == "/invoices"
    print("signed in", billportal.__version__)
    """
)


def test_the_wheel_installs_alone_and_signs_a_customer_in(live_server: LiveServer, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("billportal-*-py3-none-any.whl"))
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The fresh venv sees only what pip installs there: nothing of this checkout (no PYTHONPATH).
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=600, env=clean)

    created = json.loads(live_server.cli("api-key", "create", "--tenant", "acme", "--name", "wheel"))
    ran = subprocess.run(
        [str(python), "-c", JOURNEY, created["key"], f"http://localhost:{live_server.port}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,  # not the checkout: the import must come from the installed wheel
        env=clean,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("signed in ")
