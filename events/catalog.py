"""Writes to the activity catalog from the pages (the ingestion path adds activities itself)."""

from django.db import transaction

from .models import Activity


@transaction.atomic
def activity_update(*, activity: Activity, display_name: str, description: str) -> Activity:
    """Rename an activity for people; its event `name` never changes (events refer to it)."""
    activity.display_name = display_name.strip()
    activity.description = description.strip()
    activity.full_clean()
    activity.save(update_fields=["display_name", "description"])
    return activity


def activity_keep(*, activity: Activity) -> Activity:
    """Keep an activity only test events sent: it joins the catalog, surveys and scoring models."""
    activity.test_only = False
    activity.save(update_fields=["test_only"])
    return activity
