from django.apps import AppConfig


class InsightsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "insights"
    verbose_name = "Insights"

    def ready(self):
        # The scoring job writes the day's aggregates in the transaction of its snapshots
        # (scoring never imports insights: it runs what apps register).
        from scoring.hooks import register_day_hook
        from scoring.signals import run_succeeded

        from .aggregates import write_day_aggregates
        from .signals import on_run_succeeded

        register_day_hook(write_day_aggregates)
        # The Outcomes headline (a backtest over past days) is stored after a run (insights/verdicts.py).
        run_succeeded.connect(on_run_succeeded, dispatch_uid="insights-published-verdict-after-scoring")
