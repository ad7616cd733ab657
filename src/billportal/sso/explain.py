"""The token debugger: what a token says, and whether it would sign in now, in words.

Used by ``billportal sso-explain`` and the dashboard's "Try it" panel.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from billportal.core.clock import human_time
from billportal.sso.reasons import Reason, explain
from billportal.sso.tokens import Claims, Policy, Rejection, VerificationKey, verify

_PREVIEW_LIMIT = 2000


class SignOnSettings(Protocol):
    """What the debugger reads of a company (its record in storage has these)."""

    @property
    def id(self) -> int: ...
    @property
    def sso_enabled(self) -> bool: ...
    @property
    def sso_keys(self) -> tuple[VerificationKey, ...]: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def time_zone(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Explanation:
    """The debugger's answer: the decoded parts (unverified) and the verdict."""

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    reason: Reason
    what: str
    fix: str
    notes: tuple[str, ...]
    until: str | None = None  # when a link that signs in now stops doing so, other than its exp

    @property
    def signs_in(self) -> bool:
        return self.reason is Reason.OK

    def as_text(self) -> str:
        lines = []
        if self.header is not None:
            lines.append("header:  " + json.dumps(self.header, ensure_ascii=False)[:_PREVIEW_LIMIT])
        if self.claims is not None:
            lines.append("payload: " + json.dumps(self.claims, ensure_ascii=False)[:_PREVIEW_LIMIT])
        lines.extend(self.notes)
        verdict = "would sign in now" if self.signs_in else "would NOT sign in now"
        if self.signs_in and self.until:
            verdict += f", until {self.until}"
        lines.append(f"result:  {verdict}")
        lines.append(f"reason:  {self.reason.value}")
        lines.append(f"why:     {self.what}")
        if not self.signs_in:
            lines.append(f"fix:     {self.fix}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "signs_in": self.signs_in,
            "reason": self.reason.value,
            "explanation": self.what,
            "fix": self.fix,
            "header": self.header,
            "payload": self.claims,
            "notes": list(self.notes),
            "until": self.until,
        }


def _peek(segment: str) -> dict[str, Any] | None:
    """Best-effort decode for display only; the verifier is the judge."""
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _relative(delta: int) -> str:
    return f"in {delta} s" if delta >= 0 else f"{-delta} s ago"


def _time_note(name: str, value: object, now: int, zone: str) -> str | None:
    if type(value) is not int:
        return None
    when = human_time(value, zone, seconds=True)
    if when == str(value):
        return None
    return f"{name}:     {when} ({_relative(value - now)})"


def _key_note(kid: str, company: SignOnSettings, now: int, notes: list[str]) -> str | None:
    """Name the key that verified; for a retiring one, say when it stops (returned, written out)."""
    key = next((k for k in company.sso_keys if k.kid == kid), None)
    if key is None or key.state != "retiring" or key.retiring_until is None:
        notes.append(f"key:     {kid}")
        return None
    until = human_time(key.retiring_until, company.time_zone, seconds=True)
    notes.append(
        f"key:     {kid} is retiring: links signed with it stop working at {until}"
        f" ({_relative(key.retiring_until - now)}); sign new links with the active key"
    )
    return until


def explain_token(
    token: str, company: SignOnSettings, now: int, customer_exists: bool | None, jti_used: bool | None = None
) -> Explanation:
    """Explain ``token`` for ``company`` at ``now``.

    ``customer_exists`` is whether the ``sub`` names a customer, and ``jti_used``
    whether its ``jti`` was used already (None: not looked up, for tokens that
    fail before that). Times are written in the company's time zone.
    """
    token = token.strip()
    parts = token.split(".")
    header = _peek(parts[0]) if len(parts) == 3 else None
    claims = _peek(parts[1]) if len(parts) == 3 else None
    zone = company.time_zone
    notes = []
    if claims is not None:
        for name in ("iat", "nbf", "exp"):
            note = _time_note(name, claims.get(name), now, zone)
            if note:
                notes.append(note)
    outcome: Claims | Rejection
    if not company.sso_enabled:
        outcome = Rejection(Reason.SSO_DISABLED)
    else:
        outcome = verify(token, company.sso_keys, company.policy, now)
    until = None
    if isinstance(outcome, Claims):
        until = _key_note(outcome.kid, company, now, notes)
        if outcome.jti is not None:
            notes.append("jti:     used already" if jti_used else "jti:     single-use: the first sign-in uses it up")
        if customer_exists is False:
            reason = Reason.CUSTOMER_UNKNOWN
        elif jti_used:
            reason = Reason.JTI_REPLAYED
        else:
            reason = Reason.OK
    else:
        reason = outcome.reason
    what, fix = explain(reason)
    return Explanation(header, claims, reason, what, fix, tuple(notes), until if reason is Reason.OK else None)


def token_from(text: str) -> str:
    """The token itself, also when a whole sign-in URL was pasted."""
    token = text.strip()
    if "/login/" in token:
        token = token.split("/login/", 1)[1].split("?", 1)[0]
    return token


async def explain_now(
    token: str,
    company: SignOnSettings,
    now: int,
    customer_exists: Callable[[int, int], Awaitable[bool]],
    jti_used: Callable[[int, str, int], Awaitable[bool]],
) -> Explanation:
    """Explain ``token``, looking up (read-only) what a sign-in would: its customer and its single-use mark.

    ``customer_exists(company id, customer id)`` and ``jti_used(company id, jti, now)``
    are the store's; nothing is written, so explaining a link does not use it up.
    """
    outcome = verify(token, company.sso_keys, company.policy, now)
    if not isinstance(outcome, Claims):
        return explain_token(token, company, now, None)
    exists = await customer_exists(company.id, outcome.customer_id)
    used = await jti_used(company.id, outcome.jti, now) if outcome.jti is not None else None
    return explain_token(token, company, now, exists, used)
