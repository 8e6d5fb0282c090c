"""Digest emails: each member's choice of frequency, and what makes its unsubscribe link work once."""

import secrets
import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Membership, TenantOwned


class DigestFrequency(models.TextChoices):
    WEEKLY = "weekly", "Weekly (Monday morning)"
    DAILY = "daily", "Daily (every morning)"
    NEVER = "never", "Never (unsubscribed)"


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


class DigestSubscription(TenantOwned):
    """A member's digest. Created weekly for every member the first time digests are sent.

    `nonce` is inside the signed unsubscribe link; using the link replaces it, so the
    link works once, and a forged link fails its signature check. `last_sent_day` (the
    workspace day a digest went out for) makes a redelivered beat task send nothing twice.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="digest")
    frequency = models.CharField(max_length=10, choices=DigestFrequency.choices, default=DigestFrequency.WEEKLY)
    nonce = models.CharField(max_length=32, default=new_nonce)
    last_sent_day = models.DateField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["membership_id"]

    def __str__(self):
        return f"{self.get_frequency_display()} digest of {self.membership}"
