"""Receivers that keep the event store's invariants when other apps delete rows."""

from django.db import connection
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts.models import Tenant

from .models import EndUser


@receiver(pre_delete, sender=Tenant, dispatch_uid="events.lock_end_users_of_deleted_tenant")
def lock_end_users_of_deleted_tenant(sender, instance: Tenant, **kwargs) -> None:
    """Lock the tenant's end users before its events are deleted.

    Events have no database foreign key to their end user; batches in flight
    lock their end users FOR KEY SHARE instead (services.STORE_SQL). Locked
    here FOR UPDATE, inside the deletion's transaction, before the collector's
    DELETE statements: a batch either commits first, and its events are deleted
    with the rest, or waits and finds its end users gone (and then fails on the
    deleted tenant's foreign key). Without it, a batch committing between the
    events' DELETE and the end users' left events behind.
    """
    if connection.vendor == "postgresql":
        list(EndUser.objects.for_tenant(instance).order_by("pk").select_for_update().values_list("pk", flat=True))


def connect_owner_traits() -> None:
    from accounts.services import owner_traits_changed

    from .owners import on_owner_traits_changed

    owner_traits_changed.connect(on_owner_traits_changed, dispatch_uid="events.apply_owner_traits")


connect_owner_traits()
