# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""The digest email: what a member should know about their accounts, weekly or daily (docs/alerts.md).

`digest_for(membership)` builds the content (None when the workspace has no
scores: nothing is sent then); `render_digest` makes its HTML and plain-text
parts; `send_due_digests(tenant, now)` sends the digests due at `now` in the
workspace's time zone, each at most once per workspace day. The unsubscribe link
is signed (`unsubscribe_token`) and works once (`unsubscribe`).

A member's accounts: the ones they own; admins and owners of the workspace get all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role, Tenant
from accounts.scoping import tenant_sql
from core.site import site_url
from core.sql import as_uuid, fetch_all, sql_date
from insights.queries.adoption import feature_adoption
from insights.queries.movers import Mover, _user_label_sql, movers
from insights.queries.risk import RiskItem, at_risk
from scoring.selectors import list_days, published_model

from .models import DigestFrequency, DigestSubscription

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "alerts.digest.unsubscribe"
SHOWN = 10  # rows per section


def _url(path: str) -> str:
    return site_url() + path


@dataclass
class PowerUser:
    name: str
    points: float
    account: str
    url: str


@dataclass
class AdoptionChange:
    name: str
    share: float | None
    share_before: float | None

    @property
    def change(self) -> float:
        return round((self.share or 0) - (self.share_before or 0), 1)


@dataclass
class Digest:
    tenant: Tenant
    membership: Membership
    day: date
    since: date
    all_accounts: bool
    at_risk: list[RiskItem]
    at_risk_count: int
    risers: list[Mover]
    fallers: list[Mover]
    power_users: list[PowerUser]
    adoption: list[AdoptionChange]
    links: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str = ""

    def account_url(self, item: Mover) -> str:
        return _url(reverse("scoring:account_detail", args=[self.tenant.slug, item.public_id]))

    @property
    def period_name(self) -> str:
        return "daily" if (self.day - self.since).days == 1 else "weekly"

    @property
    def subject(self) -> str:
        risk = f"{self.at_risk_count} account{'s' if self.at_risk_count != 1 else ''} at risk"
        return f"{self.tenant.product_name} digest for {self.day:%b} {self.day.day}: {risk}"


def _period(frequency: str) -> int:
    return 1 if frequency == DigestFrequency.DAILY else 7


def new_power_users(tenant: Tenant, model, day: date, since: date, owner_id: int | None) -> list[PowerUser]:
    """End users above the 99th percentile on `day` who were not on `since`."""
    mine = "AND (e.owner_id = %s OR a.owner_id = %s)" if owner_id is not None else ""
    scope, scope_params = tenant_sql(tenant, "x")
    sql = f"""SELECT e.public_id, {_user_label_sql("e")}, x.points, COALESCE(NULLIF(a.name, ''), a.group_id)
        FROM scoring_userscore x JOIN events_enduser e ON e.id = x.end_user_id
        LEFT JOIN events_customeraccount a ON a.id = e.account_id
        WHERE {scope} AND x.model_id = %s AND x.day = %s AND x.points > 0 AND x.percentile > 99
          AND NOT EXISTS (SELECT 1 FROM scoring_userscore y WHERE y.end_user_id = x.end_user_id
                          AND y.model_id = x.model_id AND y.day = %s AND y.percentile > 99) {mine}
        ORDER BY x.points DESC, x.end_user_id LIMIT %s"""
    params = [*scope_params, model.pk, sql_date(day), sql_date(since)]
    params += [owner_id, owner_id] if owner_id is not None else []
    rows = fetch_all(sql, [*params, SHOWN])
    return [PowerUser(name or "", float(points), account or "",
                      _url(reverse("scoring:user_detail", args=[tenant.slug, as_uuid(pid)])))
            for pid, name, points, account in rows]


def adoption_changes(tenant: Tenant) -> list[AdoptionChange]:
    """The activities whose share of active users moved most against the previous 30 days."""
    rows = [AdoptionChange(r.name, r.user_share, r.user_share_before) for r in feature_adoption(tenant).rows
            if r.tracked and (r.user_share is not None or r.user_share_before is not None)]
    rows = [r for r in rows if r.change]
    rows.sort(key=lambda r: (-abs(r.change), r.name))
    return rows[:5]


def digest_for(membership: Membership, *, frequency: str | None = None,
               adoption: list[AdoptionChange] | None = None) -> Digest | None:
    """The member's digest on the workspace's latest scored day, or None (no scores yet)."""
    tenant = membership.tenant
    model = published_model(tenant)
    day = list_days(tenant, model).day if model else None
    if day is None:
        return None
    sub = getattr(membership, "_digest", None)
    since = day - timedelta(days=_period(frequency or (sub.frequency if sub else DigestFrequency.WEEKLY)))
    everyone = membership.can(Role.ADMIN)
    owner_id = None if everyone else membership.user_id
    risk = at_risk(tenant, day=day, model=model, owner_id=owner_id)
    moved = movers(tenant, subject="accounts", day=day, days_back=(day - since).days, limit=5, model=model,
                   owner_id=owner_id, not_rising=risk.ids)
    slug = tenant.slug
    return Digest(
        tenant=tenant, membership=membership, day=day, since=since, all_accounts=everyone,
        at_risk=risk.items[:SHOWN], at_risk_count=risk.count, risers=moved["risers"], fallers=moved["fallers"],
        power_users=new_power_users(tenant, model, day, since, owner_id),
        adoption=adoption_changes(tenant) if adoption is None else adoption,
        links={
            "dashboard": _url(reverse("tenant_home", args=[slug])),
            "accounts": _url(reverse("scoring:accounts", args=[slug])),
            "adoption": _url(reverse("insights:adoption", args=[slug])),
            "settings": _url(reverse("alerts:digest_settings", args=[slug])),
        },
    )


