"""Write the insight aggregates of past days: `manage.py aggregate_insights --tenant SLUG [--days N]`."""

from django.core.management.base import BaseCommand, CommandError

from accounts import rls
from accounts.models import Tenant
from insights.aggregates import aggregates_backfill


class Command(BaseCommand):
    help = ("Write the published model's insight aggregates (growth, adoption, transitions) for the last N "
            "days, or every day since the first event; the scoring runs write them from then on.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--days", type=int, default=None, help="how many days ending today (default: all)")

    def handle(self, *args, tenant, days, **opts):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant with slug “{tenant}”.")
        if days is not None and not 1 <= days <= 3660:
            raise CommandError("--days must be between 1 and 3660.")
        # Row-level security: everything below is this tenant's (session-level, reset at the end).
        with rls.session_tenant(tenant_obj):
            written = aggregates_backfill(tenant_obj, days=days)
        if not written:
            raise CommandError(f"{tenant_obj.name} has no published scoring model: nothing to aggregate.")
        self.stdout.write(f"Aggregated {written} day(s) for {tenant_obj.name}.")
