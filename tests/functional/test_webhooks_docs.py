"""The receiver snippets of docs/webhooks.md (Python, Node, Ruby) verify a real delivery and refuse a forged one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from billportal.services.audit import CLI
from billportal.services.webhooks import Deliverer, Webhooks
from tests import factories
from tests.conftest import World, run
from tests.webhook_receiver import Received, receiving

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"
NODE_HARNESS = """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(receive(input.secret, input.headers, input.body)));
"""
RUBY_HARNESS = """
input = JSON.parse($stdin.read)
puts JSON.generate(receive(input["secret"], input["headers"], input["body"]))
"""
HARNESS = {"js": ("node", NODE_HARNESS), "ruby": ("ruby", RUBY_HARNESS)}


def snippet(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(found) == 1, language
    return str(found[0])


@pytest.fixture
def delivery(world: World) -> tuple[str, Received]:
    """A real delivery during a rotation's overlap (two signatures), and the new secret."""
    with receiving() as receiver:
        shown = run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url=receiver.url))
        rotated = run(Webhooks(world.store).rotate(world.acme.id, shown.endpoint.id, actor=CLI, now=world.clock.now))
        run(factories.customer(world.store, world.acme.id, id=95, name="Docs", now=world.clock.now))
        run(Deliverer(world.store, test_mode=True).run_until_idle(world.clock.now))
        (got,) = receiver.received
    return rotated.secret, got


def test_the_python_snippet(delivery: tuple[str, Received]) -> None:
    secret, got = delivery
    scope: dict[str, object] = {}
    exec(snippet("python"), scope)  # noqa: S102 - the documentation's own code
    receive = scope["receive"]
    assert callable(receive)
    assert receive(secret, got.headers, got.raw.encode())["type"] == "customer.created"
    with pytest.raises(WebhookVerificationError):
        receive(secret, got.headers, got.raw.replace("Docs", "Evil").encode())


@pytest.mark.parametrize("language", ["js", "ruby"])
def test_the_node_and_ruby_snippets(delivery: tuple[str, Received], language: str) -> None:
    command, harness = HARNESS[language]
    assert shutil.which(command), f"{command} is needed to run the documentation's {language} snippet"
    secret, got = delivery
    program = snippet(language) + harness

    def verify(body: str) -> subprocess.CompletedProcess[str]:
        stdin = json.dumps({"secret": secret, "headers": got.headers, "body": body})
        flag = "-e"
        return subprocess.run(
            [command, flag, program], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    good = verify(got.raw)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["data"]["object"]["name"] == "Docs"
    forged = verify(got.raw.replace("Docs", "Evil"))
    assert forged.returncode != 0
    assert "no valid signature" in forged.stderr
