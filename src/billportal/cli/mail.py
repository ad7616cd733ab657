"""``billportal mail settings|log|statements|deliver|unbounce``: a company's email from a script.

``deliver`` sends due messages until stopped (or once, with ``--once``); every serving process
(and ``billportal webhooks deliver``) also sends them, so it is needed only to catch up.
``statements`` queues a month's statements (the last month by default) to the customers of every
company that turned them on: run it monthly from cron; a month's statement goes once per customer.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services.audit import CLI
from billportal.services.mail import KINDS, MailConfig, MailDeliverer, MailSettings, settings_fields
from billportal.services.statements import Month
from billportal.storage.store import Store


def register(commands: Any) -> None:
    group = commands.add_parser("mail", help="email: a company's choices, its message log, statements, sending")
    actions = group.add_subparsers(dest="action", required=True)
    kinds = ", ".join(kind.value for kind, info in KINDS.items() if info.configurable)

    shown = actions.add_parser("settings", help="which kinds of email the company sends; --on/--off to change")
    shown.add_argument("--tenant", required=True)
    shown.add_argument("--on", action="append", default=[], metavar="KIND", help=f"turn on: {kinds}")
    shown.add_argument("--off", action="append", default=[], metavar="KIND", help="turn off")
    shown.set_defaults(handler=mail_settings)

    log = actions.add_parser("log", help="the company's messages, newest first (JSON)")
    log.add_argument("--tenant", required=True)
    log.add_argument("--limit", type=int, default=50)
    log.set_defaults(handler=mail_log)

    monthly = actions.add_parser("statements", help="queue a month's statements (default: last month)")
    monthly.add_argument("--month", metavar="YYYY-MM")
    monthly.add_argument("--tenant", help="one company only (it must have statements on)")
    monthly.set_defaults(handler=mail_statements)

    unbounce = actions.add_parser("unbounce", help="send to an address that bounced again")
    unbounce.add_argument("--tenant", required=True)
    unbounce.add_argument("address")
    unbounce.set_defaults(handler=mail_unbounce)

    deliver = actions.add_parser("deliver", help="send due messages until stopped (several processes may run it)")
    deliver.add_argument("--once", action="store_true", help="send what is due now, then stop")
    deliver.add_argument("--at", type=int, metavar="UNIX_TIME", help="with --once: as if it were this time")
    deliver.set_defaults(handler=mail_deliver)


async def mail_settings(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    service = MailSettings(store)
    changes = {**dict.fromkeys(args.on, True), **dict.fromkeys(args.off, False)}
    if set(args.on) & set(args.off):
        raise CommandError("a kind is either --on or --off")
    kinds = (
        await service.change(company.id, changes, actor=CLI, now=system_clock())
        if changes
        else await service.kinds(company.id)
    )
    print_json(settings_fields(kinds))
    return 0


async def mail_log(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    if not 1 <= args.limit <= 500:
        raise CommandError("--limit is 1 to 500")
    found = await MailSettings(store).messages(company.id, limit=args.limit)
    print_json(
        [
            {
                "id": m.id,
                "kind": m.kind,
                "to": m.to_address,
                "subject": m.subject,
                "state": m.state,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "created_at": m.created_at,
                "sent_at": m.sent_at,
            }
            for m in found
        ]
    )
    return 0


async def mail_statements(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    now = system_clock()
    if args.month:
        try:
            month = Month.parse(args.month)
        except ValueError:
            raise CommandError("--month is a month written YYYY-MM, such as 2026-11") from None
    else:
        today = datetime.fromtimestamp(now, UTC).date()
        month = Month(today.year, today.month).previous()
    company_id = (await company_named(store, args.tenant)).id if args.tenant else None
    queued = await MailSettings(store).statements(month.key, now=now, company_id=company_id)
    print_json({"month": month.key, "queued": queued})
    return 0


async def mail_unbounce(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    cleared = await MailSettings(store).clear_bounce(company.id, args.address, actor=CLI, now=system_clock())
    if not cleared:
        raise CommandError("that address has not bounced")
    print_json({"cleared": args.address})
    return 0


async def mail_deliver(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    deliverer = MailDeliverer(store, MailConfig.from_settings(settings))
    if args.once:
        tried = await deliverer.run_until_idle(args.at if args.at is not None else system_clock())
        print_json({"tried": tried, "to": deliverer.config.where})
        return 0
    if args.at is not None:
        raise CommandError("--at goes with --once")
    await deliverer.run_forever(system_clock)
    return 0  # pragma: no cover - runs until stopped
