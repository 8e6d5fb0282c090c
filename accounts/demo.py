"""The demo tenant: a photo-sharing product with a small team of every role."""

from . import rls
from .models import ApiKey, ApiKeyKind, Department, Membership, Role, Tenant, User

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-2026"

# Teammates from different departments, so every view of engagement is present.
DEMO_TEAM = [
    ("pat.product@example.com", "Pat Product", Role.ADMIN, Department.PRODUCT),
    ("sam.sales@example.com", "Sam Sales", Role.EDITOR, Department.SALES),
    ("cara.success@example.com", "Cara Success", Role.EDITOR, Department.CUSTOMER_SUCCESS),
    ("finn.finance@example.com", "Finn Finance", Role.VIEWER, Department.FINANCE),
    ("eli.engineer@example.com", "Eli Engineer", Role.VIEWER, Department.ENGINEERING),
]


def _user(email: str, full_name: str, password: str | None) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, full_name=full_name)
    return user


def seed_demo_tenant() -> tuple[Tenant, bool]:
    tenant, created = Tenant.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={"name": "Snapshot Labs", "product_name": "PhotoShare", "time_zone": "America/New_York"},
    )
    owner = _user(DEMO_EMAIL, "Dana Demo", DEMO_PASSWORD)
    # Keep the documented password working even if someone changed it.
    owner.set_password(DEMO_PASSWORD)
    owner.save(update_fields=["password"])
    with rls.tenant_context(tenant):
        Membership.objects.update_or_create(
            tenant=tenant, user=owner, defaults={"role": Role.OWNER, "department": Department.LEADERSHIP}
        )
        for email, name, role, department in DEMO_TEAM:
            member = _user(email, name, None)
            Membership.objects.get_or_create(
                tenant=tenant, user=member, defaults={"role": role, "department": department}
            )
    return tenant, created


DEMO_WRITE_KEY_NAME = "PhotoShare web app"


def seed_demo_write_key(tenant: Tenant) -> str:
    """The write key the demo product sends with, so its setup checklist is complete."""
    from .services import api_key_create

    with rls.tenant_context(tenant):
        if ApiKey.objects.for_tenant(tenant).filter(kind=ApiKeyKind.WRITE, revoked_at=None).exists():
            return "Write key: already there."
        owner = User.objects.get(email=DEMO_EMAIL)
        key, _plaintext = api_key_create(
            tenant=tenant, kind=ApiKeyKind.WRITE, name=DEMO_WRITE_KEY_NAME, created_by=owner
        )
    return f"Write key: “{key.name}” ({key.prefix}_…); create your own under Settings → API keys to send events."
