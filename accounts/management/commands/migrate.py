"""`migrate` as the owner role: DDL and data migrations are not the application (accounts/rls.py)."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from accounts import rls


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with rls.owner_session():
            return super().handle(*args, **options)
