"""Reads of the alerts pages."""

from __future__ import annotations

from django.db.models import Count, Prefetch

from accounts.models import Tenant

from .models import AlertAction, AlertFiring, AlertRule, Delivery, DeliveryAttempt, WebhookEndpoint


def rules(tenant: Tenant) -> list[AlertRule]:
    actions = Prefetch("actions", queryset=AlertAction.objects.for_tenant(tenant).select_related("endpoint"))
    return list(AlertRule.objects.for_tenant(tenant).annotate(firing_count=Count("firings")).prefetch_related(actions))


def endpoints(tenant: Tenant) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.for_tenant(tenant).select_related("owner"))


def recent_firings(tenant: Tenant, rule: AlertRule | None = None, limit: int = 50) -> list[AlertFiring]:
    rows = AlertFiring.objects.for_tenant(tenant).select_related("rule")
    if rule is not None:
        rows = rows.filter(rule=rule)
    deliveries = Prefetch("deliveries", queryset=Delivery.objects.for_tenant(tenant).select_related("endpoint"))
    return list(rows.prefetch_related(deliveries)[:limit])


def endpoint_log(endpoint: WebhookEndpoint, limit: int = 100) -> list[DeliveryAttempt]:
    """Every try sent to the endpoint, newest first, with its firing (the delivery log)."""
    return list(
        DeliveryAttempt.objects.for_tenant(endpoint.tenant_id).filter(endpoint=endpoint)
        .select_related("delivery__firing__rule")[:limit]
    )


def endpoint_deliveries(endpoint: WebhookEndpoint, limit: int = 50) -> list[Delivery]:
    return list(
        Delivery.objects.for_tenant(endpoint.tenant_id).filter(endpoint=endpoint).select_related("firing__rule")[:limit]
    )
