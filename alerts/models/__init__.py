"""The alerts app's models, one module per concept (rules and deliveries; digests)."""

from .digest import DigestFrequency, DigestSubscription  # noqa: F401
from .rules import (  # noqa: F401
    ActionKind,
    AlertAction,
    AlertFiring,
    AlertRule,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Subject,
    Trigger,
    WebhookEndpoint,
)
