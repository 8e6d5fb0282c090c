from django.apps import AppConfig


class AlertsConfig(AppConfig):
    # Acting on the score: alert rules (playbooks) with their deliveries, and the digest emails.
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from scoring.signals import run_succeeded

        from .signals import on_run_succeeded

        run_succeeded.connect(on_run_succeeded, dispatch_uid="alerts-evaluate-after-scoring")
