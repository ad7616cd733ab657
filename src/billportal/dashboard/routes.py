"""The dashboard's routes on ``dashboard.{base domain}`` (the REST API shares the host under /api)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from billportal.dashboard.admins import ADMINS, INVITATION, AdminPages
from billportal.dashboard.auth import AdminAuth
from billportal.dashboard.contacts import CONTACTS_PAGE, ContactPages
from billportal.dashboard.customers import CUSTOMERS, CustomerPages
from billportal.dashboard.documents import DocumentPages, document_routes
from billportal.dashboard.imports import IMPORTS, ImportPages
from billportal.dashboard.mail import EMAIL, MailPages
from billportal.dashboard.refunds import PAYMENTS_LIST, PaymentPages
from billportal.dashboard.views import API_KEYS, COMPANY, PAYMENTS, SSO, Dashboard
from billportal.dashboard.webhooks import WEBHOOKS, WebhookPages
from billportal.web.context import Context


def dashboard_routes(context: Context) -> list[BaseRoute]:
    auth = AdminAuth(context)
    pages = Dashboard(context, auth)
    payments = PaymentPages(context, auth)
    customers = CustomerPages(context, auth)
    contacts = ContactPages(context, auth)
    hooks = WebhookPages(context, auth)
    people = AdminPages(context, auth)
    imported = ImportPages(context, auth)
    mail = MailPages(context, auth)
    get, post = ["GET"], ["POST"]
    return [
        Route("/", pages.home, methods=get),
        Route("/sign-in", auth.sign_in_page, methods=get),
        Route("/sign-in", auth.sign_in, methods=post),
        Route("/sign-out", auth.sign_out, methods=post),
        Route("/account", auth.account, methods=get),
        Route("/account/password", auth.change_password, methods=post),
        Route("/switch", auth.switch_company, methods=post),
        Route(SSO, pages.sso, methods=get),
        Route(f"{SSO}/enabled", pages.set_enabled, methods=post),
        Route(f"{SSO}/keys/rotate", pages.rotate, methods=post),
        Route(f"{SSO}/keys/{{kid}}/reveal", pages.reveal, methods=post),
        Route(f"{SSO}/keys/{{kid}}/revoke", pages.revoke_key, methods=post),
        Route(f"{SSO}/policy", pages.policy, methods=get),
        Route(f"{SSO}/policy", pages.save_policy, methods=post),
        Route(f"{SSO}/try", pages.try_it, methods=get),
        Route(f"{SSO}/try/link", pages.try_link, methods=post),
        Route(f"{SSO}/try/explain", pages.try_explain, methods=post),
        Route(f"{SSO}/log", pages.log, methods=get),
        Route(f"{SSO}/log.csv", pages.log_csv, methods=get),
        Route(f"{SSO}/revoke", pages.revoke_page, methods=get),
        Route(f"{SSO}/revoke/customer", pages.sign_out_customer, methods=post),
        Route(f"{SSO}/revoke/everyone", pages.sign_out_everyone, methods=post),
        Route(f"{SSO}/revoke/links", pages.cut_off, methods=post),
        Route(f"{SSO}/revoke/cutoff", pages.remove_cutoff, methods=post),
        Route(API_KEYS, pages.api_keys, methods=get),
        Route(API_KEYS, pages.create_api_key, methods=post),
        Route(f"{API_KEYS}/{{key_id}}/revoke", pages.revoke_api_key, methods=post),
        Route(COMPANY, pages.company, methods=get),
        Route(COMPANY, pages.save_company, methods=post),
        Route(f"{COMPANY}/logo", pages.save_logo, methods=post),
        Route(PAYMENTS, pages.payments, methods=get),
        Route(PAYMENTS, pages.save_payments, methods=post),
        Route(f"{PAYMENTS}/secrets", pages.save_payment_secrets, methods=post),
        Route(EMAIL, mail.settings, methods=get),
        Route(EMAIL, mail.save, methods=post),
        Route(WEBHOOKS, hooks.endpoints, methods=get),
        Route(WEBHOOKS, hooks.add, methods=post),
        Route(f"{WEBHOOKS}/deliveries", hooks.deliveries, methods=get),
        Route(f"{WEBHOOKS}/{{endpoint_id:int}}/rotate", hooks.rotate, methods=post),
        Route(f"{WEBHOOKS}/{{endpoint_id:int}}/remove", hooks.remove, methods=post),
        Route(f"{WEBHOOKS}/{{endpoint_id:int}}/enabled", hooks.switch, methods=post),
        Route(f"{WEBHOOKS}/{{endpoint_id:int}}/redeliver", hooks.redeliver, methods=post),
        Route("/audit", pages.audit_trail, methods=get),
        Route(CUSTOMERS, customers.customers_list, methods=get),
        Route(f"{CUSTOMERS}/new", customers.new_customer, methods=get),
        Route(f"{CUSTOMERS}/new", customers.create_customer, methods=post),
        Route(f"{CUSTOMERS}/{{customer_id:int}}", customers.customer_detail, methods=get),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/edit", customers.edit_customer, methods=get),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/edit", customers.update_customer, methods=post),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/delete", customers.delete_customer, methods=post),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/portal", customers.open_portal, methods=post),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/contacts", contacts.contacts, methods=get),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/contacts", contacts.add, methods=post),
        Route(f"{CUSTOMERS}/{{customer_id:int}}/contacts/change", contacts.change, methods=post),
        Route(CONTACTS_PAGE, contacts.set_contacts_page, methods=post),
        Route(f"{PAYMENTS_LIST}/{{payment_id:int}}", payments.payment_detail, methods=get),
        Route(f"{PAYMENTS_LIST}/{{payment_id:int}}/refunds", payments.refund, methods=post),
        Route(ADMINS, people.admins, methods=get),
        Route(f"{ADMINS}/invite", people.invite, methods=post),
        Route(f"{ADMINS}/{{admin_id:int}}/role", people.set_role, methods=post),
        Route(f"{ADMINS}/{{admin_id:int}}/remove", people.remove, methods=post),
        Route(INVITATION, people.invitation_page, methods=get),
        Route(INVITATION, people.accept, methods=post),
        *document_routes(DocumentPages(context, auth)),
        Route(IMPORTS, imported.imports_page, methods=get),
        Route(IMPORTS, imported.upload, methods=post),
    ]
