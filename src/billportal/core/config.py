"""Settings, read once from ``BILLPORTAL_*`` environment variables.

Every setting is documented in ``docs/deploy.md``; the defaults run the embedded
demo (SQLite under ``./var``, base domain ``localhost``).
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

_SQLITE_FILE = "billportal.sqlite3"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it, never its value."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate limit such as ``20/minute`` (the ``limits`` library's notation)."""
    raw = (env.get(name) or default).strip()
    if raw == default:
        return raw  # known good: no need to load ``limits`` (about 5 MB) before the first failure
    from limits import parse

    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as 20/minute") from None
    return raw


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of: {', '.join(choices)}")
    return value


def _public_url(raw: str) -> tuple[str, str]:
    """``BILLPORTAL_PUBLIC_URL`` checked: (``scheme://host[:port]``, host), or ("", "") when unset."""
    raw = raw.strip().rstrip("/")
    if not raw:
        return "", ""
    problem = "BILLPORTAL_PUBLIC_URL must look like https://portal.example.com or http://localhost:8731"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(problem) from None
    host = (parts.hostname or "").strip(".")
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise ConfigError(problem)
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(problem)
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else ""), host


def _database_url(env: Mapping[str, str]) -> str:
    raw = (env.get("BILLPORTAL_DATABASE_URL") or "").strip()
    if not raw or raw.startswith("sqlite:///"):
        return raw
    if not raw.startswith("postgresql+psycopg://"):
        raise ConfigError("BILLPORTAL_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/NAME")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise ConfigError("BILLPORTAL_DATABASE_URL has a malformed host or port") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(
            "BILLPORTAL_DATABASE_URL must name a host and a database: postgresql+psycopg://USER@HOST/NAME"
        )
    return raw


@dataclass(frozen=True)
class SmtpServer:
    """The mail server of ``BILLPORTAL_SMTP_URL``; its password is never in its repr."""

    host: str
    port: int
    tls: bool  # smtps://: TLS from the start; smtp://: STARTTLS when the server offers it
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def shown(self) -> str:
        """The server as logs and pages may show it: no password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'smtps' if self.tls else 'smtp'}://{user}{self.host}:{self.port}"


def smtp_server(raw: str) -> SmtpServer | None:
    """``BILLPORTAL_SMTP_URL`` read: smtp://[user:pass@]host[:port] or smtps://...; None when unset."""
    raw = raw.strip()
    if not raw:
        return None
    problem = "BILLPORTAL_SMTP_URL must look like smtp://user:password@smtp.example.com:587 or smtps://...:465"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(problem) from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ConfigError(problem)
    tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if tls else 587),
        tls=tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _smtp_url(raw: str) -> str:
    smtp_server(raw)  # refused at start, with a message that never quotes it
    return raw.strip()


def _networks(env: Mapping[str, str], name: str, default: str, *, wildcard: bool = False) -> tuple[str, ...]:
    """Comma-separated addresses or networks (``10.0.0.0/8``, ``::1``; ``*`` where ``wildcard``)."""
    parts = tuple(p.strip() for p in (env.get(name) or default).split(",") if p.strip())
    for part in parts:
        if wildcard and part == "*":
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ConfigError(f"{name} must be comma-separated IP addresses or networks such as 10.0.0.0/8") from None
    return parts


