"""Webhooks out: a company's endpoints, and the deliverer that sends its events to them.

Events go into the outbox in the transaction of the change (``Books.emit``, and
:meth:`Webhooks.sign_in_failed`). :class:`Deliverer` sends them, signed per the
Standard Webhooks spec with the ``standardwebhooks`` package (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; during a rotation's overlap with both
secrets), never following a redirect, and outside test mode only to public addresses
(checked after DNS resolution, and the connection pinned to the address checked). A
failure is retried with exponential backoff and jitter for about three days; an
endpoint failing all that time is disabled. The state is in the database: a restart,
or ``kill -9``, loses nothing, and several processes share the work.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection

from billportal.core.crypto import MasterKeys, Sealed, SealError
from billportal.core.errors import NotFound, Refused, StorageUnavailable
from billportal.core.lazy import lazy_import
from billportal.services import audit, mail
from billportal.services.audit import Actor
from billportal.services.events import EVENT_TYPES, body
from billportal.storage import webhooks as outbox
from billportal.storage.records import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billportal.storage.store import Store

if TYPE_CHECKING:
    import httpx
    from standardwebhooks import webhooks as standard
else:  # loaded by the first event sent or secret checked, not by every worker
    httpx = lazy_import("httpx")
    standard = lazy_import("standardwebhooks.webhooks")

log = logging.getLogger("billportal.webhooks")

SECRET_PURPOSE: Final = "webhook-secret"  # noqa: S105 - what a sealed signing secret is bound to (with its company)
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the spec's prefix
DEFAULT_OVERLAP: Final = 24 * 3600  # after a rotation, the previous secret also signs this long
MAX_OVERLAP: Final = 7 * 24 * 3600
MAX_URL_LENGTH: Final = 2000
MAX_ENDPOINTS: Final = 20
TIMEOUT_SECONDS: Final = 10.0
LEASE_SECONDS: Final = 60  # a claimed delivery is this process's for this long (more than a send takes)
RETRY_WINDOW: Final = 3 * 24 * 3600  # retried for about three days
FIRST_RETRY: Final = 30
LONGEST_WAIT: Final = 6 * 3600
BATCH: Final = 20
USER_AGENT: Final = "billportal-webhooks/1"
_LOOPBACK_NAMES: Final = ("localhost", "127.0.0.1", "::1", "[::1]")


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> int:
    """Seconds before the next try after ``attempts`` failed ones: doubling from 30 s up to 6 h, give or take 25%."""
    wait = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
    return max(1, int(wait * (0.75 + rng() / 2)))


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, test_mode: bool) -> str:
    """The endpoint's URL if it may be used: https (http only to loopback, in test mode); Refused otherwise."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise Refused("invalid_url", f"url must be an https URL of at most {MAX_URL_LENGTH} characters", "url")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise Refused("invalid_url", "url is not a valid URL", "url") from None
    if parts.username is not None or parts.password is not None:
        raise Refused("invalid_url", "url cannot hold a user name or password", "url")
    if not host:
        raise Refused("invalid_url", "url must name a host", "url")
    if parts.fragment:
        raise Refused("invalid_url", "url cannot have a #fragment", "url")
    loopback = is_loopback_host(host)
    if parts.scheme == "http" and loopback and test_mode:
        return url
    if parts.scheme != "https":
        raise Refused("invalid_url", "url must start with https:// (http only to loopback, in test mode)", "url")
    if not test_mode and not public_host_literal(host):
        raise Refused("private_address", "url must reach a public address, not a private or loopback one", "url")
    return url