def render_digest(digest: Digest) -> tuple[str, str]:
    """(plain text, HTML)."""
    context = {"d": digest}
    return (render_to_string("alerts/email/digest.txt", context),
            render_to_string("alerts/email/digest.html", context))


# --- Unsubscribe ------------------------------------------------------------------------------


def unsubscribe_token(subscription: DigestSubscription) -> str:
    return signing.dumps({"s": str(subscription.public_id), "n": subscription.nonce}, salt=UNSUBSCRIBE_SALT,
                         compress=True)


def unsubscribe_url(subscription: DigestSubscription) -> str:
    return _url(reverse("alerts:unsubscribe", args=[unsubscribe_token(subscription)]))


class BadLink(Exception):
    """A forged, damaged or already used unsubscribe link."""


def subscription_for_token(token: str) -> DigestSubscription:
    """The subscription a link names, checked (signature, then nonce); BadLink otherwise."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise BadLink("This unsubscribe link is not valid.") from None
    # Unscoped: the signed link is what tells the tenant (like an invitation token).
    sub = (DigestSubscription.objects.unscoped().select_related("membership__tenant", "membership__user")
           .filter(public_id=data.get("s")).first())
    if sub is None or sub.nonce != data.get("n"):
        raise BadLink("This unsubscribe link was used already.")
    return sub


@transaction.atomic
def unsubscribe(subscription: DigestSubscription) -> None:
    """Stop the member's digests; a new nonce makes the link work only once."""
    subscription.frequency = DigestFrequency.NEVER
    subscription.unsubscribed_at = timezone.now()
    subscription.nonce = DigestSubscription._meta.get_field("nonce").default()
    subscription.save(update_fields=["frequency", "unsubscribed_at", "nonce"])


def subscription_of(membership: Membership) -> DigestSubscription:
    sub, _ = DigestSubscription.objects.for_tenant(membership.tenant_id).get_or_create(
        membership=membership, defaults={"tenant_id": membership.tenant_id})
    return sub


@transaction.atomic
def digest_set_frequency(*, membership: Membership, frequency: str) -> DigestSubscription:
    sub = subscription_of(membership)
    sub.frequency = DigestFrequency(frequency)
    sub.unsubscribed_at = timezone.now() if frequency == DigestFrequency.NEVER else None
    sub.save(update_fields=["frequency", "unsubscribed_at"])
    return sub


# --- Sending ----------------------------------------------------------------------------------


def is_due(sub: DigestSubscription, local: datetime) -> bool:
    """Due at the workspace's local time `local`: from DIGEST_HOUR on, weekly on DIGEST_WEEKDAY, once a day."""
    if sub.frequency == DigestFrequency.NEVER or local.hour < settings.DIGEST_HOUR:
        return False
    if sub.frequency == DigestFrequency.WEEKLY and local.weekday() != settings.DIGEST_WEEKDAY:
        return False
    return sub.last_sent_day != local.date()


def send_digest(digest: Digest, sub: DigestSubscription) -> None:
    digest.unsubscribe_url = unsubscribe_url(sub)
    text, html = render_digest(digest)
    one_click = digest.unsubscribe_url
    message = EmailMultiAlternatives(
        subject=digest.subject, body=text, to=[digest.membership.user.email],
        headers={"List-Unsubscribe": f"<{one_click}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    message.attach_alternative(html, "text/html")
    message.send()


def send_due_digests(tenant: Tenant, now: datetime | None = None) -> int:
    """Send this workspace's digests due at `now` (its own time zone); returns how many were sent."""
    local = (now or timezone.now()).astimezone(tenant.tzinfo)
    if local.hour < settings.DIGEST_HOUR or published_model(tenant) is None:
        return 0
    members = list(Membership.objects.for_tenant(tenant).select_related("user", "tenant").order_by("pk"))
    adoption = None
    sent = 0
    for membership in members:
        subscription_of(membership)
        with transaction.atomic():
            # Locked: a redelivered task or a second beat waits here and then finds it sent.
            sub = DigestSubscription.objects.for_tenant(tenant).select_for_update().get(membership=membership)
            if not is_due(sub, local) or not membership.user.is_active:
                continue
            membership._digest = sub
            if adoption is None:
                adoption = adoption_changes(tenant)  # the workspace's part: once for every member
            digest = digest_for(membership, adoption=adoption)
            if digest is None:
                return sent  # no scores: nothing for anyone
            sub.last_sent_day, sub.last_sent_at = local.date(), timezone.now()
            sub.save(update_fields=["last_sent_day", "last_sent_at"])
            send_digest(digest, sub)  # an error rolls the mark back: the next beat tries again
            sent += 1
    return sent
