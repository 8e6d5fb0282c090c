"""Risk reasons on pages of other apps: {% risk_card subject %} on a detail page, and for a list
{% accounts_at_risk as risk %} ... {{ risk|reasons_of:row.public_id }} (insights/queries/risk.py)."""

from django import template

from events.models import CustomerAccount
from scoring.selectors import list_days, published_model

from ..queries.risk import at_risk

register = template.Library()


def _risk(context, subject: str, ids=None):
    """On the page's model and day when the view has them (the lists and detail pages do)."""
    tenant = context["current_tenant"]
    model = context["model"] if "model" in context else published_model(tenant)
    days = context.get("days") or (list_days(tenant, model) if model else None)
    return at_risk(tenant, day=days.day if days else None, model=model, subject=subject, ids=ids)


@register.inclusion_tag("insights/_risk_card.html", takes_context=True)
def risk_card(context, subject):
    kind = "accounts" if isinstance(subject, CustomerAccount) else "users"
    risk = _risk(context, kind, ids=[subject.pk])
    return {"item": risk.items[0] if risk.items else None, "risk": risk, "current_tenant": context["current_tenant"]}


@register.simple_tag(takes_context=True)
def accounts_at_risk(context):
    """public id -> reasons of every account at risk on the list's day."""
    return {item.public_id: item.reasons for item in _risk(context, "accounts").items}


@register.filter
def reasons_of(risk: dict, public_id):
    return risk.get(public_id, [])
