"""Demo data of the alerts app."""

from accounts.models import Membership, Role, Tenant
from events.models import CustomerAccount


def assign_demo_owners(tenant: Tenant) -> str:
    """Give every demo account without an owner one of the workspace's editors or admins, in turn, so a
    newcomer's digest preview and the accounts list's owner column show something. Keeps owners already set."""
    owners = [m.user_id for m in Membership.objects.for_tenant(tenant).order_by("user__email")
              if m.role in (Role.EDITOR, Role.ADMIN)]
    if not owners:
        return "Demo owners: no editor or admin to own accounts."
    accounts = list(CustomerAccount.objects.for_tenant(tenant).filter(owner__isnull=True).order_by("group_id"))
    for i, account in enumerate(accounts):
        account.owner_id = owners[i % len(owners)]
    CustomerAccount.objects.for_tenant(tenant).bulk_update(accounts, ["owner"])
    return f"Demo owners: {len(accounts)} account(s) given an owner."
