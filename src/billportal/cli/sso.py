"""``billportal sso-url`` and ``billportal sso-explain``: make a link, debug a token."""

from __future__ import annotations

import argparse
import os
from typing import Any

from billportal import _links
from billportal.cli._common import (
    STDIN_OR_ENV_HELP,
    CommandError,
    company_named,
    customer_id_arg,
    print_json,
    secret_arg,
)
from billportal.core import i18n
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services.sso import active_key
from billportal.sso.explain import explain_now, token_from
from billportal.sso.pages import LANDING_HINT, SEED_PAGE_IDS, is_landing
from billportal.storage.store import Store


def register(commands: Any) -> None:
    url = commands.add_parser("sso-url", help="print a sign-in URL for a customer")
    url.add_argument("--tenant", required=True)
    url.add_argument("--customer", required=True)
    url.add_argument(
        "--key",
        help=f"the SSO key (default: $BILLPORTAL_SSO_KEY, else the active key in the database; {STDIN_OR_ENV_HELP})",
    )
    url.add_argument("--ttl", default="1h", help="lifetime: 300, 5m, 1h, 1d (default 1h)")
    url.add_argument(
        "--redirect-to", metavar="PAGE", help=f"page id: {', '.join(SEED_PAGE_IDS)}; or a document's path (/invoices/3)"
    )
    url.add_argument("--issuer", default="billportal-cli")
    url.add_argument("--single-use", action="store_true", help="add a jti so the link works once")
    url.add_argument("--locale", help=f"the portal's language (the token's locale claim): {', '.join(i18n.LOCALES)}")
    url.add_argument("--base-url", help="https://{portal domain} (default from BILLPORTAL_BASE_DOMAIN)")
    url.set_defaults(handler=sso_url)

    explain = commands.add_parser("sso-explain", help="say whether a token would sign in now, and why not")
    explain.add_argument("token", help=f"the token, or the whole sign-in URL ({STDIN_OR_ENV_HELP})")
    explain.add_argument("--tenant", required=True)
    explain.add_argument("--json", action="store_true", help="print the answer as JSON")
    explain.set_defaults(handler=sso_explain)


async def _active_key(store: Store, username: str) -> str:
    key = active_key(await company_named(store, username))
    if key is None:
        raise CommandError(f"company {username[:63]!r} has no active SSO key")
    return key.secret.decode("utf-8")


async def sso_url(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    if args.redirect_to is not None and not is_landing(args.redirect_to):
        raise CommandError(f"--redirect-to: no page {args.redirect_to[:40]!r}; {LANDING_HINT}")
    if args.locale is not None and i18n.shipped(args.locale) is None:
        raise CommandError(f"--locale: no language {args.locale[:40]!r}; one of {', '.join(i18n.LOCALES)}")
    given = secret_arg(args.key, "--key") if args.key else ""
    key = given or os.environ.get("BILLPORTAL_SSO_KEY") or await _active_key(store, args.tenant)
    try:
        url = _links.sign_in_url(
            key,
            args.tenant,
            customer_id_arg(args.customer),
            issuer=args.issuer,
            ttl=args.ttl,
            redirect_to=args.redirect_to,
            single_use=args.single_use,
            base_url=args.base_url or settings.base_url,
            locale=i18n.shipped(args.locale) if args.locale else None,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(url)
    return 0


async def sso_explain(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    token = token_from(secret_arg(args.token, "the token"))
    explanation = await explain_now(token, company, system_clock(), store.customer_exists, store.jti_used)
    if args.json:
        print_json(explanation.as_dict())
    else:
        print(explanation.as_text())
    return 0 if explanation.signs_in else 1
