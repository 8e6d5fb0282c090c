"""Create a tenant, its owner and a first write key, for operators and scripts.

Output is easy to parse: `slug: <slug>`, `password_link: <url>` and the write key
alone on the last line.
"""

from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import rls
from accounts.models import ApiKeyKind, User
from accounts.services import api_key_create, tenant_create
from core.site import site_url


def password_set_link(user: User) -> str:
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return site_url() + path


class Command(BaseCommand):
    help = "Create a tenant with an owner (existing or new user) and print a new write key."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Company name")
        parser.add_argument("--product", required=True, help="Product name")
        parser.add_argument("--owner", required=True, help="Owner's email; the user is created when missing")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--slug", default="", help="URL slug (derived from the name when omitted)")

    @transaction.atomic
    def handle(self, *args, **opts):
        email = opts["owner"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email)  # unusable password until the link is used
        try:
            tenant = tenant_create(
                owner=user,
                name=opts["name"],
                product_name=opts["product"],
                time_zone=opts["time_zone"],
                slug=opts["slug"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        with rls.tenant_context(tenant):
            _, plaintext = api_key_create(
                tenant=tenant, kind=ApiKeyKind.WRITE, name="Default write key", created_by=user
            )
        self.stdout.write(f"slug: {tenant.slug}")
        self.stdout.write(f"owner: {user.email}")
        self.stdout.write(f"password_link: {password_set_link(user)}")
        self.stdout.write(plaintext)
