"""`{% scores_freshness %}`: when the scores were last computed and whether new events are waiting."""

from django import template
from django.conf import settings

from ..freshness import freshness, in_process_delay_seconds

register = template.Library()


@register.inclusion_tag("scoring/_freshness.html", takes_context=True)
def scores_freshness(context):
    tenant = context.get("current_tenant")
    state = freshness(tenant) if tenant is not None else None
    return {
        "current_tenant": tenant,
        "state": state,
        "in_process": settings.CELERY_TASK_ALWAYS_EAGER,
        "refresh_minutes": settings.SCORING_REFRESH_MINUTES,
        "in_process_seconds": in_process_delay_seconds(),
    }
