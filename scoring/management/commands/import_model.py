"""Import a scoring model file as a draft: `manage.py import_model --tenant SLUG FILE [--publish]`."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import rls
from accounts.models import Tenant
from scoring import services


class Command(BaseCommand):
    help = "Import a scoring model JSON file (see docs/scoring.md) as a draft, and optionally publish it."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("file", help="path of the JSON file, or - for standard input")
        parser.add_argument("--publish", action="store_true", help="publish the draft and backfill its history")

    def handle(self, *args, tenant, file, publish, **opts):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant with slug “{tenant}”.")
        # Row-level security: everything below is this tenant's (session-level, reset at the end).
        with rls.session_tenant(tenant_obj):
            self._import(tenant_obj, file, publish)

    def _import(self, tenant_obj, file, publish):
        try:
            raw = self.stdin_bytes() if file == "-" else Path(file).read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.")
        try:
            with transaction.atomic():
                model = services.scoring_model_import(tenant=tenant_obj, raw=raw)
                run = services.scoring_model_publish(model=model) if publish else None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages))
        self.stdout.write(f"Imported v{model.version} as a draft of {tenant_obj.slug}.")
        if run is not None:
            run.refresh_from_db()
            self.stdout.write(f"Published v{model.version}; backfill run {run.public_id} is {run.status}.")

    def stdin_bytes(self) -> bytes:
        import sys

        return sys.stdin.buffer.read()
