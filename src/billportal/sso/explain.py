"""The token debugger: what a token says, and whether it would sign in now, in words.

Used by ``billportal sso-explain`` and the dashboard's "Try it" panel.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class Explanation:
    """The debugger's answer: the decoded parts (unverified) and the verdict."""

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    reason: Reason
    what: str
    fix: str
    notes: tuple[str, ...]

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
        }


def _peek(segment: str) -> dict[str, Any] | None:
    """Best-effort decode for display only; the verifier is the judge."""
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _time_note(name: str, value: object, now: int) -> str | None:
    if type(value) is not int:
        return None
    try:
        when = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None
    delta = value - now
    relative = f"in {delta} s" if delta >= 0 else f"{-delta} s ago"
    return f"{name}:     {when} ({relative})"


def explain_token(token: str, company: SignOnSettings, now: int, customer_exists: bool | None) -> Explanation:
    """Explain ``token`` for ``company`` at ``now``.

    ``customer_exists`` is whether the ``sub`` names a customer (None: not
    looked up, for tokens that fail before that).
    """
    token = token.strip()
    parts = token.split(".")
    header = _peek(parts[0]) if len(parts) == 3 else None
    claims = _peek(parts[1]) if len(parts) == 3 else None
    notes = []
    if claims is not None:
        for name in ("iat", "nbf", "exp"):
            note = _time_note(name, claims.get(name), now)
            if note:
                notes.append(note)
    outcome: Claims | Rejection
    if not company.sso_enabled:
        outcome = Rejection(Reason.SSO_DISABLED)
    else:
        outcome = verify(token, company.sso_keys, company.policy, now)
    if isinstance(outcome, Claims):
        notes.append(f"key:     {outcome.kid}")
        reason = Reason.OK if customer_exists is not False else Reason.CUSTOMER_UNKNOWN
    else:
        reason = outcome.reason
    what, fix = explain(reason)
    return Explanation(header, claims, reason, what, fix, tuple(notes))


def token_from(text: str) -> str:
    """The token itself, also when a whole sign-in URL was pasted."""
    token = text.strip()
    if "/login/" in token:
        token = token.split("/login/", 1)[1].split("?", 1)[0]
    return token


async def explain_now(
    token: str, company: SignOnSettings, now: int, customer_exists: Callable[[int, int], Awaitable[bool]]
) -> Explanation:
    """Explain ``token``, looking its customer up (``customer_exists(company id, customer id)``) if it verifies."""
    outcome = verify(token, company.sso_keys, company.policy, now)
    exists = await customer_exists(company.id, outcome.customer_id) if isinstance(outcome, Claims) else None
    return explain_token(token, company, now, exists)
