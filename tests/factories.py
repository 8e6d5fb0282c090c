"""factory-boy factories for the rows the shared fixtures build.

Each one makes a valid row with one call and takes any field as a keyword. Where
a service owns the row's rules (a tenant and its owner, an API key and its
secret, a user's password) the factory calls that service instead of writing the
row itself, so fixtures never build what production could not.

`Factory.build_batch(n, ...)` makes unsaved rows for one `bulk_create` (the noise
tenant, tests/noise.py).
"""

from datetime import UTC, datetime

import factory
from django.utils import timezone

from accounts.models import ApiKey, ApiKeyKind, Membership, Role, Tenant, User
from accounts.services import api_key_create, tenant_create
from events.models import Activity, CustomerAccount, EndUser, Event
from scoring.models import ModelStatus, ScoringModel

PASSWORD = "correct-horse-battery-staple"
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Sequence(lambda n: f"Person {n}")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)  # the real hasher, as a signup has it


class TenantFactory(factory.django.DjangoModelFactory):
    """A tenant through `tenant_create`: its owner (a new user unless given) is its first member."""

    class Meta:
        model = Tenant

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Company {n}")
    product_name = "Rocket"
    time_zone = "UTC"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return tenant_create(**kwargs)


class TenantRowFactory(factory.django.DjangoModelFactory):
    """A row of a tenant (a new one unless given)."""

    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)


class MembershipFactory(TenantRowFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


class ApiKeyFactory(TenantRowFactory):
    """A key through `api_key_create`; the plaintext, shown once in production, is on `.plaintext`."""

    class Meta:
        model = ApiKey

    kind = ApiKeyKind.WRITE
    name = "web"
    created_by = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        key, plaintext = api_key_create(**kwargs)
        key.plaintext = plaintext
        return key


class WriteKeyFactory(ApiKeyFactory):
    kind = ApiKeyKind.WRITE


class ReadKeyFactory(ApiKeyFactory):
    kind = ApiKeyKind.READ
    name = "reader"


class CustomerAccountFactory(TenantRowFactory):
    class Meta:
        model = CustomerAccount

    group_id = factory.Sequence(lambda n: f"account-{n}")
    name = factory.LazyAttribute(lambda o: o.group_id)
    first_seen_at = LONG_AGO


class EndUserFactory(TenantRowFactory):
    class Meta:
        model = EndUser

    user_id = factory.Sequence(lambda n: f"user-{n}")
    first_seen_at = LONG_AGO


class ActivityFactory(TenantRowFactory):
    class Meta:
        model = Activity

    name = factory.Sequence(lambda n: f"Activity {n}")
    first_seen_at = LONG_AGO


class EventFactory(TenantRowFactory):
    """A stored track event (its end user and activity in the same tenant)."""

    class Meta:
        model = Event

    message_id = factory.Sequence(lambda n: f"message-{n}")
    type = "track"
    end_user = factory.SubFactory(EndUserFactory, tenant=factory.SelfAttribute("..tenant"))
    activity = factory.SubFactory(ActivityFactory, tenant=factory.SelfAttribute("..tenant"))
    timestamp = factory.LazyFunction(timezone.now)
    received_at = factory.LazyAttribute(lambda o: o.timestamp)
    day = factory.LazyAttribute(lambda o: o.timestamp.date())
    payload = factory.LazyAttribute(lambda o: {"type": "track", "event": o.activity.name})


class ScoringModelFactory(TenantRowFactory):
    """A scoring model version (a draft unless `published=True`)."""

    class Meta:
        model = ScoringModel

    class Params:
        published = factory.Trait(status=ModelStatus.PUBLISHED, published_at=factory.LazyFunction(timezone.now))

    version = 1
    status = ModelStatus.DRAFT
