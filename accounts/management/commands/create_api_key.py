from django.core.management.base import BaseCommand, CommandError

from accounts import rls
from accounts.models import ApiKeyKind, Tenant
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it (alone on its line). It is shown only here."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--kind", required=True, choices=[k.value for k in ApiKeyKind])
        parser.add_argument("--name", required=True)

    def handle(self, *args, **opts):
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {opts['tenant']!r}.")
        with rls.tenant_context(tenant):
            _, plaintext = api_key_create(tenant=tenant, kind=opts["kind"], name=opts["name"])
        self.stdout.write(plaintext)
