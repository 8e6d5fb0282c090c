"""Writes of the alerts app: rules, endpoints, the evaluation after a scoring run, and deliveries.

Exactly once, from the user's point of view:
- evaluation records one `AlertFiring` per (rule, subject, day, trigger), a
  unique constraint; an insert that finds the row sends nothing (a re-run, a
  redelivered task, a recompute of the same day);
- the firing's deliveries are created in the same transaction, one per
  action (unique too), and enqueued on commit;
- a delivery is claimed with a conditional UPDATE (pending/retrying -> sending)
  before it is sent, so two copies of the task never both send it; a worker
  that dies while sending leaves it "sending" and the sweep retries it after
  ALERTS_CLAIM_TIMEOUT (a receiver may then see an event id twice: webhooks
  carry the key as their id so it can dedupe).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Tenant, User
from core.site import site_url
from events.models import CustomerAccount, EndUser
from scoring.models import RunStatus, ScoringRun
from scoring.selectors import published_model

from . import payloads, safety, triggers
from .models import (
    ActionKind,
    AlertAction,
    AlertFiring,
    AlertRule,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Subject,
    WebhookEndpoint,
)

log = logging.getLogger(__name__)

RULE_FIELDS = (
    "name",
    "subject",
    "trigger",
    "tier_from",
    "tier_to",
    "percent",
    "days",
    "filter_plan",
    "filter_owner",
    "filter_trait_key",
    "filter_trait_value",
    "filter_segment",
)


# --- Rules and endpoints -----------------------------------------------------------------------


def _check_member(tenant: Tenant, user: User | None, field: str) -> None:
    if user is not None and not Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise ValidationError({field: "Choose a member of this workspace."})


def _set_actions(rule: AlertRule, actions: list[dict]) -> None:
    """Replace the rule's actions. Each: {"kind", "endpoint"?, "slack_url"?, "email_owner"?, "email_user_ids"?}."""
    if not actions:
        raise ValidationError({"actions": "Give the rule at least one action (webhook, Slack or email)."})
    member_ids = set(Membership.objects.for_tenant(rule.tenant).values_list("user_id", flat=True))
    keep = []
    for spec in actions:
        kind = spec["kind"]
        action = AlertAction(tenant=rule.tenant, rule=rule, kind=kind)
        if kind == ActionKind.WEBHOOK:
            endpoint = spec.get("endpoint")
            if endpoint is None or endpoint.tenant_id != rule.tenant_id:
                raise ValidationError({"endpoint": "Choose one of this workspace's webhook endpoints."})
            action.endpoint = endpoint
        elif kind == ActionKind.SLACK:
            url = (spec.get("slack_url") or "").strip()
            try:
                safety.check_url(url)
            except safety.UnsafeTarget as error:
                raise ValidationError({"slack_url": str(error)}) from None
            action.slack_url = url
        elif kind == ActionKind.EMAIL:
            ids = [int(i) for i in spec.get("email_user_ids") or []]
            if set(ids) - member_ids:
                raise ValidationError({"email_members": "Email only members of this workspace."})
            action.email_owner, action.email_user_ids = bool(spec.get("email_owner")), sorted(set(ids))
            if not action.email_owner and not ids:
                raise ValidationError({"email_members": "Email the owner, chosen members, or both."})
        else:
            raise ValidationError({"actions": f"Unknown action {kind!r}."})
        keep.append(action)
    AlertAction.objects.for_tenant(rule.tenant).filter(rule=rule).delete()
    AlertAction.objects.bulk_create(keep)


