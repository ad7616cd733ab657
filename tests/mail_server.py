"""A real SMTP server for the tests (aiosmtpd in a thread), that keeps what it receives and answers as told."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The message's text/``subtype`` part, decoded."""
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None, f"no text/{subtype} part"
        content: str = found.get_content()
        return content


@dataclass
class MailServer:
    """Its address, what it received, and its scripted answers to RCPT (one per RCPT, then 250)."""

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    rcpt_script: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> answer, every time
    logins: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds each message takes to accept (to widen races)

    def by_kind(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.message["X-Billportal-Kind"] == kind]


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Session, envelope: Envelope, address: str, _options: list[str]
    ) -> str:
        if address.lower() in self.server.refuse:
            return self.server.refuse[address.lower()]
        if self.server.rcpt_script:
            answer = self.server.rcpt_script.pop(0)
            if not answer.startswith("250"):
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.server.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(*, logins: dict[str, str] | None = None) -> Iterator[MailServer]:
    """A running SMTP server on 127.0.0.1; with ``logins``, it asks for AUTH (over plain text: a test)."""
    server = MailServer("127.0.0.1", free_port(), logins=dict(logins or {}))

    def authenticate(_server: Any, session: Session, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if server.logins.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    options: dict[str, Any] = {}
    if logins:
        options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(_Handler(server), hostname=server.host, port=server.port, **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