def decode_master_key(raw: str, name: str = "BILLPORTAL_MASTER_KEY") -> bytes:
    """Decode a base64url master key of exactly 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
    except (ValueError, TypeError):
        raise ConfigError(f"{name} is not base64url") from None
    if len(key) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes")
    return key


@dataclass(frozen=True)
class Settings:
    """Server settings. Build with :meth:`from_env`, or directly in tests."""

    base_domain: str = "localhost"
    # Where people reach billportal (scheme, base domain, port): links, hints and the API's own
    # origin are built from it, never from a request's Host header. Empty: the default below.
    public_url: str = ""
    data_dir: Path = Path("var")
    database_url: str = ""
    database_pool_size: int = 20
    redis_url: str = ""
    master_key: bytes = b""
    previous_master_keys: tuple[bytes, ...] = ()
    cookie_secure: bool = True
    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 60 * 60
    trusted_proxies: tuple[str, ...] = ()
    metrics_networks: str = "127.0.0.0/8,::1/128"
    log_format: str = "text"
    access_log: bool = True
    # Failed sign-ins by link allowed per client address and per company
    # ("N/second|minute|hour"); past either, /login answers 429 until the window ends.
    login_failures_per_ip: str = "20/minute"
    login_failures_per_company: str = "300/minute"
    # Email sign-in: links asked for per client address (an IPv6 client as its /64) and per email address.
    email_sign_ins_per_ip: str = "30/hour"
    email_sign_ins_per_address: str = "5/hour"
    # Connections and load, per process (docs/deploy.md#connections-and-load): a request's
    # head must arrive within head_timeout_seconds; past max_connections open connections a
    # new one is answered 503 and closed; past max_in_flight requests at once, or while every answer
    # takes over shed_latency_ms (web/shedding.py; 0: no such bound), a new request gets 503 at once.
    head_timeout_seconds: int = 10
    max_connections: int = 4096
    max_in_flight: int = 256
    # 25 rather than 50: at 1.5 times the maximum, the p99 of every answer fell from 96-99 ms to 54-59 ms,
    # with as many sign-ins served (docs/deploy.md#connections-and-load). Set it above the database's round trips.
    shed_latency_ms: int = 25
    # Webhooks to http://localhost and private addresses, for tests and local development only.
    webhooks_test_mode: bool = False
    # Whether this process sends webhooks in the background (each serving process does, by default).
    webhooks_deliver: bool = True
    # Where email goes: smtp://[user:pass@]host[:port] (STARTTLS) or smtps:// (TLS); empty: .eml files
    # in {data_dir}/mail-outbox. Never shown (it may hold a password): see smtp_server().
    smtp_url: str = field(default="", repr=False)
    mail_from: str = ""  # the From address; default billportal@{base domain}

    @property
    def base_url(self) -> str:
        """``https://{base domain}`` (``http://localhost:8000`` embedded), or ``BILLPORTAL_PUBLIC_URL``."""
        if self.public_url:
            return self.public_url
        return "http://localhost:8000" if self.base_domain == "localhost" else f"https://{self.base_domain}"

    @property
    def dashboard_host(self) -> str:
        return f"dashboard.{self.base_domain}"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / _SQLITE_FILE

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def session_cookie_name(self) -> str:
        # The __Host- prefix makes the browser refuse the cookie unless it is
        # Secure, host-only and Path=/; it cannot exist without Secure.
        return "__Host-bp_session" if self.cookie_secure else "bp_session"

    @property
    def next_page_cookie_name(self) -> str:
        """The cookie that remembers the page a signed-out visitor asked for, until they sign in."""
        return "__Host-bp_next" if self.cookie_secure else "bp_next"

    @property
    def recovery_cookie_name(self) -> str:
        """The cookie that says a spent link was just sent back to the company's app for a fresh one."""
        return "__Host-bp_recovered" if self.cookie_secure else "bp_recovered"

    @property
    def framed_cookie_name(self) -> str:
        """The session cookie of a sign-in in an allowed frame: always Secure (SameSite=None needs it)."""
        return "__Host-bp_framed"

    def session_cookie(self, framed: bool) -> str:
        """The cookie a request reads its session from: a framed request the framed one only, others the Lax one."""
        return self.framed_cookie_name if framed else self.session_cookie_name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the environment (``os.environ`` by default)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("BILLPORTAL_DATA_DIR") or "var")
        database_url = _database_url(env)
        master_raw = env.get("BILLPORTAL_MASTER_KEY", "")
        if not master_raw and database_url and not database_url.startswith("sqlite:"):
            # A key generated on one host would seal keys that the fleet's other hosts cannot open.
            raise ConfigError(
                "BILLPORTAL_MASTER_KEY must be set when BILLPORTAL_DATABASE_URL is not SQLite "
                "(the same key on every process; it is generated only for the embedded SQLite build)"
            )
        if not master_raw and not (data_dir / "master.key").exists():
            database = Path(database_url.removeprefix("sqlite:///")) if database_url else data_dir / _SQLITE_FILE
            if database.exists():
                # A new key would open none of the secrets this database holds.
                raise ConfigError(
                    f"{data_dir / 'master.key'} is missing but the database {database} exists: restore the key "
                    "or set BILLPORTAL_MASTER_KEY"
                )
        master_key = decode_master_key(master_raw) if master_raw else load_or_create_master_key(data_dir)
        previous = tuple(
            decode_master_key(part, "BILLPORTAL_PREVIOUS_MASTER_KEYS")
            for part in env.get("BILLPORTAL_PREVIOUS_MASTER_KEYS", "").split(",")
            if part.strip()
        )
        public_url, public_host = _public_url(env.get("BILLPORTAL_PUBLIC_URL", ""))
        base_domain = (env.get("BILLPORTAL_BASE_DOMAIN") or public_host or "localhost").strip().lower().strip(".")
        if not base_domain or any(c in base_domain for c in "/:@ "):
            raise ConfigError("BILLPORTAL_BASE_DOMAIN must be a host name such as portal.example.com")
        if public_host and public_host != base_domain:
            raise ConfigError(f"BILLPORTAL_PUBLIC_URL names {public_host}, but BILLPORTAL_BASE_DOMAIN is {base_domain}")
        proxies = _networks(env, "BILLPORTAL_TRUSTED_PROXIES", "", wildcard=True)
        return cls(
            base_domain=base_domain,
            public_url=public_url,
            data_dir=data_dir,
            database_url=database_url,
            database_pool_size=_int(env, "BILLPORTAL_DATABASE_POOL_SIZE", 20),
            redis_url=env.get("BILLPORTAL_REDIS_URL", ""),
            master_key=master_key,
            previous_master_keys=previous,
            cookie_secure=_bool(env, "BILLPORTAL_COOKIE_SECURE", True),
            session_idle_seconds=_int(env, "BILLPORTAL_SESSION_IDLE_SECONDS", 30 * 60, 60),
            session_absolute_seconds=_int(env, "BILLPORTAL_SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60, 60),
            trusted_proxies=proxies,
            metrics_networks=",".join(_networks(env, "BILLPORTAL_METRICS_NETWORKS", "127.0.0.0/8,::1/128")),
            log_format=_choice(env, "BILLPORTAL_LOG_FORMAT", ("text", "json"), "text"),
            access_log=_bool(env, "BILLPORTAL_ACCESS_LOG", True),
            login_failures_per_ip=_rate(env, "BILLPORTAL_LOGIN_FAILURES_PER_IP", "20/minute"),
            login_failures_per_company=_rate(env, "BILLPORTAL_LOGIN_FAILURES_PER_COMPANY", "300/minute"),
            email_sign_ins_per_ip=_rate(env, "BILLPORTAL_EMAIL_SIGN_INS_PER_IP", "30/hour"),
            email_sign_ins_per_address=_rate(env, "BILLPORTAL_EMAIL_SIGN_INS_PER_ADDRESS", "5/hour"),
            head_timeout_seconds=_int(env, "BILLPORTAL_HEAD_TIMEOUT_SECONDS", 10, 1),
            max_connections=_int(env, "BILLPORTAL_MAX_CONNECTIONS", 4096, 1),
            max_in_flight=_int(env, "BILLPORTAL_MAX_IN_FLIGHT", 256, 1),
            shed_latency_ms=_int(env, "BILLPORTAL_SHED_LATENCY_MS", 25, 0),
            webhooks_test_mode=_bool(env, "BILLPORTAL_WEBHOOKS_TEST_MODE", False),
            webhooks_deliver=_bool(env, "BILLPORTAL_WEBHOOKS_DELIVER", True),
            smtp_url=_smtp_url(env.get("BILLPORTAL_SMTP_URL", "")),
            mail_from=(env.get("BILLPORTAL_MAIL_FROM") or "").strip(),
        )


def load_or_create_master_key(data_dir: Path) -> bytes:
    """The embedded default: a master key kept in ``{data_dir}/master.key`` (mode 0600).

    Production deployments set ``BILLPORTAL_MASTER_KEY`` instead, so that the key
    never sits beside the database it protects.
    """
    path = data_dir / "master.key"
    if path.exists():
        return decode_master_key(path.read_text(encoding="ascii"), str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    raw = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(raw + "\n")
    return decode_master_key(raw, str(path))
