"""The alerts app's models, one module per concept (rules and deliveries; digests)."""

from .digest import DigestFrequency, DigestSubscription  # noqa: F401
