"""``billportal api-key create|list|revoke``: a company's REST API keys, for operators."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import human_time, iso_utc, system_clock
from billportal.core.config import Settings
from billportal.services import api_keys
from billportal.services.audit import CLI
from billportal.storage.records import ApiKeyInfo
from billportal.storage.store import Store


def register(commands: Any) -> None:
    api_key = commands.add_parser("api-key", help="a company's REST API keys").add_subparsers(
        dest="action", required=True
    )

    create = api_key.add_parser("create", help="make a key; prints it once (JSON)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="", help="what the key is for, such as 'billing sync'")
    create.add_argument(
        "--scope",
        action="append",
        choices=list(api_keys.SCOPES),
        help="what the key may do; repeat for each (default: every scope but sso_keys). "
        + "; ".join(f"{name}: {doc}" for name, doc in api_keys.SCOPES.items()),
    )
    create.set_defaults(handler=api_key_create)

    listing = api_key.add_parser("list", help="the keys: prefix, name, scopes, created, last used (never the key)")
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=api_key_list)

    revoke = api_key.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("key", metavar="ID_OR_PREFIX", help="the key's id or its prefix, as listed")
    revoke.set_defaults(handler=api_key_revoke)


def _shown(info: ApiKeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "prefix": info.prefix,
        "name": info.name,
        "scopes": list(info.scopes),
        "created_at": iso_utc(info.created_at),
        "last_used_at": iso_utc(info.last_used_at),
        "revoked_at": iso_utc(info.revoked_at),
    }


async def api_key_create(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    name = args.name.strip()
    problem = api_keys.name_problem(name) if name else None
    if problem:
        raise CommandError(f"--name: {problem}")
    scopes = api_keys.scopes_of(args.scope or api_keys.DEFAULT_SCOPES)
    assert scopes is not None  # argparse checked the choices
    created = await api_keys.create(store, company, name, CLI, system_clock(), scopes=scopes)
    print_json({**_shown(created.info), "key": created.key})
    print("billportal: the key is shown only now: store it in your backend's secrets", file=sys.stderr)
    return 0


async def api_key_list(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    keys = await api_keys.keys_of(store, company.id)
    if args.json:
        print_json([_shown(k) for k in keys])
        return 0
    if not keys:
        print("no API keys; make one with: billportal api-key create --tenant " + company.username)
        return 0
    for k in keys:
        state = "revoked" if k.revoked_at is not None else "active"
        used = "never used" if k.last_used_at is None else f"last used {human_time(k.last_used_at, company.time_zone)}"
        print(f"{k.id:>5}  {k.prefix}…  {state:<8} {used:<34} {k.name}  [{' '.join(k.scopes)}]")
    return 0


async def api_key_revoke(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    which = api_keys.key_reference(args.key)
    revoked = await api_keys.revoke(store, company, which, CLI, system_clock()) if which is not None else None
    if revoked is None:
        raise CommandError(f"company {company.username!r} has no live API key {args.key[:30]!r}")
    print(f"revoked API key {revoked.prefix}… ({revoked.name or 'unnamed'})")
    return 0
