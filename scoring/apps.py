from django.apps import AppConfig


class ScoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self):
        # The embedded default has no beat: the development server keeps scores fresh itself.
        from .freshness import in_process_refresh_wanted, start_in_process_refresh

        if in_process_refresh_wanted():
            start_in_process_refresh()
