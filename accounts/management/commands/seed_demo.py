"""Create (or refresh) the demo tenant and its demo login. Safe to run again."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo_tenant


class Command(BaseCommand):
    help = "Create the demo tenant and a demo login, idempotently."

    def handle(self, *args, **opts):
        with transaction.atomic():
            tenant, created = seed_demo_tenant()
        verb = "Created" if created else "Refreshed"
        self.stdout.write(f"{verb} demo tenant “{tenant.name}” (slug: {tenant.slug}).")
        from surveys.demo import seed_demo_survey

        self.stdout.write(seed_demo_survey(tenant))
        from scoring.demo import seed_demo_scoring

        self.stdout.write(seed_demo_scoring(tenant))
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
