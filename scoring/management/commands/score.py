"""Compute a tenant's snapshots in the foreground: `manage.py score --tenant SLUG [--days N]`."""

import sys
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import rls
from accounts.models import Tenant
from scoring import selectors, services
from scoring.models import RunKind


class Command(BaseCommand):
    help = "Compute (or recompute) the published model's snapshots for the last N days, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--days", type=int, default=1, help="how many days ending today (default 1)")

    def handle(self, *args, tenant, days, **opts):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant with slug “{tenant}”.")
        # Row-level security: everything below is this tenant's (session-level, reset at the end).
        with rls.session_tenant(tenant_obj):
            self._score(tenant_obj, days)

    def _score(self, tenant_obj, days):
        if not 1 <= days <= 3660:
            raise CommandError("--days must be between 1 and 3660.")
        model = selectors.published_model(tenant_obj)
        if model is None:
            raise CommandError(f"{tenant_obj.name} has no published scoring model; publish or import one first.")
        today = tenant_obj.today()
        try:
            run = services.run_create(
                model=model, kind=RunKind.COMMAND, first_day=today - timedelta(days=days - 1), last_day=today
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages))
        tty = self.stdout.isatty() if hasattr(self.stdout, "isatty") else sys.stdout.isatty()

        def on_day(run, result):
            bar = "#" * (run.progress // 5) + "-" * (20 - run.progress // 5)
            line = f"[{bar}] {run.progress:3d}% {run.days_done}/{run.days_total} days, {run.rows_written} rows"
            if tty:
                self.stdout.write(f"\r{line}", ending="")
            else:
                self.stdout.write(line)

        try:
            run = services.run_in_foreground(run, on_day=on_day)
        except Exception as error:
            raise CommandError(f"Run failed: {error}")
        if tty:
            self.stdout.write("")
        seconds = run.duration.total_seconds() if run.duration else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {tenant_obj.slug} v{model.version}: {run.days_total} days, {run.rows_written} rows "
                f"in {seconds:.1f} s (run {run.public_id})."
            )
        )
