"""The members table: each select in its own column, no Remove button the server would refuse."""

import pytest

from accounts.models import Membership, Role
from tests.conftest import make_user

from .test_members import member_url, members_url

pytestmark = pytest.mark.django_db


def test_the_last_owner_has_no_remove_button(owner_client, tenant, owner, editor):
    html = owner_client.get(members_url(tenant)).content.decode()
    own = Membership.objects.get(tenant=tenant, user=owner)
    other = Membership.objects.get(tenant=tenant, user=editor)
    assert member_url(tenant, own, "remove/") not in html
    assert member_url(tenant, other, "remove/") in html
    # The owner's Role and Department selects sit in the Role and Department columns.
    assert f'<select name="role" form="member-{own.public_id}"' in html
    assert f'<select name="department" form="member-{own.public_id}"' in html
    assert html.count("<th>") >= 3


def test_a_second_owner_can_leave(owner_client, tenant, owner):
    second = make_user("second.owner@acme.test", "Second Owner")
    Membership.objects.create(tenant=tenant, user=second, role=Role.OWNER)
    html = owner_client.get(members_url(tenant)).content.decode()
    own = Membership.objects.get(tenant=tenant, user=owner)
    assert member_url(tenant, own, "remove/") in html and ">Leave</button>" in html
