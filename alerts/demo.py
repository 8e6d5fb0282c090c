"""The demo workspace's alerts: two rules, a webhook endpoint on our own dev receiver, and their first firings.

- "Tier dropped to low" (accounts) -> email the account's owner;
- "Account at risk" (accounts) -> a signed webhook to `/dev/alerts-receiver/<endpoint>/`, a
  development-only view of this site that checks the signature and answers 200, so the
  endpoint's delivery log shows real requests, latencies and answers.

While seeding, the site may not be running yet: the deliveries are then sent to a
short-lived server of this same Django app on SITE_URL's port (only when that port
is free and local). Idempotent: rules and endpoint are found by name, firings by key.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership, Role, Tenant
from core.site import site_url
from events.models import CustomerAccount

from . import services
from .models import ActionKind, AlertRule, WebhookEndpoint

LOW_RULE = "Tier dropped to low"
RISK_RULE = "Account at risk"
ENDPOINT_NAME = "Demo receiver (this site, development only)"
# The days evaluated while seeding: enough to show a few alerts, not a flood of emails.
SEED_DAYS = 2


def seed_demo_alerts(tenant: Tenant) -> str:
    owner = Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_related("user").first()
    assign_demo_owners(tenant)  # so "email the owner" has someone
    with transaction.atomic():
        _rule(
            tenant,
            LOW_RULE,
            trigger="tier_changed",
            tier_from="higher",
            tier_to="low",
            actions=[{"kind": ActionKind.EMAIL, "email_owner": True}],
        )
        endpoint = _endpoint(tenant, owner.user if owner else None)
        if endpoint is not None:
            _rule(tenant, RISK_RULE, trigger="at_risk", actions=[{"kind": ActionKind.WEBHOOK, "endpoint": endpoint}])
    today = tenant.today()
    with _site_answering():
        created = services.evaluate_days(tenant, [today - timedelta(days=i) for i in range(SEED_DAYS)])
    note = "" if endpoint is not None else " (no webhook: ALERTS_ALLOW_LOCAL_TARGETS is off)"
    return f"Alerts: {AlertRule.objects.for_tenant(tenant).count()} rules, {created} new alert(s){note}."


def _rule(tenant, name, *, actions, **fields):
    if AlertRule.objects.for_tenant(tenant).filter(name=name).exists():
        return
    services.rule_save(tenant=tenant, name=name, subject="accounts", actions=actions, **fields)


def _endpoint(tenant, owner) -> WebhookEndpoint | None:
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).filter(name=ENDPOINT_NAME).first()
    if endpoint is not None:
        return endpoint
    if not (settings.DEBUG and settings.ALERTS_ALLOW_LOCAL_TARGETS):
        return None
    endpoint = WebhookEndpoint(tenant=tenant, name=ENDPOINT_NAME, owner=owner, secret=WebhookEndpoint.new_secret())
    # Its URL names its own id, so the receiver can find the secret to check the signature with.
    endpoint.url = site_url() + reverse("alerts:dev_receiver", args=[endpoint.public_id])
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@contextlib.contextmanager
def _site_answering():
    """Serve this app on SITE_URL's local port for the block, unless something (the site) already listens there."""
    parts = urlsplit(site_url())
    host, port = parts.hostname or "", parts.port or 80
    if host not in ("127.0.0.1", "localhost") or not settings.DEBUG or _listening(host, port):
        yield
        return
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    try:
        server = make_server(host, port, get_wsgi_application(), handler_class=Quiet)
    except OSError:
        yield
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def assign_demo_owners(tenant: Tenant) -> str:
    """Give every demo account without an owner one of the workspace's editors or admins, in turn, so a
    newcomer's digest preview and the accounts list's owner column show something. Keeps owners already set."""
    owners = [m.user_id for m in Membership.objects.for_tenant(tenant).order_by("user__email")
              if m.role in (Role.EDITOR, Role.ADMIN)]
    if not owners:
        return "Demo owners: no editor or admin to own accounts."
    accounts = list(CustomerAccount.objects.for_tenant(tenant).filter(owner__isnull=True).order_by("group_id"))
    for i, account in enumerate(accounts):
        account.owner_id = owners[i % len(owners)]
    CustomerAccount.objects.for_tenant(tenant).bulk_update(accounts, ["owner"])
    return f"Demo owners: {len(accounts)} account(s) given an owner."