@transaction.atomic
def rule_save(
    *, tenant: Tenant, rule: AlertRule | None = None, actions: list[dict], created_by: User | None = None, **fields
) -> AlertRule:
    """Create (rule=None) or edit a rule and replace its actions."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown rule field {sorted(unknown)[0]}.")
    if rule is None:
        rule = AlertRule(tenant=tenant, created_by=created_by)
    elif rule.tenant_id != tenant.pk:
        raise ValidationError("That rule belongs to another workspace.")
    for name, value in fields.items():
        setattr(rule, name, value)
    _check_member(tenant, rule.filter_owner, "filter_owner")
    rule.updated_at = timezone.now()
    rule.full_clean()
    rule.save()
    _set_actions(rule, actions)
    return rule


def rule_set_paused(*, rule: AlertRule, paused: bool) -> AlertRule:
    rule.paused = paused
    rule.updated_at = timezone.now()
    rule.save(update_fields=["paused", "updated_at"])
    return rule


def rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


@transaction.atomic
def endpoint_create(*, tenant: Tenant, name: str, url: str, owner: User | None) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (the only time the secret is returned)."""
    try:
        safety.check_url(url)
    except safety.UnsafeTarget as error:
        raise ValidationError({"url": str(error)}) from None
    endpoint = WebhookEndpoint(
        tenant=tenant, name=name, url=url.strip(), owner=owner, secret=WebhookEndpoint.new_secret()
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint, endpoint.secret


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    endpoint.save(update_fields=["disabled_at", "disabled_reason", "failing_since"])
    return endpoint


# --- Evaluation ----------------------------------------------------------------------------------


def days_to_evaluate(run: ScoringRun) -> list[date]:
    """The days a succeeded run changed, limited to recent ones.

    A backfill after publishing recomputes 90 days: alerting on 90 days of history
    would flood every channel, so only days within ALERTS_EVALUATE_RECENT_DAYS of
    the tenant's today count (a recompute of last week alerts on nothing new
    anyway: its firings exist already).
    """
    if run.status != RunStatus.SUCCEEDED:
        return []
    oldest = run.tenant.today() - timedelta(days=settings.ALERTS_EVALUATE_RECENT_DAYS - 1)
    return sorted(d for d in (date.fromisoformat(k) for k in run.day_rows) if d >= oldest)


def evaluate_run(run_id: int) -> int:
    """After a scoring run: evaluate every active rule on the days it changed. Returns firings created."""
    run = ScoringRun.objects.unscoped().select_related("tenant", "model").filter(pk=run_id).first()
    if run is None or published_model(run.tenant) != run.model:
        return 0  # a draft's preview or a retired version: alerts follow the published scores only
    return evaluate_days(run.tenant, days_to_evaluate(run))


def evaluate_days(tenant: Tenant, days: list[date]) -> int:
    if not days:
        return 0
    model = published_model(tenant)
    created = 0
    for rule in AlertRule.objects.for_tenant(tenant).filter(paused=False).select_related("tenant"):
        actions = list(AlertAction.objects.for_tenant(tenant).filter(rule=rule).select_related("endpoint"))
        for day in days:
            for match in triggers.matches(rule, day, model):
                if record_firing(rule, day, match, actions) is not None:
                    created += 1
    return created


def record_firing(rule: AlertRule, day: date, match: triggers.Match, actions: list[AlertAction]) -> AlertFiring | None:
    """Insert the firing and its deliveries once; None when the key exists (sent already)."""
    key = AlertFiring.make_key(rule, rule.subject, match.subject_id, day, rule.trigger)
    try:
        with transaction.atomic():
            firing = AlertFiring.objects.create(
                tenant=rule.tenant,
                rule=rule,
                subject=rule.subject,
                subject_id=match.subject_id,
                day=day,
                trigger=rule.trigger,
                key=key,
                subject_public_id=match.public_id,
                subject_name=match.name[:255],
                reason=match.reason[:500],
                details=match.details,
            )
            deliveries = [
                Delivery(tenant=rule.tenant, firing=firing, action=a, kind=a.kind, endpoint=a.endpoint) for a in actions
            ]
            Delivery.objects.bulk_create(deliveries)
            ids = list(Delivery.objects.for_tenant(rule.tenant).filter(firing=firing).values_list("pk", flat=True))
    except IntegrityError:
        return None  # this rule already fired for this subject, day and trigger
    _enqueue(ids)
    return firing


def _enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from .tasks import deliver

    def send():
        for pk in delivery_ids:
            deliver.apply_async((pk,), countdown=countdown)

    transaction.on_commit(send, robust=True)


def preview_last_week(rule: AlertRule, end: date | None = None) -> list[tuple[date, triggers.Match]]:
    """Which subjects this rule would have fired for over the last 7 scored days (nothing recorded)."""
    from scoring.selectors import latest_day

    model = published_model(rule.tenant)
    if model is None:
        return []
    end = end or latest_day(rule.tenant, model) or rule.tenant.today()
    if end is None:
        return []
    by_day = {end - timedelta(days=i): triggers.matches(rule, end - timedelta(days=i), model) for i in range(7)}
    return triggers.first_of(by_day)


# --- Deliveries ------------------------------------------------------------------------------------


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    claimed = (
        Delivery.objects.unscoped()
        .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now)
        .update(status=DeliveryStatus.SENDING, claimed_at=now)
    )
    if not claimed:
        return None  # sent already, not due yet, or another copy of the task has it
    return (
        Delivery.objects.unscoped()
        .select_related("firing__rule", "firing__tenant", "endpoint", "action")
        .get(pk=delivery_id)
    )


