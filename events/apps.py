from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # signals connects the receivers. pg_arrays registers its array dumpers on psycopg's
        # global map, which each connection copies when it opens: it must come before the first.
        from . import pg_arrays, signals  # noqa: F401
