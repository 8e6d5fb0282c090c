"""{% owner_card subject %}: who owns an account or end user, and the form that changes it (editors)."""

from django import template

from accounts.models import Role

from ..models import CustomerAccount
from ..owner_views import owner_form

register = template.Library()


@register.inclusion_tag("events/_owner_card.html", takes_context=True)
def owner_card(context, subject):
    tenant, membership = context["current_tenant"], context["current_membership"]
    can_edit = membership is not None and membership.can(Role.EDITOR)
    is_account = isinstance(subject, CustomerAccount)
    return {
        "subject": subject,
        "is_account": is_account,
        "owner": subject.owner,
        "can_edit": can_edit,
        "form": owner_form(tenant, subject) if can_edit else None,
        "current_tenant": tenant,
        "owner_trait": tenant.owner_trait,
        "renewal_trait": tenant.renewal_trait,
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag(takes_context=True)
def member_names(context):
    """user id -> the member's name, for the owner column of a list (one query)."""
    from ..owners import member_choices

    return dict(member_choices(context["current_tenant"]))


@register.filter
def name_of(names: dict, user_id):
    return names.get(user_id, "—") if user_id else "—"
