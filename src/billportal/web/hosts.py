"""Which site a request is for, from its Host header."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Site:
    """``kind`` is "portal" (with the company's username), "dashboard" or "root"."""

    kind: str
    username: str = ""


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal never names a company
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def host_port(host: str) -> int | None:
    """The port a Host header names, when it is written as a port (1 to 65535 in digits); else None."""
    name, colon, port = host.strip().rpartition(":")
    if not colon or (":" in name and not name.endswith("]")):
        return None
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return None
    return int(port)


def site_for(host_header: str, base_domain: str) -> Site | None:
    """``acme.{base}`` is acme's portal, ``dashboard.{base}`` the dashboard, ``{base}`` the root.

    A port that is not digits (``dashboard.{base}:@evil.example``) names no site.
    """
    if host_header.strip().rpartition(":")[2] and ":" in host_header and host_port(host_header) is None:
        return None
    host = host_without_port(host_header).rstrip(".")
    if host == base_domain:
        return Site("root")
    suffix = "." + base_domain
    if not host.endswith(suffix):
        return None
    label = host[: -len(suffix)]
    if label == "dashboard":
        return Site("dashboard")
    if not _LABEL.fullmatch(label):
        return None
    return Site("portal", label)


RESERVED_USERNAMES = frozenset({"dashboard", "www", "api", "admin", "static", "mail", "status"})


def valid_username(username: str) -> bool:
    """A company username is one DNS label: lower-case letters, digits and inner hyphens."""
    return bool(_LABEL.fullmatch(username)) and username not in RESERVED_USERNAMES
