"""The ORM half of tenant isolation: a tenant-owned model's manager refuses a query with no tenant.

Every model is found through the app registry, so a new tenant table is covered
the day it lands.
"""

import pytest
from django.apps import apps
from django.db.models import CompositePrimaryKey, Count, Exists, OuterRef

from accounts.models import (
    ApiKey,
    ApiKeyKind,
    Membership,
    Tenant,
    TenantOwned,
    TenantScopeError,
    dangerously_unscoped,
)
from accounts.services import api_key_create
from events.models import Activity, EndUser
from scoring.models import ActivityWeight, ScoringModel


def _pk(model, value: int):
    """A pk to look up: a (tenant_id, message_id) tuple for a composite key (events.MessageId)."""
    return (value, str(value)) if isinstance(model._meta.pk, CompositePrimaryKey) else value


TENANT_MODELS = sorted((m for m in apps.get_models() if issubclass(m, TenantOwned)), key=lambda m: m._meta.label)


def test_every_tenant_table_is_covered():
    assert len(TENANT_MODELS) >= 24
    assert {Membership, ApiKey, EndUser, ScoringModel} <= set(TENANT_MODELS)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
@pytest.mark.parametrize(
    "query",
    [
        lambda m: list(m.objects.all()),
        lambda m: list(m.objects.filter(pk=_pk(m, 1))),
        lambda m: m.objects.get(pk=_pk(m, 1)),
        lambda m: m.objects.count(),
        lambda m: m.objects.exists(),
        lambda m: m.objects.first(),
        lambda m: list(m.objects.values_list("pk", flat=True)),
        lambda m: list(m.objects.iterator()),
        lambda m: m.objects.filter(pk=_pk(m, 1)).update(tenant_id=1),
        lambda m: m.objects.filter(pk=_pk(m, 1)).delete(),
        lambda m: m.objects.aggregate(n=Count("pk")),
        lambda m: list(m.objects.exclude(tenant_id=1)),
        lambda m: m._default_manager.count(),
        lambda m: list(Tenant.objects.filter(pk__in=m.objects.values("tenant_id"))),
    ],
    ids=[
        "all",
        "filter",
        "get",
        "count",
        "exists",
        "first",
        "values",
        "iterator",
        "update",
        "delete",
        "aggregate",
        "exclude-tenant",
        "default-manager",
        "subquery",
    ],
)
@pytest.mark.django_db
def test_the_default_manager_refuses_an_unscoped_query(model, query):
    with pytest.raises(TenantScopeError, match=f"{model.__name__} is tenant-owned: this query has no tenant"):
        query(model)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
@pytest.mark.django_db
def test_the_default_manager_accepts_a_scoped_query(model, tenant, other_tenant):
    assert model.objects.for_tenant(tenant).filter(pk=_pk(model, -1)).count() == 0
    assert list(model.objects.filter(pk=_pk(model, -1)).for_tenant(tenant)) == []
    assert model.objects.for_tenant(tenant.pk).exists() in (True, False)
    assert not model.objects.filter(tenant=other_tenant, pk=_pk(model, -1)).exists()
    assert not model.objects.filter(tenant_id=other_tenant.pk, pk=_pk(model, -1)).exists()
    assert model.objects.none().count() == 0
    assert model.objects.unscoped().filter(pk=_pk(model, -1)).count() == 0


@pytest.mark.django_db
def test_for_tenant_refuses_a_missing_tenant():
    with pytest.raises(TenantScopeError, match="must be read through a tenant"):
        EndUser.objects.for_tenant(None)
    with pytest.raises(TenantScopeError):
        EndUser.objects.for_tenant(Tenant(name="unsaved"))


@pytest.mark.django_db
def test_a_tenant_inside_an_or_does_not_count(tenant):
    from django.db.models import Q

    with pytest.raises(TenantScopeError):
        list(EndUser.objects.filter(Q(tenant=tenant) | Q(user_id="u1")))


@pytest.mark.django_db
def test_scoped_queries_see_one_tenant_and_unscoped_sees_all(tenant, other_tenant):
    EndUser.objects.create(tenant=tenant, user_id="u1")
    EndUser.objects.create(tenant=other_tenant, user_id="u1")
    assert list(EndUser.objects.for_tenant(tenant).values_list("tenant_id", flat=True)) == [tenant.pk]
    assert EndUser.objects.for_tenant(other_tenant).get(user_id="u1").tenant_id == other_tenant.pk
    assert EndUser.objects.unscoped().filter(user_id="u1").count() == 2
    with dangerously_unscoped("test"):
        assert EndUser.objects.count() == 2
    with pytest.raises(TenantScopeError):
        EndUser.objects.count()  # the block ended


@pytest.mark.django_db
def test_related_managers_prefetch_and_cascades_keep_working(tenant, owner):
    activity = Activity.objects.create(tenant=tenant, name="Signed up")
    model = ScoringModel.objects.create(tenant=tenant, version=1, name="v1", created_by=owner)
    ActivityWeight.objects.create(tenant=tenant, model=model, activity=activity, points=5)
    assert [w.points for w in model.weights.all()] == [5]
    assert tenant.activity_set.count() == 1
    assert list(owner.memberships.values_list("tenant_id", flat=True)) == [tenant.pk]
    fetched = ScoringModel.objects.for_tenant(tenant).prefetch_related("weights__activity").get(pk=model.pk)
    assert [w.activity.name for w in fetched.weights.all()] == ["Signed up"]
    assert ActivityWeight.objects.for_tenant(tenant).get().model.name == "v1"  # forward FK: the base manager
    # A subquery correlated to the outer tenant row is scoped by it.
    assert Tenant.objects.filter(Exists(ActivityWeight.objects.filter(tenant=OuterRef("pk")))).count() == 1
    model.delete()  # the cascade collects weights through the base manager
    assert not ActivityWeight.objects.for_tenant(tenant).exists()
    tenant.delete()
    assert not Activity.objects.unscoped().exists()


@pytest.mark.django_db
def test_full_clean_checks_uniqueness_across_tenants(tenant):
    # Django's own unique check has no tenant to give; it runs unscoped on purpose.
    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="ci", created_by=None)
    key.full_clean()


@pytest.mark.django_db
def test_the_refused_queryset_prints_without_querying():
    assert "no tenant, refused" in repr(EndUser.objects.all())


@pytest.mark.django_db
def test_tenant_sql_gives_raw_sql_its_predicate(tenant):
    from accounts.scoping import tenant_sql

    assert tenant_sql(tenant) == ("tenant_id = %s", [tenant.pk])
    assert tenant_sql(tenant.pk, "r") == ("r.tenant_id = %s", [tenant.pk])
    with pytest.raises(TenantScopeError, match="needs a tenant"):
        tenant_sql(None)
