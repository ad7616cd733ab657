"""``billportal webhooks add|list|change|rotate|remove|log|redeliver|deliver``: a company's webhooks from a script.

A new signing secret is printed once, in the JSON answer of ``add`` and ``rotate``, and never
again. ``deliver`` sends due events until stopped (or once, with ``--once``); every serving
process also sends them in the background, so it is needed only where that is turned off
(``BILLPORTAL_WEBHOOKS_DELIVER=0``) or to catch up.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.core.errors import NotFound
from billportal.services.audit import CLI
from billportal.services.events import EVENT_TYPES
from billportal.services.mail import MailConfig, MailDeliverer
from billportal.services.webhooks import DEFAULT_OVERLAP, Deliverer, Webhooks, delivery_fields, endpoint_fields
from billportal.storage.store import Store

T = TypeVar("T")


def register(commands: Any) -> None:
    group = commands.add_parser("webhooks", help="a company's webhook endpoints, and delivering events").add_subparsers(
        dest="action", required=True
    )
    add = group.add_parser("add", help="add an endpoint; prints its signing secret once")
    add.add_argument("--tenant", required=True)
    add.add_argument("--url", required=True, help="https URL (http://localhost only in test mode)")
    add.add_argument("--events", required=True, help=f"comma-separated event types, or 'all': {', '.join(EVENT_TYPES)}")
    add.add_argument("--description", default="")
    add.set_defaults(handler=webhooks_add)

    listing = group.add_parser("list", help="the company's endpoints (JSON; never a secret)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(handler=webhooks_list)

    change = group.add_parser("change", help="change an endpoint's URL or events, or turn it on or off")
    change.add_argument("--tenant", required=True)
    change.add_argument("endpoint", type=int)
    change.add_argument("--url")
    change.add_argument("--events")
    change.add_argument("--description")
    change.add_argument("--enable", dest="enabled", action="store_const", const=True)
    change.add_argument("--disable", dest="enabled", action="store_const", const=False)
    change.set_defaults(handler=webhooks_change)

    rotate = group.add_parser("rotate", help="a new signing secret, printed once; the old one signs too meanwhile")
    rotate.add_argument("--tenant", required=True)
    rotate.add_argument("endpoint", type=int)
    rotate.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, metavar="SECONDS", help="default 86400")
    rotate.set_defaults(handler=webhooks_rotate)

    remove = group.add_parser("remove", help="remove an endpoint and its delivery log")
    remove.add_argument("--tenant", required=True)
    remove.add_argument("endpoint", type=int)
    remove.set_defaults(handler=webhooks_remove)

    log = group.add_parser("log", help="an endpoint's deliveries and their attempts, newest first (JSON)")
    log.add_argument("--tenant", required=True)
    log.add_argument("endpoint", type=int)
    log.add_argument("--limit", type=int, default=50)
    log.set_defaults(handler=webhooks_log)

    again = group.add_parser("redeliver", help="send one event again, or every failed one since a time")
    again.add_argument("--tenant", required=True)
    again.add_argument("endpoint", type=int)
    what = again.add_mutually_exclusive_group(required=True)
    what.add_argument("--event", metavar="MSG_ID")
    what.add_argument("--failed-since", type=int, metavar="UNIX_TIME")
    again.set_defaults(handler=webhooks_redeliver)

    deliver = group.add_parser("deliver", help="send due events until stopped (several processes may run it)")
    deliver.add_argument("--once", action="store_true", help="send what is due now, then stop")
    deliver.add_argument("--at", type=int, metavar="UNIX_TIME", help="with --once: as if it were this time")
    deliver.set_defaults(handler=webhooks_deliver)


def _types(raw: str) -> list[str]:
    if raw.strip() == "all":
        return list(EVENT_TYPES)
    return [part.strip() for part in raw.split(",") if part.strip()]


async def _found(work: Awaitable[T]) -> T:
    try:
        return await work
    except NotFound as exc:
        raise CommandError(str(exc)) from None


def _service(store: Store, settings: Settings) -> Webhooks:
    return Webhooks(store, test_mode=settings.webhooks_test_mode)


async def webhooks_add(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    added = await _service(store, settings).add(
        company.id, args.url, _types(args.events), description=args.description, actor=CLI, now=system_clock()
    )
    print_json({**endpoint_fields(added.endpoint), "secret": added.secret})
    return 0


async def webhooks_list(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    print_json([endpoint_fields(endpoint) for endpoint in await _service(store, settings).endpoints(company.id)])
    return 0


async def webhooks_change(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    changes: dict[str, Any] = {}
    if args.url is not None:
        changes["url"] = args.url
    if args.events is not None:
        changes["types"] = _types(args.events)
    if args.description is not None:
        changes["description"] = args.description
    if args.enabled is not None:
        changes["enabled"] = args.enabled
    if not changes:
        raise CommandError("nothing to change: give --url, --events, --description, --enable or --disable")
    service = _service(store, settings)
    changed = await _found(service.change(company.id, args.endpoint, actor=CLI, now=system_clock(), **changes))
    print_json(endpoint_fields(changed))
    return 0


async def webhooks_rotate(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    service = _service(store, settings)
    rotated = await _found(
        service.rotate(company.id, args.endpoint, overlap=args.overlap, actor=CLI, now=system_clock())
    )
    print_json({**endpoint_fields(rotated.endpoint), "secret": rotated.secret})
    return 0


async def webhooks_remove(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    await _found(_service(store, settings).remove(company.id, args.endpoint, actor=CLI, now=system_clock()))
    print_json({"object": "webhook_endpoint", "id": args.endpoint, "deleted": True})
    return 0


async def webhooks_log(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    if not 1 <= args.limit <= 500:
        raise CommandError("--limit is 1 to 500")
    found = await _found(_service(store, settings).deliveries(company.id, args.endpoint, limit=args.limit))
    print_json([delivery_fields(d, tries) for d, tries in found])
    return 0


async def webhooks_redeliver(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    count = await _found(
        _service(store, settings).redeliver(
            company.id,
            args.endpoint,
            event_id=args.event,
            failed_since=args.failed_since,
            actor=CLI,
            now=system_clock(),
        )
    )
    print_json({"redelivering": count})
    return 0


async def webhooks_deliver(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    deliverer = Deliverer(store, test_mode=settings.webhooks_test_mode)
    if args.once:
        tried = await deliverer.run_until_idle(args.at if args.at is not None else system_clock())
        print_json({"tried": tried})
        return 0
    if args.at is not None:
        raise CommandError("--at goes with --once")
    mailer = MailDeliverer(store, MailConfig.from_settings(settings))  # email goes out beside the events
    await asyncio.gather(deliverer.run_forever(system_clock), mailer.run_forever(system_clock))
    return 0  # pragma: no cover - runs until stopped
