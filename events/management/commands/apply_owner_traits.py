"""manage.py apply_owner_traits [--tenant SLUG]: map owner and renewal traits of existing rows (events/owners.py)."""

from django.core.management.base import BaseCommand, CommandError

from accounts import rls
from accounts.models import Tenant
from events.owners import apply_owner_traits


class Command(BaseCommand):
    help = "Set owners and renewal dates of existing accounts and end users from the traits each workspace names."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="The workspace's slug (default: every workspace naming a trait).")

    def handle(self, *args, tenant=None, **options):
        with rls.bypass("apply_owner_traits: the workspaces naming an owner or renewal trait"):
            tenants = Tenant.objects.all() if tenant else Tenant.objects.exclude(owner_trait="", renewal_trait="")
            tenants = list(tenants.filter(slug=tenant) if tenant else tenants)
        if tenant and not tenants:
            raise CommandError(f"No workspace with the slug “{tenant}”.")
        for t in tenants:
            with rls.session_tenant(t):
                done = apply_owner_traits(t)
            self.stdout.write(
                f"{t.slug}: {done.accounts} account(s) and {done.end_users} end user(s) updated; "
                f"{done.unknown_owner} name an owner who is no member, {done.bad_renewal} a renewal that is no date."
            )
