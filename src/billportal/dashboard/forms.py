"""Reading and checking the dashboard's forms: every field is validated here, with a message per field."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import SplitResult, urlsplit

from billportal._links import parse_duration
from billportal.core import i18n
from billportal.services.sso import PolicySettings
from billportal.sso.reasons import Reason
from billportal.sso.tokens import parse_customer_id
from billportal.web.forms import Form

MAX_BODY: Final = 64 * 1024
# A form with a file: the logo, capped lower itself, so that a logo a little too large gets its own message.
MAX_UPLOAD: Final = 2 * 1024 * 1024
MAX_URL_LENGTH: Final = 2000
MAX_LEEWAY: Final = 600
MAX_ISSUERS: Final = 50
MAX_ISSUER_LENGTH: Final = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_email(value: str) -> str:
    return value.strip().lower()[:254]


def email_problem(email: str) -> str | None:
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        return i18n.gettext("Enter an email address such as alice@example.com.")
    return None


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why a sign-in, sign-out or error URL is refused: absolute http(s), http only for localhost."""
    if len(url) > MAX_URL_LENGTH:
        return i18n.gettext("Use at most %(count)s characters.") % {"count": MAX_URL_LENGTH}
    if _CONTROL.search(url) or " " in url:
        return i18n.gettext("A URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return i18n.gettext("This is not a valid URL.")
    return _url_rule_broken(parts, url)


def _url_rule_broken(parts: SplitResult, url: str) -> str | None:
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return i18n.gettext("Enter an absolute URL starting with https://")
    if parts.username is not None or parts.password is not None:
        return i18n.gettext("A URL cannot carry a user name or password.")
    if parts.fragment or url.endswith("#"):
        return i18n.gettext("Leave out the #fragment: billportal adds a query parameter to this URL.")
    if parts.scheme == "http" and not _is_local(host):
        return i18n.gettext("Use https:// (http:// is only allowed for localhost).")
    return None


@dataclass
class PolicyForm:
    """The policy form as submitted: the values, and a message for each field that is wrong."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    settings: PolicySettings | None = None


def _leeway(raw: str, errors: dict[str, str]) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_LEEWAY:
        errors["leeway"] = i18n.gettext("Enter a whole number of seconds from 0 to %(most)s.") % {"most": MAX_LEEWAY}
        return 0
    return int(raw)


def _max_lifetime(raw: str, errors: dict[str, str]) -> int | None:
    if not raw:
        return None
    try:
        return parse_duration(raw)
    except ValueError:
        errors["max_lifetime"] = i18n.gettext(
            "Enter seconds, or a duration such as 5m, 1h or 1d; leave empty for no limit."
        )
        return None


def _issuers(raw: str, errors: dict[str, str]) -> tuple[str, ...]:
    issuers = sorted({line.strip() for line in raw.splitlines() if line.strip()})
    if len(issuers) > MAX_ISSUERS:
        errors["allowed_issuers"] = i18n.gettext("List at most %(count)s issuers.") % {"count": MAX_ISSUERS}
    elif any(len(i) > MAX_ISSUER_LENGTH or _CONTROL.search(i) for i in issuers):
        errors["allowed_issuers"] = i18n.gettext("Each issuer is one line of at most %(count)s characters.") % {
            "count": MAX_ISSUER_LENGTH
        }
    return tuple(issuers)


MAX_FRAME_ANCESTORS: Final = 10


def _frame_ancestors(raw: str, errors: dict[str, str]) -> tuple[str, ...]:
    """Origins allowed to frame the portal (CSP frame-ancestors): https://host[:port], one a line."""
    origins = []
    for line in raw.splitlines():
        url = line.strip().rstrip("/")
        if not url:
            continue
        problem = url_problem(url)
        parts = urlsplit(url) if problem is None else None
        if problem is None and parts is not None and (parts.path or parts.query):
            problem = i18n.gettext("Give an origin only, such as https://app.example.com (no path).")
        if problem is not None:
            errors["frame_ancestors"] = f"{url[:60]}: {problem}"
            return ()
        origins.append(url.lower())
    if len(set(origins)) > MAX_FRAME_ANCESTORS:
        errors["frame_ancestors"] = i18n.gettext("List at most %(count)s sites.") % {"count": MAX_FRAME_ANCESTORS}
    return tuple(sorted(set(origins)))


def parse_policy(form: Form) -> PolicyForm:
    """Check the policy form; ``settings`` is set only when every field is right."""
    values = {
        "leeway": form.text("leeway", 20).strip(),
        "max_lifetime": form.text("max_lifetime", 20).strip(),
        "require_jti": "on" if form.get("require_jti") == "on" else "",
        "email_sign_in": "on" if form.get("email_sign_in") == "on" else "",
        "allowed_issuers": form.text("allowed_issuers", MAX_ISSUERS * (MAX_ISSUER_LENGTH + 2)),
        "sign_in_url": form.text("sign_in_url", MAX_URL_LENGTH + 1).strip(),
        "sign_out_url": form.text("sign_out_url", MAX_URL_LENGTH + 1).strip(),
        "error_url": form.text("error_url", MAX_URL_LENGTH + 1).strip(),
        "frame_ancestors": form.text("frame_ancestors", MAX_FRAME_ANCESTORS * (MAX_URL_LENGTH + 2)),
    }
    errors: dict[str, str] = {}
    leeway = _leeway(values["leeway"], errors)
    max_lifetime = _max_lifetime(values["max_lifetime"], errors)
    issuers = _issuers(values["allowed_issuers"], errors)
    frame_ancestors = _frame_ancestors(values["frame_ancestors"], errors)
    for name in ("sign_in_url", "sign_out_url", "error_url"):
        problem = url_problem(values[name]) if values[name] else None
        if problem:
            errors[name] = problem
    result = PolicyForm(values, errors)
    if not errors:
        result.settings = PolicySettings(
            leeway=leeway,
            max_lifetime=max_lifetime,
            require_jti=values["require_jti"] == "on",
            allowed_issuers=issuers,
            sign_in_url=values["sign_in_url"],
            sign_out_url=values["sign_out_url"],
            error_url=values["error_url"],
            frame_ancestors=frame_ancestors,
            email_sign_in=values["email_sign_in"] == "on",
        )
    return result


def policy_values(settings: PolicySettings) -> dict[str, str]:
    """The form's fields for stored settings."""
    return {
        "leeway": str(settings.leeway),
        "max_lifetime": "" if settings.max_lifetime is None else str(settings.max_lifetime),
        "require_jti": "on" if settings.require_jti else "",
        "allowed_issuers": "\n".join(settings.allowed_issuers),
        "sign_in_url": settings.sign_in_url,
        "sign_out_url": settings.sign_out_url,
        "error_url": settings.error_url,
        "frame_ancestors": "\n".join(settings.frame_ancestors),
        "email_sign_in": "on" if settings.email_sign_in else "",
    }


def customer_id_field(raw: str) -> int | None:
    return parse_customer_id(raw.strip())


RESULTS: Final = ("success", "failure")
REASON_CODES: Final = tuple(reason.value for reason in Reason)


@dataclass(frozen=True, slots=True)
class LogFilters:
    """The sign-in log's filters, from the query string; anything unrecognised is dropped."""

    result: str | None = None
    reason: str | None = None
    customer_id: int | None = None
    customer_text: str = ""
    error: str = ""

    @classmethod
    def parse(cls, params: dict[str, str]) -> LogFilters:
        result = params.get("result") or None
        reason = params.get("reason") or None
        customer_text = params.get("customer", "").strip()[:20]
        customer_id = parse_customer_id(customer_text) if customer_text else None
        error = (
            i18n.gettext("The customer must be a customer id, a positive whole number.")
            if customer_text and not customer_id
            else ""
        )
        return cls(
            result=result if result in RESULTS else None,
            reason=reason if reason in REASON_CODES else None,
            customer_id=customer_id,
            customer_text=customer_text,
            error=error,
        )

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links to the next page and the CSV)."""
        params = {"result": self.result or "", "reason": self.reason or "", "customer": self.customer_text}
        return {name: value for name, value in params.items() if value}
