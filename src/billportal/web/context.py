"""What every view needs: settings, storage, the services over it, and the clock (which tests may move)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services.billing import Billing
from billportal.services.mail import MailSettings
from billportal.services.payments import Payments
from billportal.services.webhooks import Webhooks
from billportal.storage.records import Company
from billportal.storage.store import Store
from billportal.web.sessions import Timeouts


@dataclass
class Context:
    settings: Settings
    store: Store
    clock: Callable[[], int] = system_clock
    timeouts: Timeouts = field(init=False)
    billing: Billing = field(init=False)
    payments: Payments = field(init=False)
    webhooks: Webhooks = field(init=False)
    mail: MailSettings = field(init=False)

    def __post_init__(self) -> None:
        self.timeouts = Timeouts(self.settings.session_idle_seconds, self.settings.session_absolute_seconds)
        self.billing = Billing(self.store)
        self.payments = Payments(self.store)
        self.webhooks = Webhooks(self.store, test_mode=self.settings.webhooks_test_mode)
        self.mail = MailSettings(self.store)


SITE_KEY = "billportal.site"


async def company_for(request: Request, context: Context) -> Company | None:
    """The company whose portal host this request came to (None: no such company)."""
    username: str = request.scope[SITE_KEY].username
    return await context.store.company(username)


def client_ip(request: Request) -> str:
    # uvicorn rewrites the client from X-Forwarded-For only for trusted proxies
    # (BILLPORTAL_TRUSTED_PROXIES), so this is never a header an attacker chose.
    return request.client.host if request.client else ""
