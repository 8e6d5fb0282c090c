"""Owners and renewal dates (issue 17): from traits when they arrive, for existing rows, and by hand."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from events.models import CustomerAccount, EndUser
from tests.insights.helpers import account, group, identify, published, send, track

pytestmark = pytest.mark.django_db


@pytest.fixture
def mapped(tenant):
    tenant.owner_trait, tenant.renewal_trait = "csm_email", "renewal_date"
    tenant.save()
    return tenant


def _account(tenant, group_id="acme-corp"):
    return CustomerAccount.objects.for_tenant(tenant).get(group_id=group_id)


def test_traits_set_owner_and_renewal_when_they_arrive(mapped, editor):
    day = mapped.today()
    send(mapped, [group("u-1", "acme-corp", day, name="Acme Corp", csm_email="EVE.editor@acme.test",
                        renewal_date="2027-03-01"),
                  identify("u-1", day, csm_email="eve.editor@acme.test")])
    acme = _account(mapped)
    assert acme.owner == editor and acme.renewal_date == date(2027, 3, 1)
    assert EndUser.objects.for_tenant(mapped).get(user_id="u-1").owner == editor


def test_unknown_owner_or_bad_date_leaves_the_row_as_it_was(mapped, editor):
    day = mapped.today()
    send(mapped, [group("u-1", "acme-corp", day, csm_email="eve.editor@acme.test", renewal_date="2027-03-01")])
    send(mapped, [group("u-1", "acme-corp", day, csm_email="nobody@else.test", renewal_date="next spring")])
    acme = _account(mapped)
    assert acme.owner == editor and acme.renewal_date == date(2027, 3, 1)


def test_no_mapping_no_owner(tenant, editor):
    send(tenant, [group("u-1", "acme-corp", tenant.today(), csm_email="eve.editor@acme.test")])
    assert _account(tenant).owner is None


@pytest.fixture
def eager():
    """The mapping task runs here, never on a broker (REDIS_URL in the PostgreSQL run)."""
    from engagement_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_naming_the_traits_maps_existing_rows(tenant, editor, owner_client, django_capture_on_commit_callbacks, eager):
    day = tenant.today()
    send(tenant, [group("u-1", "acme-corp", day, csm_email="eve.editor@acme.test", renewal_date="2027-01-15"),
                  group("u-2", "globex", day, csm_email="stranger@x.test", renewal_date="soon"),
                  identify("u-1", day, csm_email="eve.editor@acme.test")])
    with django_capture_on_commit_callbacks(execute=True):
        r = owner_client.post(reverse("accounts:tenant_settings", args=[tenant.slug]),
                              {"section": "owners", "owners-owner_trait": "csm_email",
                               "owners-renewal_trait": "renewal_date"})
    assert r.status_code == 302
    acme = _account(tenant)
    assert acme.owner == editor and acme.renewal_date == date(2027, 1, 15)
    assert EndUser.objects.for_tenant(tenant).get(user_id="u-1").owner == editor
    assert _account(tenant, "globex").owner is None


def test_bad_trait_name_is_a_form_error(tenant, owner_client):
    r = owner_client.post(reverse("accounts:tenant_settings", args=[tenant.slug]),
                          {"section": "owners", "owners-owner_trait": "csm.email$", "owners-renewal_trait": ""})
    assert r.status_code == 400 and "letters, digits" in r.content.decode()


def test_command_maps_and_reports(mapped, editor, capsys):
    acme = account(mapped, "acme-corp", csm_email="eve.editor@acme.test", renewal_date="2027-02-02")
    account(mapped, "initech", csm_email="ghost@acme.test")
    call_command("apply_owner_traits", "--tenant", mapped.slug)
    acme.refresh_from_db()
    assert acme.owner == editor and acme.renewal_date == date(2027, 2, 2)
    out = capsys.readouterr().out
    assert "1 account(s) and 0 end user(s) updated; 1 name an owner who is no member" in out


def test_editor_sets_the_owner_by_hand(tenant, editor, viewer, client):
    acme = account(tenant, "acme-corp")
    url = reverse("events:set_account_owner", args=[tenant.slug, acme.public_id])
    client.force_login(viewer)
    assert client.post(url, {"owner": editor.pk}).status_code == 403
    client.force_login(editor)
    r = client.post(url, {"owner": editor.pk, "renewal_date": "2027-05-31"}, follow=True)
    acme.refresh_from_db()
    assert acme.owner == editor and acme.renewal_date == date(2027, 5, 31)
    page = r.content.decode()
    assert "Owned by <strong>Eve Editor</strong>" in page and "2027-05-31" in page


def test_the_owner_must_be_a_member(tenant, editor, outsider, client):
    acme = account(tenant, "acme-corp")
    client.force_login(editor)
    r = client.post(reverse("events:set_account_owner", args=[tenant.slug, acme.public_id]),
                    {"owner": outsider.pk}, follow=True)
    acme.refresh_from_db()
    assert acme.owner is None and "Select a valid choice" in r.content.decode()


def test_end_user_owner_by_hand(tenant, editor, client):
    send(tenant, [track("u-1", "Used feature", tenant.today())])
    user = EndUser.objects.for_tenant(tenant).get(user_id="u-1")
    client.force_login(editor)
    client.post(reverse("events:set_user_owner", args=[tenant.slug, user.public_id]), {"owner": editor.pk})
    user.refresh_from_db()
    assert user.owner == editor


def test_another_workspaces_account_is_404(tenant, other_tenant, outsider, client):
    theirs = account(other_tenant, "theirs")
    acme = account(tenant, "acme-corp")
    client.force_login(outsider)
    assert client.post(reverse("events:set_account_owner", args=[tenant.slug, acme.public_id]),
                       {"owner": ""}).status_code == 404
    assert theirs.owner is None


def test_accounts_list_filters_and_sorts_by_owner_and_renewal(tenant, editor, viewer, client):
    from scoring.models import AccountScore

    model = published(tenant)
    day = tenant.today()
    soon = account(tenant, "soon")
    later = account(tenant, "later")
    nobody = account(tenant, "nobody")
    rows = CustomerAccount.objects.for_tenant(tenant)
    rows.filter(pk=soon.pk).update(owner=editor, renewal_date=day + timedelta(days=20))
    rows.filter(pk=later.pk).update(owner=editor, renewal_date=day + timedelta(days=200))
    AccountScore.objects.bulk_create(AccountScore(tenant=tenant, model=model, day=day, account=a, points=p,
                                                  active_users=1, seats=1, percentile=50, tier="medium")
                                     for a, p in ((soon, 1), (later, 2), (nobody, 3)))
    from tests.insights.helpers import product_row
    product_row(tenant, model, day)
    client.force_login(viewer)

    def names(**query):
        html = client.get(reverse("scoring:accounts", args=[tenant.slug]), query).content.decode()
        return [n for n in ("soon", "later", "nobody") if f">{n}</a>" in html], html

    assert names(owner="eve.editor@acme.test")[0] == ["soon", "later"]
    assert names(owner="none")[0] == ["nobody"]
    assert names(renews_within=30)[0] == ["soon"]
    html = names(order="renewal_date")[1]
    assert html.index(">soon</a>") < html.index(">later</a>") < html.index(">nobody</a>")
    bad = client.get(reverse("scoring:accounts", args=[tenant.slug]), {"owner": "who@x.test"})
    assert bad.status_code == 400 and "No member of this workspace has this email" in bad.content.decode()