def public_host_literal(host: str) -> bool:
    """False for a host that is a non-public IP address, or localhost; True for names (checked when sending)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True


def check_types(types: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(types))
    unknown = [name for name in wanted if name not in EVENT_TYPES]
    if not wanted or unknown:
        raise Refused(
            "invalid_event_types",
            f"event_types must name at least one of: {', '.join(EVENT_TYPES)}"
            + (f" (unknown: {', '.join(unknown)[:200]})" if unknown else ""),
            "event_types",
        )
    return wanted


@dataclass(frozen=True, slots=True)
class ShownSecret:
    """An endpoint and its new signing secret: the only time the secret is seen."""

    endpoint: WebhookEndpoint
    secret: str


def endpoint_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API and the CLI show it: never a secret."""
    return {
        "object": "webhook_endpoint",
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_until": endpoint.previous_until,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def delivery_fields(delivery: WebhookDelivery, tries: Sequence[WebhookAttempt]) -> dict[str, Any]:
    """A delivery with its attempts, as the API and the CLI show it."""
    return {
        "object": "webhook_delivery",
        "id": delivery.id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "state": delivery.state,
        "attempts": [
            {
                "at": a.at,
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "error": a.error,
                "response_head": a.response_head,
            }
            for a in tries
        ],
        "next_attempt_at": delivery.next_attempt_at if delivery.state == "pending" else None,
        "created_at": delivery.created_at,
    }


class Webhooks:
    """A company's webhook endpoints and delivery log, and the sign-in path's one event."""

    SUBSCRIPTION_CACHE_SECONDS: Final = 5.0

    def __init__(self, store: Store, *, test_mode: bool = False) -> None:
        self.store = store
        self.test_mode = test_mode
        self._sign_in_subscribers: dict[int, tuple[float, tuple[int, ...]]] = {}

    # -- endpoints

    async def endpoints(self, company_id: int) -> list[WebhookEndpoint]:
        return await self.store.read(lambda conn: outbox.endpoints(conn, company_id))

    async def endpoint(self, company_id: int, endpoint_id: int) -> WebhookEndpoint:
        found = await self.store.read(lambda conn: outbox.endpoint(conn, company_id, endpoint_id))
        if found is None:
            raise NotFound("no such webhook endpoint")
        return found

    def _seal(self, secret: str, company_id: int) -> str:
        return self.store.master_keys.seal(secret.encode("ascii"), SECRET_PURPOSE, company_id).as_text()

    def add_in(
        self,
        conn: Connection,
        company_id: int,
        url: str,
        types: Sequence[str],
        *,
        description: str = "",
        actor: Actor,
        now: int,
    ) -> ShownSecret:
        """A new endpoint, in the caller's transaction; its secret is in the answer only."""
        url = check_url(url, test_mode=self.test_mode)
        wanted = check_types(types)
        if len(description) > 200:
            raise Refused("invalid_field", "description is at most 200 characters", "description")
        if len(outbox.endpoints(conn, company_id)) >= MAX_ENDPOINTS:
            raise Refused("too_many_endpoints", f"a company has at most {MAX_ENDPOINTS} webhook endpoints")
        secret = new_secret()
        endpoint_id = outbox.insert_endpoint(
            conn,
            {
                "company_id": company_id,
                "url": url,
                "event_types": " ".join(wanted),
                "description": description,
                "secret_sealed": self._seal(secret, company_id),
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            },
        )
        audit.record_in(conn, actor, "webhooks.endpoint_added", now, company_ids=[company_id], detail=url[:200])
        self._sign_in_subscribers.pop(company_id, None)
        found = outbox.endpoint(conn, company_id, endpoint_id)
        assert found is not None
        return ShownSecret(found, secret)

    async def add(
        self, company_id: int, url: str, types: Sequence[str], *, description: str = "", actor: Actor, now: int
    ) -> ShownSecret:
        return await self.store.write(
            lambda conn: self.add_in(conn, company_id, url, types, description=description, actor=actor, now=now)
        )

    def change_in(
        self,
        conn: Connection,
        company_id: int,
        endpoint_id: int,
        *,
        url: str | None = None,
        types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        actor: Actor,
        now: int,
    ) -> WebhookEndpoint:
        """Change an endpoint's URL, events, description, or turn it on (again) or off."""
        if outbox.endpoint(conn, company_id, endpoint_id, lock=True) is None:
            raise NotFound("no such webhook endpoint")
        changes: dict[str, object] = {"updated_at": now}
        if url is not None:
            changes["url"] = check_url(url, test_mode=self.test_mode)
        if types is not None:
            changes["event_types"] = " ".join(check_types(types))
        if description is not None:
            if len(description) > 200:
                raise Refused("invalid_field", "description is at most 200 characters", "description")
            changes["description"] = description
        if enabled is not None:
            changes.update(enabled=enabled, disabled_reason="", failing_since=None)
        outbox.update_endpoint(conn, company_id, endpoint_id, changes)
        audit.record_in(
            conn, actor, "webhooks.endpoint_changed", now, company_ids=[company_id], detail=f"#{endpoint_id}"
        )
        self._sign_in_subscribers.pop(company_id, None)
        found = outbox.endpoint(conn, company_id, endpoint_id)
        assert found is not None
        return found

    async def change(
        self, company_id: int, endpoint_id: int, *, actor: Actor, now: int, **changes: object
    ) -> WebhookEndpoint:
        return await self.store.write(
            lambda conn: self.change_in(conn, company_id, endpoint_id, actor=actor, now=now, **changes)  # type: ignore[arg-type]
        )

    def rotate_in(
        self,
        conn: Connection,
        company_id: int,
        endpoint_id: int,
        *,
        overlap: int = DEFAULT_OVERLAP,
        actor: Actor,
        now: int,
    ) -> ShownSecret:
        """A new signing secret; the one it replaces also signs for ``overlap`` seconds (0: stops at once)."""
        if not 0 <= overlap <= MAX_OVERLAP:
            raise Refused("invalid_field", f"overlap is 0 to {MAX_OVERLAP} seconds", "overlap")
        found = outbox.endpoint(conn, company_id, endpoint_id, lock=True)
        if found is None:
            raise NotFound("no such webhook endpoint")
        secret = new_secret()
        outbox.update_endpoint(
            conn,
            company_id,
            endpoint_id,
            {
                "secret_sealed": self._seal(secret, company_id),
                "previous_secret_sealed": found.secret_sealed if overlap else "",
                "previous_until": now + overlap if overlap else None,
                "updated_at": now,
            },
        )
        audit.record_in(conn, actor, "webhooks.secret_rotated", now, company_ids=[company_id], detail=f"#{endpoint_id}")
        rotated = outbox.endpoint(conn, company_id, endpoint_id)
        assert rotated is not None
        return ShownSecret(rotated, secret)

    async def rotate(
        self, company_id: int, endpoint_id: int, *, overlap: int = DEFAULT_OVERLAP, actor: Actor, now: int
    ) -> ShownSecret:
        return await self.store.write(
            lambda conn: self.rotate_in(conn, company_id, endpoint_id, overlap=overlap, actor=actor, now=now)
        )

    def remove_in(self, conn: Connection, company_id: int, endpoint_id: int, *, actor: Actor, now: int) -> None:
        found = outbox.endpoint(conn, company_id, endpoint_id, lock=True)
        if found is None:
            raise NotFound("no such webhook endpoint")
        outbox.delete_endpoint(conn, company_id, endpoint_id)
        audit.record_in(conn, actor, "webhooks.endpoint_removed", now, company_ids=[company_id], detail=found.url[:200])
        self._sign_in_subscribers.pop(company_id, None)

    async def remove(self, company_id: int, endpoint_id: int, *, actor: Actor, now: int) -> None:
        await self.store.write(lambda conn: self.remove_in(conn, company_id, endpoint_id, actor=actor, now=now))

    # -- the delivery log

    async def deliveries(
        self, company_id: int, endpoint_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
        """The endpoint's deliveries, newest first, each with its attempts."""

        def query(conn: Connection) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
            if outbox.endpoint(conn, company_id, endpoint_id) is None:
                raise NotFound("no such webhook endpoint")
            found = outbox.deliveries(conn, company_id, endpoint_id, limit=limit, before_id=before_id)
            tries = outbox.attempts(conn, [d.id for d in found])
            return [(d, tries[d.id]) for d in found]

        return await self.store.read(query)

    async def redeliver(
        self,
        company_id: int,
        endpoint_id: int,
        *,
        event_id: str | None = None,
        failed_since: int | None = None,
        actor: Actor,
        now: int,
    ) -> int:
        """Send one event again, or every failed one since a time; how many will go."""

        def change(conn: Connection) -> int:
            if outbox.endpoint(conn, company_id, endpoint_id) is None:
                raise NotFound("no such webhook endpoint")
            count = outbox.redeliver(
                conn, company_id, endpoint_id, now=now, event_id=event_id, failed_since=failed_since
            )
            what = f"event {event_id}" if event_id else f"failed since {failed_since or 0}"
            audit.record_in(
                conn,
                actor,
                "webhooks.redelivered",
                now,
                company_ids=[company_id],
                detail=f"#{endpoint_id}: {what}"[:200],
            )
            return count

        return await self.store.write(change)

    # -- the sign-in path

    async def sign_in_failed(
        self, company_id: int, reason: str, *, customer_id: int | None, issuer: str | None, ip: str, now: int
    ) -> None:
        """A ``sign_in.failed`` event, written only if an endpoint of the company wants it (checked every 5 s)."""
        cached = self._sign_in_subscribers.get(company_id)
        if cached is None or time.monotonic() - cached[0] > self.SUBSCRIPTION_CACHE_SECONDS:
            subscribers = await self.store.read(lambda conn: outbox.subscribers(conn, company_id))
            wanting = tuple(endpoint_id for endpoint_id, types in subscribers if "sign_in.failed" in types)
            if len(self._sign_in_subscribers) > 10_000:
                self._sign_in_subscribers.clear()
            self._sign_in_subscribers[company_id] = cached = (time.monotonic(), wanting)
        if not cached[1]:
            return
        attempt = {"id": f"{now}", "reason": reason, "customer_id": customer_id, "issuer": issuer, "ip": ip, "at": now}

        def change(conn: Connection) -> None:
            # Read again in the transaction: the copy above may be up to 5 s old.
            wanting = [
                endpoint_id for endpoint_id, types in outbox.subscribers(conn, company_id) if "sign_in.failed" in types
            ]
            if not wanting:
                return
            outbox.record_event(
                conn,
                company_id,
                wanting,
                event_type="sign_in.failed",
                object_kind="sign_in",
                object_id=str(customer_id or "-"),
                payload=lambda event_id: body(event_id, "sign_in.failed", now, "sign_in", attempt),
                now=now,
            )

        try:
            await self.store.write(change)
        except StorageUnavailable:
            log.warning("database unavailable: a sign_in.failed event was not recorded")


# -- the deliverer


class Refusal(Exception):
    """The endpoint's address may not be reached (SSRF guard); the message says why, with no secret."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str
    response_head: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(claimed: outbox.Claimed, master_keys: MasterKeys, now: int, timestamp: datetime) -> str:
    """``webhook-signature``: v1 under the current secret, and under the previous one during a rotation's overlap."""
    sealed = [claimed.secret_sealed]
    if claimed.previous_secret_sealed and (claimed.previous_until or 0) > now:
        sealed.append(claimed.previous_secret_sealed)
    signatures = []
    for text in sealed:
        secret = master_keys.unseal(Sealed.from_text(text), SECRET_PURPOSE, claimed.company_id).decode("ascii")
        signatures.append(standard.Webhook(secret).sign(claimed.event_id, timestamp, claimed.payload))
    return " ".join(signatures)


async def public_address(host: str, port: int) -> str:
    """The address to connect to: the host's first address, if every address it resolves to is public."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refusal(f"the host {host[:100]} does not resolve") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise Refusal(f"the host {host[:100]} resolves to a private or loopback address ({ip})")
    if not addresses:
        raise Refusal(f"the host {host[:100]} does not resolve")
    return addresses[0]


class Deliverer:
    """Sends due deliveries from the outbox; any number of processes may run one at once."""

    def __init__(
        self,
        store: Store,
        *,
        test_mode: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.test_mode = test_mode
        self.timeout = timeout
        self.rng = rng

    async def run_once(self, now: int, *, limit: int = BATCH) -> int:
        """Claim the due deliveries (at most ``limit``), send them, record each outcome; how many were tried."""
        if not await self.store.read(lambda conn: outbox.anything_due(conn, now)):
            return 0
        claimed = await self.store.write(lambda conn: outbox.claim(conn, now=now, limit=limit, lease=LEASE_SECONDS))
        if not claimed:
            return 0
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=self.timeout, trust_env=False, headers={"User-Agent": USER_AGENT}
        ) as client:
            outcomes = await asyncio.gather(*(self._send(client, one, now) for one in claimed))
        for one, outcome in zip(claimed, outcomes, strict=True):
            await self._record(one, outcome, now)
        return len(claimed)

    async def run_until_idle(self, now: int) -> int:
        """Deliver until nothing is due at ``now`` (a try that fails is due later); how many tries were made."""
        total = 0
        while True:
            tried = await self.run_once(now)
            if not tried:
                return total
            total += tried

    async def run_forever(self, clock: Callable[[], int], *, interval: float = 1.0) -> None:
        """Deliver what is due, again and again (the server's background task, ``billportal webhooks deliver``)."""
        while True:
            try:
                tried = await self.run_once(clock())
            except StorageUnavailable:
                log.warning("database unavailable: webhooks wait; will retry")
                tried = 0
            except Exception:
                log.exception("the webhook deliverer failed; it goes on")
                tried = 0
            if not tried:
                await asyncio.sleep(interval)

    async def _send(self, client: httpx.AsyncClient, claimed: outbox.Claimed, now: int) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            timestamp = datetime.now(UTC)  # the moment of sending, whatever clock schedules the tries
            headers = {
                "webhook-id": claimed.event_id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": signature(claimed, self.store.master_keys, now, timestamp),
                "content-type": "application/json",
            }
            url = claimed.url
            extensions: dict[str, str] = {}
            parts = urlsplit(url)
            host = parts.hostname or ""
            if not self.test_mode:
                if parts.scheme != "https":
                    raise Refusal("only https URLs are called outside test mode")  # noqa: TRY301
                address = await public_address(host, parts.port or 443)
                # Connect to the address checked, not to a second answer of the DNS (rebinding).
                pinned = f"[{address}]" if ":" in address else address
                url = urlunsplit(parts._replace(netloc=pinned + (f":{parts.port}" if parts.port else "")))
                headers["host"] = parts.netloc.rpartition("@")[2]
                extensions["sni_hostname"] = host
            request = client.build_request(
                "POST", url, content=claimed.payload.encode("utf-8"), headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)
            try:
                head = bytearray()
                async for chunk in response.aiter_raw():
                    head += chunk
                    if len(head) >= outbox.RESPONSE_HEAD_BYTES:
                        break
            finally:
                await response.aclose()
            text = bytes(head[: outbox.RESPONSE_HEAD_BYTES]).decode("utf-8", "replace")
            error = ""
            if 300 <= response.status_code < 400:
                error = "redirects are not followed: use the final URL"
            elif not 200 <= response.status_code < 300:
                error = f"answered {response.status_code}"
            return Outcome(response.status_code, took(), error, text)
        except Refusal as exc:
            return Outcome(None, took(), str(exc), "")
        except httpx.TimeoutException:
            return Outcome(None, took(), f"no answer within {self.timeout:g} s", "")
        except httpx.HTTPError as exc:
            return Outcome(None, took(), f"could not connect: {type(exc).__name__}", "")
        except SealError:
            return Outcome(None, took(), "the signing secret does not open with the master keys", "")

    async def _record(self, claimed: outbox.Claimed, outcome: Outcome, now: int) -> None:
        if outcome.ok:
            state, next_at = "delivered", now
        elif now - claimed.created_at >= RETRY_WINDOW:
            state, next_at = "failed", now
        else:
            state, next_at = "pending", now + backoff(claimed.attempts + 1, self.rng)

        def change(conn: Connection) -> bool:
            outbox.finish(
                conn,
                claimed,
                now=now,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                response_head=outcome.response_head,
                state=state,
                next_attempt_at=next_at,
            )
            disabled = outbox.endpoint_result(
                conn, claimed.endpoint_id, ok=outcome.ok, now=now, disable_after=RETRY_WINDOW
            )
            if disabled:
                mail.endpoint_disabled(conn, claimed.company_id, claimed.url, now=now)
            return disabled

        if await self.store.write(change):
            log.warning(
                "webhook endpoint %d of company %d disabled: it failed for three days",
                claimed.endpoint_id,
                claimed.company_id,
            )