def deliver(delivery_id: int, *, replay: bool = False) -> Delivery | None:
    """Send one delivery once (claimed first); record the attempt; schedule a retry when worth it."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    if delivery.kind == ActionKind.WEBHOOK and delivery.endpoint and not delivery.endpoint.is_active:
        return _finish(delivery, DeliveryStatus.FAILED, "The endpoint is disabled.")
    number = delivery.attempts + 1
    try:
        response = _send(delivery, replay)
    except Exception as error:  # noqa: BLE001 - a bug or SMTP failure is recorded, then retried
        log.exception("alert delivery %s failed", delivery.pk)
        response = safety.Response(None, 0, "", f"{type(error).__name__}: {str(error)[:200]}")
    DeliveryAttempt.objects.create(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        endpoint=delivery.endpoint,
        number=number,
        replay=replay,
        status_code=response.status,
        latency_ms=response.latency_ms,
        ok=response.ok,
        response_excerpt=response.excerpt[:1024],
        error=response.error[:500],
    )
    delivery.attempts = number
    if delivery.endpoint_id:
        _endpoint_health(delivery.endpoint, response.ok)
    if response.ok:
        return _finish(delivery, DeliveryStatus.SUCCEEDED, "")
    message = response.error or f"HTTP {response.status}"
    delays = settings.ALERTS_RETRY_DELAYS
    if response.retryable and number <= len(delays) and (delivery.endpoint is None or delivery.endpoint.is_active):
        delay = delays[number - 1]
        delivery.status, delivery.last_error = DeliveryStatus.RETRYING, message
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save(update_fields=["status", "last_error", "next_attempt_at", "attempts"])
        # Short waits as a countdown; long ones (hours) are picked up by the beat sweep, since a
        # countdown past the broker's visibility timeout would be delivered twice.
        if delay <= settings.TASK_RETRY_BACKOFF_MAX:
            _enqueue([delivery.pk], countdown=delay)
        return delivery
    return _finish(delivery, DeliveryStatus.FAILED, message)


def _finish(delivery: Delivery, status: str, error: str) -> Delivery:
    delivery.status, delivery.last_error = status, error[:500]
    delivery.save(update_fields=["status", "last_error", "attempts"])
    return delivery


def _send(delivery: Delivery, replay: bool) -> safety.Response:
    firing = delivery.firing
    if delivery.kind == ActionKind.WEBHOOK:
        body = payloads.body_of(payloads.event(firing, replay=replay))
        _ts, signature = payloads.sign(delivery.endpoint.secret, body)
        headers = {payloads.SIGNATURE_HEADER: signature, payloads.EVENT_ID_HEADER: firing.key}
        return safety.post_json(delivery.endpoint.url, body, headers)
    action = delivery.action
    if action is None:
        return safety.Response(None, 0, "", "The rule's action was removed.")
    if delivery.kind == ActionKind.SLACK:
        return safety.post_json(action.slack_url, payloads.body_of(payloads.slack_message(firing)), {})
    recipients = email_recipients(firing, action)
    if not recipients:
        return safety.Response(None, 0, "", "Nobody to email: the subject has no owner.")
    subject, body = payloads.email_message(firing)
    send_mail(subject, body, None, recipients)
    return safety.Response(250, 0, f"Sent to {len(recipients)} recipient(s).")


def email_recipients(firing: AlertFiring, action: AlertAction) -> list[str]:
    tenant_id = firing.tenant_id
    members = set(Membership.objects.for_tenant(tenant_id).values_list("user_id", flat=True))
    ids = {i for i in action.email_user_ids if i in members}
    if action.email_owner:
        owner_id = _owner_of(firing)
        if owner_id in members:
            ids.add(owner_id)
    return sorted(User.objects.filter(pk__in=ids, is_active=True).values_list("email", flat=True))


def _owner_of(firing: AlertFiring) -> int | None:
    if firing.subject == Subject.ACCOUNTS:
        return (
            CustomerAccount.objects.for_tenant(firing.tenant_id)
            .filter(pk=firing.subject_id)
            .values_list("owner_id", flat=True)
            .first()
        )
    row = (
        EndUser.objects.for_tenant(firing.tenant_id)
        .filter(pk=firing.subject_id)
        .values_list("owner_id", "account__owner_id")
        .first()
    )
    return (row[0] or row[1]) if row else None


def _endpoint_health(endpoint: WebhookEndpoint, ok: bool) -> None:
    """Track how long an endpoint has failed; after ALERTS_DISABLE_AFTER_HOURS, disable it and tell its owner."""
    now = timezone.now()
    if ok:
        if endpoint.failing_since:
            WebhookEndpoint.objects.for_tenant(endpoint.tenant_id).filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.for_tenant(endpoint.tenant_id).filter(
            pk=endpoint.pk, failing_since__isnull=True
        ).update(failing_since=now)
        endpoint.failing_since = now
        return
    if endpoint.is_active and now - endpoint.failing_since >= timedelta(hours=settings.ALERTS_DISABLE_AFTER_HOURS):
        hours, since = settings.ALERTS_DISABLE_AFTER_HOURS, endpoint.failing_since
        reason = f"Every delivery failed for {hours:g} hours (since {since:%Y-%m-%d %H:%M} UTC)."
        changed = (
            WebhookEndpoint.objects.for_tenant(endpoint.tenant_id)
            .filter(pk=endpoint.pk, disabled_at__isnull=True)
            .update(disabled_at=now, disabled_reason=reason)
        )
        endpoint.disabled_at, endpoint.disabled_reason = now, reason
        if changed and endpoint.owner and endpoint.owner.email:
            _email_disabled(endpoint)


def _email_disabled(endpoint: WebhookEndpoint) -> None:
    from django.urls import reverse

    tenant = Tenant.objects.get(pk=endpoint.tenant_id)
    url = site_url() + reverse("alerts:endpoint", args=[tenant.slug, endpoint.public_id])
    send_mail(
        f"[{tenant.name}] Webhook endpoint “{endpoint.name}” was disabled",
        f"{endpoint.disabled_reason}\n\nNo more alerts are sent to it until you enable it again. "
        f"Its delivery log shows what it answered: {url}\n",
        None,
        [endpoint.owner.email],
        fail_silently=True,
    )


@transaction.atomic
def delivery_replay(*, delivery: Delivery) -> Delivery:
    """Send a delivery again now (a Replay button): same event id, `replay: true` in the body."""
    delivery = (
        Delivery.objects.for_tenant(delivery.tenant_id)
        .select_related("endpoint")
        .select_for_update(of=("self",))
        .get(pk=delivery.pk)
    )
    if delivery.status == DeliveryStatus.SENDING:
        raise ValidationError("This delivery is being sent right now.")
    if delivery.endpoint_id and not delivery.endpoint.is_active:
        raise ValidationError("The endpoint is disabled: enable it first.")
    Delivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
    )
    from .tasks import replay

    transaction.on_commit(lambda: replay.delay(delivery.pk), robust=True)
    return delivery


def deliveries_due() -> list[int]:
    """Beat: deliveries whose retry is due, and claims older than ALERTS_CLAIM_TIMEOUT (a dead worker)."""
    from accounts import rls

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ALERTS_CLAIM_TIMEOUT)
    with rls.bypass("beat: alert deliveries due, across tenants"):
        Delivery.objects.unscoped().filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale).update(
            status=DeliveryStatus.RETRYING, next_attempt_at=now
        )
        return list(
            Delivery.objects.unscoped()
            .filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now)
            .values_list("pk", flat=True)[:500]
        )
