from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import key_cache, rls

        key_cache.connect_signals()
        connection_created.connect(rls.on_connection_created, dispatch_uid="accounts-rls-app-role")
