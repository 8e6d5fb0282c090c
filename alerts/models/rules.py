"""Alert rules (playbooks), their actions, webhook endpoints, firings and deliveries.

A rule watches one kind of subject (end users or customer accounts) for one
trigger on a scored day. Every time it matches a subject it records one
`AlertFiring`, unique by (rule, subject, day, trigger): that key is what makes
a re-run, a redelivered task or a recompute harmless (the second insert finds
the row and sends nothing). Each firing has one `Delivery` per action of the
rule, and each try of a delivery is a `DeliveryAttempt` row (the log).
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import TenantOwned
from core.sql import TRAIT_KEY


class Subject(models.TextChoices):
    ACCOUNTS = "accounts", "Customer accounts"
    USERS = "users", "End users"


class Trigger(models.TextChoices):
    TIER_CHANGED = "tier_changed", "Tier changed"
    AT_RISK = "at_risk", "Entered at risk"
    POINTS_FELL = "points_fell", "Points fell by X% in N days"
    POINTS_ROSE = "points_rose", "Points rose by X% in N days"
    POWER_USER = "power_user", "Became a power user"
    FIRST_EVENT = "first_event", "First event (a new account or user)"
    NO_EVENT = "no_event", "No event for N days"


# Triggers that need a number of days / a percentage.
NEEDS_DAYS = {Trigger.POINTS_FELL, Trigger.POINTS_ROSE, Trigger.NO_EVENT}
NEEDS_PERCENT = {Trigger.POINTS_FELL, Trigger.POINTS_ROSE}
ACCOUNTS_ONLY = {Trigger.AT_RISK}
USERS_ONLY = {Trigger.POWER_USER}

TIER_CHOICES = [
    ("", "any tier"),
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
    ("new", "New"),
    ("dormant", "Dormant"),
]
# "From" may also be relative to the tier it changed to: a drop or a rise on the ladder (not "new").
FROM_CHOICES = [*TIER_CHOICES, ("higher", "any higher tier (a drop)"), ("lower", "any lower tier (a rise)")]


class AlertRule(TenantOwned):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=10, choices=Subject.choices, default=Subject.ACCOUNTS)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    # Trigger parameters (which ones apply depends on the trigger; `clean` checks them).
    tier_from = models.CharField(max_length=10, choices=FROM_CHOICES, blank=True)
    tier_to = models.CharField(max_length=10, choices=TIER_CHOICES, blank=True)
    percent = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(365)])
    # Optional filters on the subject (all given ones must match).
    filter_plan = models.CharField("plan", max_length=100, blank=True)
    filter_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="owner",
    )
    filter_trait_key = models.CharField("trait", max_length=64, blank=True)
    filter_trait_value = models.CharField("trait value", max_length=255, blank=True)
    # A segment as the segments page groups them: the signup cohort (first seen in that month).
    filter_segment = models.CharField("signup cohort", max_length=7, blank=True, help_text="YYYY-MM")
    paused = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        errors = {}
        trigger = Trigger(self.trigger) if self.trigger in Trigger.values else None
        if trigger in ACCOUNTS_ONLY and self.subject != Subject.ACCOUNTS:
            errors["subject"] = "“Entered at risk” is about customer accounts."
        if trigger in USERS_ONLY and self.subject != Subject.USERS:
            errors["subject"] = "“Became a power user” is about end users."
        if trigger in NEEDS_DAYS and not self.days:
            errors["days"] = "Give the number of days."
        if trigger in NEEDS_PERCENT and not self.percent:
            errors["percent"] = "Give the percentage."
        if trigger == Trigger.TIER_CHANGED and not (self.tier_from or self.tier_to):
            errors["tier_to"] = "Choose the tier it changed to, from, or both."
        if self.tier_from in ("higher", "lower") and self.tier_to in ("", "new"):
            errors["tier_to"] = "A drop or a rise needs the tier it changed to (high, medium, low or dormant)."
        if self.tier_from and self.tier_from == self.tier_to:
            errors["tier_to"] = "The tier it changes to must differ from the tier it changes from."
        if self.filter_trait_key and not TRAIT_KEY.match(self.filter_trait_key):
            errors["filter_trait_key"] = "Trait names are 1-64 letters, digits, spaces, '_' and '-'."
        if self.filter_trait_value and not self.filter_trait_key:
            errors["filter_trait_key"] = "Name the trait the value is for."
        if self.filter_segment and not _is_month(self.filter_segment):
            errors["filter_segment"] = "A signup cohort is a month written YYYY-MM, e.g. 2026-03."
        if errors:
            raise ValidationError(errors)

    def describe(self) -> str:
        """The trigger in words, as the list shows it."""
        t = self.trigger
        if t == Trigger.TIER_CHANGED:
            if self.tier_from == "higher":
                return f"tier dropped to {self.tier_to}"
            if self.tier_from == "lower":
                return f"tier rose to {self.tier_to}"
            parts = [f"from {self.tier_from}" if self.tier_from else "", f"to {self.tier_to}" if self.tier_to else ""]
            return "tier changed " + " ".join(p for p in parts if p)
        if t in NEEDS_PERCENT:
            verb = "fell" if t == Trigger.POINTS_FELL else "rose"
            return f"points {verb} by {self.percent:g}% or more in {self.days} days"
        if t == Trigger.NO_EVENT:
            return f"no event for {self.days} days"
        return Trigger(t).label.lower()


def _is_month(value: str) -> bool:
    if len(value) != 7 or value[4] != "-":
        return False
    year, month = value[:4], value[5:]
    return year.isdigit() and month.isdigit() and 1 <= int(month) <= 12


class WebhookEndpoint(TenantOwned):
    """Where webhook actions POST; `secret` signs every body (shown once, at creation)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    # Kept to sign (an HMAC needs the key itself); never rendered after creation, never logged.
    secret = models.CharField(max_length=80, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Set at the first failed attempt after a success; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @staticmethod
    def new_secret() -> str:
        return "whsec_" + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class ActionKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack"
    EMAIL = "email", "Email"


class AlertAction(TenantOwned):
    """One thing a rule does when it fires."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=10, choices=ActionKind.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="actions"
    )
    # A Slack incoming-webhook URL holds its own secret: shown masked after saving.
    slack_url = models.URLField(max_length=500, blank=True)
    # Email: the subject's owner, and/or these members (user ids of members of the tenant).
    email_owner = models.BooleanField(default=False)
    email_user_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.rule}"

    @property
    def target_label(self) -> str:
        if self.kind == ActionKind.WEBHOOK:
            return f"webhook “{self.endpoint}”" if self.endpoint else "webhook"
        if self.kind == ActionKind.SLACK:
            return "Slack " + mask_url(self.slack_url)
        who = ["the owner"] if self.email_owner else []
        if self.email_user_ids:
            who.append(f"{len(self.email_user_ids)} member(s)")
        return "email to " + " and ".join(who or ["nobody"])


def mask_url(url: str) -> str:
    """Scheme and host only: the path of a Slack or webhook URL can be its secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else ""


class AlertFiring(TenantOwned):
    """One rule matching one subject on one day: the idempotency key (rule, subject, day, trigger)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    subject = models.CharField(max_length=10, choices=Subject.choices)
    subject_id = models.BigIntegerField()
    day = models.DateField()
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    # The webhook's event id: stable for the key, so receivers can dedupe on it too.
    key = models.CharField(max_length=200, unique=True)
    subject_public_id = models.UUIDField()
    subject_name = models.CharField(max_length=255)
    reason = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject", "subject_id", "day", "trigger"], name="alertfiring_once_per_key"
            )
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="alertfiring_tenant_created")]

    @staticmethod
    def make_key(rule: AlertRule, subject: str, subject_id: int, day, trigger: str) -> str:
        return f"alert_{rule.public_id.hex}_{subject}_{subject_id}_{day.isoformat()}_{trigger}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Will retry"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(TenantOwned):
    """One action of one firing: sent once, retried on 5xx/timeouts, replayable."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="deliveries")
    action = models.ForeignKey(AlertAction, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    kind = models.CharField(max_length=10, choices=ActionKind.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["firing", "action"], name="delivery_once_per_action")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]


class DeliveryAttempt(TenantOwned):
    """One try of a delivery: what the target answered (the per-endpoint log)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    replay = models.BooleanField(default=False)
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    response_excerpt = models.CharField(max_length=1024, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-at"], name="deliveryattempt_endpoint_at")]
