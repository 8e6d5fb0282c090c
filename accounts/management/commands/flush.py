"""`flush` as the owner role: TRUNCATE of every table is not the application's (accounts/rls.py).

The test suite's transactional tests flush after each test.
"""

from django.core.management.commands.flush import Command as DjangoFlush

from accounts import rls


class Command(DjangoFlush):
    def handle(self, *args, **options):
        with rls.owner_session():
            return super().handle(*args, **options)
