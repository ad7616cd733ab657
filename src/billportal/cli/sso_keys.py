"""``billportal sso-key``: a company's SSO keys and revocations, for operators (as in the dashboard)."""

from __future__ import annotations

import argparse
from typing import Any

from billportal.cli._common import CommandError, company_named, customer_id_arg, print_json
from billportal.core.clock import human_time, iso_utc, system_clock
from billportal.core.config import Settings
from billportal.services import audit
from billportal.services import sso as management
from billportal.storage.store import Store


def register(commands: Any) -> None:
    sso_key = commands.add_parser("sso-key", help="a company's SSO keys").add_subparsers(dest="action", required=True)

    listing = sso_key.add_parser("list", help="the keys: kid, state, created, last used (never the key)")
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=key_list)

    rotate = sso_key.add_parser("rotate", help="make a new active key; prints it (JSON)")
    rotate.add_argument("--tenant", required=True)
    rotate.add_argument(
        "--grace",
        choices=list(management.GRACE_PERIODS),
        default="24h",
        help="how long the old key still signs in (default 24h)",
    )
    rotate.set_defaults(handler=key_rotate)

    revoke = sso_key.add_parser("revoke", help="revoke a retiring key before its grace period ends")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("--kid", required=True)
    revoke.set_defaults(handler=key_revoke)

    cutoff = sso_key.add_parser(
        "revoke-before-now", help="refuse every link issued before now (and every link without iat)"
    )
    cutoff.add_argument("--tenant", required=True)
    cutoff.set_defaults(handler=key_revoke_before_now)

    sign_out = sso_key.add_parser("sign-out", help="sign one customer out everywhere")
    sign_out.add_argument("--tenant", required=True)
    sign_out.add_argument("--customer", required=True)
    sign_out.set_defaults(handler=key_sign_out)


def _state(state: str, retiring_until: int | None, now: int) -> str:
    if state == "retiring" and (retiring_until is None or retiring_until <= now):
        return "retired"
    return state


async def key_list(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    now = system_clock()
    keys = await management.sso_keys_of(store, company.id)
    if args.json:
        print_json(
            [
                {
                    "kid": k.kid,
                    "state": _state(k.state, k.retiring_until, now),
                    "weak": k.weak,
                    "created": iso_utc(k.created_at),
                    "last_used": iso_utc(k.last_used_at),
                    "retiring_until": iso_utc(k.retiring_until),
                    "revoked": iso_utc(k.revoked_at),
                }
                for k in keys
            ]
        )
        return 0
    zone = company.time_zone
    line = "{:<18} {:<9} {:<26} {:<26} {}"
    print(line.format("KID", "STATE", "CREATED", "LAST USED", "NOTE"))
    for k in keys:
        state = _state(k.state, k.retiring_until, now)
        note = []
        if k.retiring_until and state == "retiring":
            note.append(f"signs in until {human_time(k.retiring_until, zone)}")
        if k.revoked_at:
            note.append(f"revoked {human_time(k.revoked_at, zone)}")
        if k.weak:
            note.append("WEAK: rotate to a generated key")
        print(
            line.format(k.kid, state, human_time(k.created_at, zone), human_time(k.last_used_at, zone), "; ".join(note))
        )
    return 0


async def key_rotate(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    rotation = await management.rotate(store, company, args.grace, audit.CLI, system_clock())
    print_json(
        {
            "kid": rotation.kid,
            "key": rotation.key,
            "previous_kid": rotation.previous_kid,
            "previous_retiring_until": iso_utc(rotation.retiring_until),
        }
    )
    return 0


async def key_revoke(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    if not await management.revoke(store, company, args.kid, audit.CLI, system_clock()):
        raise CommandError(
            f"{company.username} has no retiring key {args.kid[:64]!r}; the active key is replaced by rotating"
        )
    print(f"revoked {args.kid}")
    return 0


async def key_revoke_before_now(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    now = system_clock()
    await management.cut_off_links(store, company, audit.CLI, now)
    cutoff = human_time(now, company.time_zone, seconds=True)
    print(f"links for {company.username} issued before {cutoff} are refused from now on")
    return 0


async def key_sign_out(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    customer_id = customer_id_arg(args.customer)
    if not await store.customer_exists(company.id, customer_id):
        raise CommandError(f"{company.username} has no customer {customer_id}")
    ended = await management.sign_out_customer(store, company, customer_id, audit.CLI, system_clock())
    print(f"customer {customer_id} signed out: {ended} session{'s' if ended != 1 else ''} ended")
    return 0
