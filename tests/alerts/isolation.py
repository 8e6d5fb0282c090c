"""Sample alerts objects of a tenant for the URL sweep (tests/isolation_ids.py)."""


def alerts_isolation_ids(tenant) -> dict:
    from django.utils import timezone

    from alerts import services
    from alerts.models import ActionKind, AlertFiring, Delivery

    endpoint, _ = services.endpoint_create(tenant=tenant, name="Sweep endpoint", url="https://93.184.216.34/hook",
                                           owner=None)
    rule = services.rule_save(tenant=tenant, name="Sweep rule", subject="accounts", trigger="at_risk",
                              actions=[{"kind": ActionKind.WEBHOOK, "endpoint": endpoint}])
    firing = AlertFiring.objects.create(
        tenant=tenant, rule=rule, subject="accounts", subject_id=1, day=timezone.now().date(), trigger="at_risk",
        key=f"sweep-{rule.public_id}", subject_public_id=rule.public_id, subject_name="Sweep account", reason="r",
    )
    delivery = Delivery.objects.create(tenant=tenant, firing=firing, action=rule.actions.first(), kind="webhook",
                                       endpoint=endpoint, status="failed")
    return {"rule_id": rule.public_id, "endpoint_id": endpoint.public_id, "delivery_id": delivery.public_id}
