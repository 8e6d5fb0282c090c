from django.apps import AppConfig


class InsightsConfig(AppConfig):
    # No models yet: the pages read the aggregates the scoring job writes.
    default_auto_field = "django.db.models.BigAutoField"
    name = "insights"
    verbose_name = "Insights"
