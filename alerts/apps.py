from django.apps import AppConfig


class AlertsConfig(AppConfig):
    # Acting on the score: alert rules (playbooks) with their deliveries, and the digest emails.
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts"
