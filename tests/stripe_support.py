"""localstripe (a fake Stripe server, run as a separate process) and Stripe's webhook signing, for the tests.

localstripe is GPL-3.0: `make localstripe-deps` installs it into its own venv
(.venv-localstripe), and the tests only run it, as `localstripe --port P`; nothing
imports it. The ``localstripe`` fixture (tests/conftest.py) starts one per module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import stripe

from tests.browser.conftest import free_port

LOCALSTRIPE: Final = Path(__file__).resolve().parents[1] / ".venv-localstripe" / "bin" / "localstripe"
WEBHOOK_SECRET: Final = "whsec_test_billportal"
SECRET_KEY: Final = "sk_test_billportal"
PUBLISHABLE_KEY: Final = "pk_test_billportal"


@contextmanager
def running_localstripe() -> Iterator[str]:
    """A localstripe process on a free port; its base URL (it serves its fake stripe.js at /js.stripe.com/v3/)."""
    assert LOCALSTRIPE.exists(), "localstripe is missing: run `make localstripe-deps`"
    port = free_port()
    process = subprocess.Popen(
        # --from-scratch: not the state another run left in /tmp/localstripe.pickle (perhaps half written).
        [str(LOCALSTRIPE), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/js.stripe.com/v3/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    """A webhook as Stripe sends it: the JSON body and its Stripe-Signature header (HMAC-SHA256 of "t.body")."""
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={stamp},v1={mac}"


def payment_intent_event(event_id: str, kind: str, intent: str, attempt: str) -> dict[str, Any]:
    """A ``payment_intent.*`` event about ``intent``, made for the pay form's attempt ``attempt``."""
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": intent, "object": "payment_intent", "metadata": {"billportal_attempt": attempt}}},
    }


def localstripe_api(localstripe: str) -> Any:
    """The official ``stripe`` package's client, on localstripe (which takes only secret keys)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe}).v1


def card_payment_method(localstripe: str, number: str) -> str:
    """What Stripe's script does in the browser: the card becomes a PaymentMethod id."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        card: Any = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        return str(localstripe_api(localstripe).payment_methods.create(params={"type": "card", "card": card}).id)
