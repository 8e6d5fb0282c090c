"""The event catalog: volumes and users over 7 and 30 tenant days, first/last seen, editing names."""

from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse

from events.models import Activity
from events.selectors import catalog_rows
from tests.conftest import client_for

from .pages_helpers import send, track


def catalog_url(tenant):
    return reverse("events:catalog", args=[tenant.slug])


def update_url(tenant, activity):
    return reverse("events:update_activity", args=[tenant.slug, activity.public_id])


def days_ago(tenant, n):
    """Noon, n tenant days ago."""
    return datetime.combine(tenant.today() - timedelta(days=n), time(12), tzinfo=tenant.tzinfo)


@pytest.fixture
def history(tenant):
    send(
        tenant,
        track("u1", "Added photo", days_ago(tenant, 0)),
        track("u1", "Added photo", days_ago(tenant, 0)),
        track("u2", "Added photo", days_ago(tenant, 6)),
        track("u3", "Added photo", days_ago(tenant, 7)),  # outside 7 days
        track("u3", "Added photo", days_ago(tenant, 29)),
        track("u4", "Added photo", days_ago(tenant, 30)),  # outside 30 days
        track("u1", "Invited friend", days_ago(tenant, 45)),  # quiet for 45 days
    )
    Activity.objects.create(tenant=tenant, name="Posted to Twitter")  # proposed, never received


@pytest.fixture
def editor_client(client, editor):
    return client_for(client, editor)


def test_it_counts_volumes_and_users_per_window(tenant, history):
    rows = {row.activity.name: row for row in catalog_rows(tenant)}
    photo = rows["Added photo"]
    assert (photo.volume_7, photo.volume_30, photo.users_7, photo.users_30) == (3, 5, 2, 3)
    assert photo.last_seen == tenant.today()
    assert photo.activity.first_seen_at == days_ago(tenant, 30)
    friend = rows["Invited friend"]
    assert (friend.volume_7, friend.volume_30, friend.users_30) == (0, 0, 0)
    assert friend.last_seen == tenant.today() - timedelta(days=45)
    twitter = rows["Posted to Twitter"]
    assert not twitter.activity.is_tracked and twitter.last_seen is None


def test_it_shows_the_catalog(client, viewer, tenant, history):
    response = client_for(client, viewer).get(catalog_url(tenant))
    content = response.content.decode()
    assert response.status_code == 200
    assert "3 activities" in content
    assert "<strong>Added photo</strong>" in content
    assert '<td class="num">5</td>' in content
    assert "not tracked yet" in content
    assert (tenant.today() - timedelta(days=45)).isoformat() in content
    assert "Edit</summary>" not in content  # a viewer reads only


def test_an_editor_names_and_describes_an_activity(editor_client, tenant, history):
    activity = Activity.objects.get(tenant=tenant, name="Added photo")
    response = editor_client.post(
        update_url(tenant, activity), {"display_name": " Photo added ", "description": "Uploads from any device."}
    )
    assert response.status_code == 302
    activity.refresh_from_db()
    assert (activity.name, activity.display_name, activity.description) == (
        "Added photo",
        "Photo added",
        "Uploads from any device.",
    )
    content = editor_client.get(catalog_url(tenant)).content.decode()
    assert "<strong>Photo added</strong>" in content and "<code>Added photo</code>" in content
    assert "Uploads from any device." in content


def test_it_rejects_a_too_long_name(editor_client, tenant, history):
    activity = Activity.objects.get(tenant=tenant, name="Added photo")
    response = editor_client.post(update_url(tenant, activity), {"display_name": "x" * 256, "description": "d"})
    assert response.status_code == 400
    assert "was not saved" in response.content.decode()
    assert "Display name: Ensure this value has at most 255 characters" in response.content.decode()
    activity.refresh_from_db()
    assert (activity.display_name, activity.description) == ("", "")


def test_a_viewer_cannot_edit(client, viewer, tenant, history):
    activity = Activity.objects.get(tenant=tenant, name="Added photo")
    response = client_for(client, viewer).post(update_url(tenant, activity), {"display_name": "Hacked"})
    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.display_name == ""


def test_it_checks_the_tenant(client, tenant, other_tenant, outsider, history):
    activity = Activity.objects.get(tenant=tenant, name="Added photo")
    client.force_login(outsider)
    assert client.get(catalog_url(tenant)).status_code == 404
    response = client.post(
        reverse("events:update_activity", args=[other_tenant.slug, activity.public_id]), {"display_name": "Hacked"}
    )
    assert response.status_code == 404
    activity.refresh_from_db()
    assert activity.display_name == ""
    assert b"Added photo" not in client.get(catalog_url(other_tenant)).content


def test_edit_only_takes_post(editor_client, tenant, history):
    activity = Activity.objects.get(tenant=tenant, name="Added photo")
    assert editor_client.get(update_url(tenant, activity)).status_code == 405
    assert editor_client.post(catalog_url(tenant)).status_code == 405


def test_the_query_count_does_not_grow_with_activities(editor_client, tenant, django_assert_max_num_queries):
    send(tenant, *[track(f"u{i % 5}", f"Activity {i}", days_ago(tenant, i % 40)) for i in range(60)])
    # 8: the catalog and its test-only names (two reads of events_activity), whatever their number.
    with django_assert_max_num_queries(8):
        response = editor_client.get(catalog_url(tenant))
    assert response.status_code == 200
    assert "60 activities" in response.content.decode()
