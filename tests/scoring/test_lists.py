"""Users and accounts lists (sorts, filters, search, CSV) and the two detail pages.

Snapshots are written directly with chosen numbers (the engine has its own tests), so every
test can name the rows a person would see, in order.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from events.models import Activity, DailyActivityCount, Event
from scoring import selectors
from scoring.models import AccountScore, ModelStatus, ProductScore, ScoringModel, UserScore
from tests.helpers import chart_spec

from .conftest import LONG_AGO, make_account, make_users

pytestmark = pytest.mark.django_db

# Today in the test tenant's zone: the detail pages show the last 90 days.
DAY = datetime.now(ZoneInfo("Europe/Paris")).date()
D7, D30 = DAY - timedelta(days=7), DAY - timedelta(days=30)


def url(name, tenant, *args):
    return reverse(f"scoring:{name}", args=[tenant.slug, *args])


def publish(tenant, version=1, **fields):
    return ScoringModel.objects.create(
        tenant=tenant, version=version, status=ModelStatus.PUBLISHED, published_at=LONG_AGO, **fields
    )


def product_days(tenant, model, *days, users=4):
    for day in days:
        ProductScore.objects.create(
            tenant=tenant,
            model=model,
            day=day,
            total_points=0,
            mean_points=0,
            median_points=0,
            active_users=0,
            engaged_users=0,
            high_users=0,
            medium_users=0,
            low_users=0,
            new_users=0,
            dormant_users=users,
        )


def user_scores(tenant, model, user, by_day: dict):
    """by_day: {day: (points, percentile, tier)}."""
    for day, (points, percentile, tier) in by_day.items():
        UserScore.objects.create(
            tenant=tenant,
            model=model,
            day=day,
            end_user=user,
            points=points,
            breadth=1 if points else 0,
            active_days=2 if points else 0,
            percentile=percentile,
            tier=tier,
        )


def account_scores(tenant, model, account, by_day: dict):
    """by_day: {day: (points, active_users, seats, percentile, tier)}."""
    for day, (points, active, seats, percentile, tier) in by_day.items():
        AccountScore.objects.create(
            tenant=tenant,
            model=model,
            day=day,
            account=account,
            points=points,
            active_users=active,
            seats=seats,
            percentile=percentile,
            tier=tier,
        )


def seen(tenant, activity, user, *days_before):
    DailyActivityCount.objects.bulk_create(
        DailyActivityCount(tenant=tenant, end_user=user, activity=activity, day=DAY - timedelta(days=d), count=1)
        for d in days_before
    )


def store_list_columns(tenant, model):
    """What the engine stores with each snapshot for the lists, from the rows written above: the change
    against the same subject's snapshot 7 and 30 days earlier (none then: 0 points) and the last day seen."""
    from django.db.models import Max

    from events.models import AccountMembership

    last_seen = dict(
        DailyActivityCount.objects.for_tenant(tenant).values_list("end_user").annotate(d=Max("day")).order_by()
    )
    for cls, subject in ((UserScore, "end_user_id"), (AccountScore, "account_id")):
        rows = cls.objects.for_tenant(tenant).filter(model=model)
        points = {(getattr(r, subject), r.day): r.points for r in rows}
        for row in rows:
            row.change_7 = row.points - points.get((getattr(row, subject), row.day - timedelta(days=7)), 0)
            row.change_30 = row.points - points.get((getattr(row, subject), row.day - timedelta(days=30)), 0)
            if cls is UserScore:
                row.last_seen = last_seen.get(row.end_user_id)
            else:
                members = AccountMembership.objects.for_tenant(tenant).filter(account_id=row.account_id)
                row.last_seen = max((last_seen[m] for m in members.values_list("end_user_id", flat=True)
                                     if m in last_seen), default=None)
            row.save()


@pytest.fixture
def world(tenant):
    """Four end users in two accounts, scored on DAY, 7 and 30 days earlier.

    user   plan (own / account)  points D / D-7 / D-30   change 7 / 30   last seen
    alice  business / team       100 / 40 / 90           +60 / +10       DAY
    bob    - / team               50 / 80 / -            -30 / +50       DAY-3
    carol  - / free               10 / 10 / 30             0 / -20       DAY-20
    dave   - / (no account)        0 /  5 / 0             -5 /   0       never
    """
    model = publish(tenant)
    product_days(tenant, model, DAY, D7, D30)
    acme = make_account(tenant, "acme", "Acme Corp")
    acme.traits = {"plan": "team", "industry": "Retail"}
    acme.save()
    globex = make_account(tenant, "globex", "Globex Inc")
    globex.traits = {"plan": "free", "industry": "Energy"}
    globex.save()
    users = make_users(tenant, "u-alice", "u-bob", account=acme)
    users |= make_users(tenant, "u-carol", account=globex)
    users |= make_users(tenant, "u-dave")
    traits = {
        "u-alice": {"name": "Alice Liddell", "email": "alice@wonder.test", "plan": "business"},
        "u-bob": {"email": "bob@builder.test", "role": "admin"},
        "u-carol": {"name": "Carol Danvers", "role": "Admin", "seats": 3},
    }
    for uid, value in traits.items():
        users[uid].traits = value
        users[uid].save()
    alice, bob, carol, dave = (users[u] for u in ("u-alice", "u-bob", "u-carol", "u-dave"))
    user_scores(tenant, model, alice, {DAY: (100, 100.0, "high"), D7: (40, 50.0, "medium"), D30: (90, 100.0, "high")})
    user_scores(tenant, model, bob, {DAY: (50, 66.67, "medium"), D7: (80, 100.0, "high")})
    user_scores(tenant, model, carol, {DAY: (10, 33.33, "low"), D7: (10, 25.0, "low"), D30: (30, 50.0, "medium")})
    user_scores(tenant, model, dave, {DAY: (0, None, "dormant"), D7: (5, 25.0, "low"), D30: (0, None, "dormant")})
    account_scores(
        tenant,
        model,
        acme,
        {DAY: (150, 2, 2, 100.0, "high"), D7: (120, 2, 2, 100.0, "high"), D30: (90, 1, 2, 100.0, "high")},
    )
    account_scores(
        tenant,
        model,
        globex,
        {DAY: (10, 1, 1, 50.0, "low"), D7: (10, 1, 1, 50.0, "low"), D30: (30, 1, 1, 50.0, "medium")},
    )
    activity = Activity.objects.create(tenant=tenant, name="Shared photo", first_seen_at=LONG_AGO)
    seen(tenant, activity, alice, 0, 5, 12)
    seen(tenant, activity, bob, 3, 9)
    seen(tenant, activity, carol, 20, 40)
    store_list_columns(tenant, model)
    return {
        "model": model,
        "acme": acme,
        "globex": globex,
        "activity": activity,
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "dave": dave,
    }


def login(client, user):
    client.force_login(user)
    return client


def names(response) -> list[str]:
    return [row.user_id for row in response.context["page"]]


def groups(response) -> list[str]:
    return [row.group_id for row in response.context["page"]]


def csv_lines(response) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


class TestUsersList:
    @pytest.fixture(autouse=True)
    def _login(self, client, viewer, world):
        login(client, viewer)

    def get(self, client, tenant, **query):
        response = client.get(url("users", tenant), query)
        assert response.status_code == 200, response.content.decode()[:2000]
        return response

    def test_default_is_points_high_first_with_changes_and_last_seen(self, client, tenant):
        r = self.get(client, tenant)
        assert names(r) == ["u-alice", "u-bob", "u-carol", "u-dave"]
        alice, bob, carol, dave = r.context["page"]
        assert (alice.change_7, alice.change_30, alice.last_seen) == (60, 10, DAY)
        assert (bob.change_7, bob.change_30, bob.last_seen) == (-30, 50, DAY - timedelta(days=3))
        assert (carol.change_7, carol.change_30) == (0, -20)
        assert (dave.change_7, dave.last_seen) == (-5, None)
        assert r.context["days"] == selectors.ListDays(DAY, D7, D30, users=4)
        html = r.content.decode()
        # One number format (core/templatetags/engage.py): no ".0" on whole points.
        assert "Alice Liddell" in html and ">+60<" in html and ">-30<" in html and "never" in html

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            ("-change_7", ["u-alice", "u-carol", "u-dave", "u-bob"]),
            ("change_7", ["u-bob", "u-dave", "u-carol", "u-alice"]),
            ("-change_30", ["u-bob", "u-alice", "u-dave", "u-carol"]),
            ("change_30", ["u-carol", "u-dave", "u-alice", "u-bob"]),
            ("points", ["u-dave", "u-carol", "u-bob", "u-alice"]),
            # Unknown percentile (dormant) and never seen come last in both directions.
            ("-percentile", ["u-alice", "u-bob", "u-carol", "u-dave"]),
            ("percentile", ["u-carol", "u-bob", "u-alice", "u-dave"]),
            ("-last_seen", ["u-alice", "u-bob", "u-carol", "u-dave"]),
            ("last_seen", ["u-carol", "u-bob", "u-alice", "u-dave"]),
        ],
    )
    def test_sorts(self, client, tenant, order, expected):
        assert names(self.get(client, tenant, order=order)) == expected

    def test_last_seen_sort_reads_the_stored_last_day(self, tenant, world):
        newest = selectors.user_list(tenant, order="-last_seen")
        assert [r.user_id for r in newest[0:10]] == ["u-alice", "u-bob", "u-carol", "u-dave"]
        # A page, then the page after it.
        assert [r.user_id for r in newest[0:2]] + [r.user_id for r in newest[2:4]] == [
            "u-alice",
            "u-bob",
            "u-carol",
            "u-dave",
        ]
        oldest = selectors.user_list(tenant, order="last_seen")
        assert [r.user_id for r in oldest[0:10]] == ["u-carol", "u-bob", "u-alice", "u-dave"]
        assert [r.last_seen for r in oldest[0:10]] == [DAY - timedelta(days=20), DAY - timedelta(days=3), DAY, None]
        accounts = selectors.account_list(tenant, order="last_seen")
        assert [(r.group_id, r.last_seen) for r in accounts[0:5]] == [
            ("globex", DAY - timedelta(days=20)),
            ("acme", DAY),
        ]
        assert [r.group_id for r in selectors.account_list(tenant, order="-last_seen")[1:5]] == ["globex"]
        csv = selectors.user_list(tenant, order="last_seen", where=selectors.ListFilter(tier="low"))
        assert [(r.user_id, r.last_seen) for r in csv] == [("u-carol", DAY - timedelta(days=20))]
        every = {r.user_id: r.last_seen for r in selectors.user_list(tenant)}
        assert every == {
            "u-alice": DAY,
            "u-bob": DAY - timedelta(days=3),
            "u-carol": DAY - timedelta(days=20),
            "u-dave": None,
        }

    def test_sort_links_flip_the_direction(self, client, tenant):
        r = self.get(client, tenant, order="-change_7", tier="")
        assert r.context["sorts"]["change_7"] == {"url": "?order=change_7&tier=", "state": "descending"}
        assert r.context["sorts"]["points"]["url"] == "?order=-points&tier="
        assert 'aria-sort="descending"' in r.content.decode()

    def test_filter_by_tier(self, client, tenant):
        assert names(self.get(client, tenant, tier="medium")) == ["u-bob"]

    def test_filter_by_account(self, client, tenant):
        assert names(self.get(client, tenant, account="acme")) == ["u-alice", "u-bob"]

    def test_falling_badge_and_filter(self, client, tenant, world):
        bob = UserScore.objects.for_tenant(tenant).filter(end_user=world["bob"], day=DAY)
        bob.update(falling=True, trend_points=80)
        r = self.get(client, tenant, falling="on")
        assert names(r) == ["u-bob"]
        assert ">falling</span>" in r.content.decode() and "(80 then)" in r.content.decode()
        assert names(self.get(client, tenant)) == ["u-alice", "u-bob", "u-carol", "u-dave"]

    def test_filter_by_account_lists_every_member_not_only_primary_ones(self, client, tenant, world):
        from .conftest import join

        join(world["globex"], world["alice"])  # alice's primary account stays acme
        assert names(self.get(client, tenant, account="globex")) == ["u-alice", "u-carol"]
        assert names(self.get(client, tenant, account="acme")) == ["u-alice", "u-bob"]
        r = client.get(url("account_detail", tenant, world["globex"].public_id))
        assert [m.user_id for m in r.context["members"]] == ["u-alice", "u-carol"]

    @pytest.mark.parametrize(
        ("plan", "expected"),
        [("team", ["u-bob"]), ("business", ["u-alice"]), ("FREE", ["u-carol"]), ("gold", [])],
    )
    def test_filter_by_plan_own_else_the_accounts(self, client, tenant, plan, expected):
        r = self.get(client, tenant, plan=plan)
        assert names(r) == expected
        if not expected:
            assert b"No end users match these filters" in r.content

    def test_filter_by_any_trait(self, client, tenant):
        assert names(self.get(client, tenant, trait="role", trait_value="ADMIN")) == ["u-bob", "u-carol"]
        assert names(self.get(client, tenant, trait="seats", trait_value="3")) == ["u-carol"]

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("WONDER", ["u-alice"]),  # email
            ("danvers", ["u-carol"]),  # name
            ("u-dave", ["u-dave"]),  # user id
            ("u-", ["u-alice", "u-bob", "u-carol", "u-dave"]),
            ("%", []),  # LIKE wildcards are plain characters
            ("_", []),
        ],
    )
    def test_search(self, client, tenant, q, expected):
        assert names(self.get(client, tenant, q=q)) == expected

    def test_trait_filters_with_a_sort(self, client, tenant):
        assert names(self.get(client, tenant, plan="team")) == ["u-bob"]
        assert names(self.get(client, tenant, trait="role", trait_value="admin", order="-change_7")) == [
            "u-carol",
            "u-bob",
        ]
        assert names(self.get(client, tenant, q="ALICE")) == ["u-alice"]
        accounts = selectors.account_list(tenant, where=selectors.ListFilter(search="corp", plan="team"))
        assert [r.group_id for r in accounts[0:5]] == ["acme"]

    def test_filters_combine(self, client, tenant):
        assert names(self.get(client, tenant, account="acme", trait="role", trait_value="admin", q="bob")) == ["u-bob"]

    def test_pagination(self, client, tenant, monkeypatch):
        from scoring import views

        monkeypatch.setattr(views, "PAGE_SIZE", 3)
        r = self.get(client, tenant, order="-change_7", page=2)
        assert names(r) == ["u-bob"]
        assert b"Page 2 of 2 (4 rows)" in r.content and b"order=-change_7&amp;page=1" in r.content
        assert names(self.get(client, tenant, page="nope")) == ["u-alice", "u-bob", "u-carol"]

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ({"tier": "legendary"}, "Select a valid choice"),
            ({"order": "-colour"}, "Select a valid choice"),
            ({"account": "nope"}, "No account with this group id"),
            ({"trait": "role'; DROP TABLE x"}, "Trait names are letters"),
            ({"trait": "role"}, "Give both a trait name and a value"),
            ({"trait_value": "admin"}, "Give both a trait name and a value"),
            ({"q": "x" * 101}, "at most 100 characters"),
        ],
    )
    def test_bad_input_is_a_form_error(self, client, tenant, query, message):
        r = client.get(url("users", tenant), query)
        assert r.status_code == 400
        assert message in r.content.decode() and 'role="alert"' in r.content.decode()
        assert list(r.context["page"]) == []
        csv = client.get(url("users_csv", tenant), query)
        assert csv.status_code == 400 and message in csv.content.decode()

    def test_csv_is_the_filtered_sorted_list(self, client, tenant):
        lines = csv_lines(client.get(url("users_csv", tenant), {"q": "u-", "order": "-change_30", "tier": ""}))
        assert lines[0] == [
            "user_id",
            "name",
            "account",
            "day",
            "version",
            "points",
            "breadth",
            "active_days",
            "percentile",
            "tier",
            "change_7d",
            "change_30d",
            "last_seen",
            "email",
            "plan",
        ]
        assert [line[0] for line in lines[1:]] == ["u-bob", "u-alice", "u-dave", "u-carol"]
        bob = dict(zip(lines[0], lines[1], strict=True))
        assert bob["change_7d"] == "-30.0" and bob["change_30d"] == "50.0" and bob["plan"] == "team"
        assert bob["last_seen"] == str(DAY - timedelta(days=3)) and bob["account"] == "acme"
        dave = dict(zip(lines[0], lines[3], strict=True))
        assert dave["percentile"] == "" and dave["last_seen"] == ""
        only_team = csv_lines(client.get(url("users_csv", tenant), {"plan": "team"}))
        assert [line[0] for line in only_team[1:]] == ["u-bob"]

    def test_csv_sorted_by_last_seen(self, client, tenant):
        lines = csv_lines(client.get(url("users_csv", tenant), {"order": "last_seen"}))
        assert [line[0] for line in lines[1:]] == ["u-carol", "u-bob", "u-alice", "u-dave"]

    def test_it_never_shows_another_tenants_rows(self, client, tenant, other_tenant):
        model = publish(other_tenant)
        product_days(other_tenant, model, DAY)
        stranger = make_users(other_tenant, "u-alice-twin")["u-alice-twin"]
        user_scores(other_tenant, model, stranger, {DAY: (999, 100.0, "high")})
        assert names(self.get(client, tenant, q="alice")) == ["u-alice"]
        assert "u-alice-twin" not in b"".join(client.get(url("users_csv", tenant)).streaming_content).decode()

    def test_query_count_is_bounded(self, client, tenant, django_assert_max_num_queries):
        # Session, user, membership, model, days, account lookup, count, page: whatever the page size.
        with django_assert_max_num_queries(9):
            self.get(
                client, tenant, account="acme", plan="team", trait="role", trait_value="admin", q="b", order="-change_7"
            )
        with django_assert_max_num_queries(9):
            self.get(client, tenant, order="-last_seen")


class TestUsersListEmpty:
    def test_no_model(self, client, viewer, tenant):
        r = login(client, viewer).get(url("users", tenant), {"order": "-last_seen"})
        assert r.status_code == 200 and b"no scoring model is published yet" in r.content
        lines = csv_lines(client.get(url("users_csv", tenant)))
        assert len(lines) == 1

    def test_model_without_scores(self, client, viewer, tenant):
        publish(tenant)
        r = login(client, viewer).get(url("users", tenant))
        assert r.status_code == 200 and b"has not scored a day" in r.content
        r = client.get(url("accounts", tenant))
        assert r.status_code == 200 and b"has not scored a day" in r.content

    def test_changes_are_unknown_when_nothing_was_scored_that_far_back(self, client, viewer, tenant, world):
        ProductScore.objects.unscoped().filter(day__in=[D7, D30]).delete()
        r = login(client, viewer).get(url("users", tenant), {"order": "-change_7"})
        assert names(r) == ["u-alice", "u-bob", "u-carol", "u-dave"]  # falls back to points
        assert all(row.change_7 is None and row.change_30 is None for row in r.context["page"])


class TestAccountsList:
    @pytest.fixture(autouse=True)
    def _login(self, client, viewer, world):
        login(client, viewer)

    def get(self, client, tenant, **query):
        response = client.get(url("accounts", tenant), query)
        assert response.status_code == 200, response.content.decode()[:2000]
        return response

    def test_default_with_changes_and_last_seen(self, client, tenant):
        r = self.get(client, tenant)
        acme, globex = r.context["page"]
        assert (acme.group_id, acme.change_7, acme.change_30, acme.last_seen) == ("acme", 30, 60, DAY)
        assert (globex.group_id, globex.change_7, globex.change_30) == ("globex", 0, -20)
        assert globex.last_seen == DAY - timedelta(days=20)
        assert b"Acme Corp" in r.content and b"2 / 2" in r.content

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            ("-points", ["acme", "globex"]),
            ("points", ["globex", "acme"]),
            ("change_7", ["globex", "acme"]),
            ("change_30", ["globex", "acme"]),
            ("-percentile", ["acme", "globex"]),
            ("active_users", ["globex", "acme"]),
            ("last_seen", ["globex", "acme"]),
            ("-last_seen", ["acme", "globex"]),
        ],
    )
    def test_sorts(self, client, tenant, order, expected):
        assert groups(self.get(client, tenant, order=order)) == expected

    def test_filters_and_search(self, client, tenant):
        assert groups(self.get(client, tenant, tier="low")) == ["globex"]
        assert groups(self.get(client, tenant, plan="TEAM")) == ["acme"]
        assert groups(self.get(client, tenant, trait="industry", trait_value="energy")) == ["globex"]
        assert groups(self.get(client, tenant, q="corp")) == ["acme"]  # name
        assert groups(self.get(client, tenant, q="GLOB")) == ["globex"]  # group id
        assert groups(self.get(client, tenant, q="initech")) == []

    def test_bad_input_is_a_form_error(self, client, tenant):
        r = client.get(url("accounts", tenant), {"trait": 'a"b', "trait_value": "x"})
        assert r.status_code == 400 and b"Trait names are letters" in r.content
        assert client.get(url("accounts_csv", tenant), {"order": "seats"}).status_code == 400

    def test_csv_is_the_filtered_sorted_list(self, client, tenant):
        lines = csv_lines(client.get(url("accounts_csv", tenant), {"order": "change_30"}))
        assert lines[0][:9] == [
            "group_id",
            "name",
            "day",
            "version",
            "points",
            "active_users",
            "seats",
            "percentile",
            "tier",
        ]
        assert lines[0][9:] == ["change_7d", "change_30d", "last_seen", "plan"]
        assert [line[0] for line in lines[1:]] == ["globex", "acme"]
        assert lines[2][9:] == ["30.0", "60.0", str(DAY), "team"]
        assert [line[0] for line in csv_lines(client.get(url("accounts_csv", tenant), {"plan": "free"}))[1:]] == [
            "globex"
        ]

    def test_query_count_is_bounded(self, client, tenant, django_assert_max_num_queries):
        # + the accounts at risk (and its check that the day's user snapshots store the last day seen)
        # and the members' names (owner column): one query each.
        with django_assert_max_num_queries(11):
            self.get(client, tenant, plan="team", q="a", order="-change_30")
        with django_assert_max_num_queries(11):
            self.get(client, tenant, order="last_seen")


def add_events(tenant, user, activity, count, start=datetime(2026, 3, 30, 22, 30, tzinfo=UTC)):
    Event.objects.bulk_create(
        Event(
            tenant=tenant,
            message_id=f"{user.user_id}-{i}",
            type="track",
            end_user=user,
            activity=activity,
            account=user.account,
            timestamp=start - timedelta(hours=i),
            received_at=start,
            day=DAY,
            payload={"type": "track", "event": activity.name, "properties": {"album": f"Trip {i}", "size": i}},
        )
        for i in range(count)
    )


class TestUserDetail:
    def test_it_shows_traits_account_history_and_changes(self, client, viewer, tenant, world):
        alice = world["alice"]
        r = login(client, viewer).get(url("user_detail", tenant, alice.public_id))
        assert r.status_code == 200
        html = r.content.decode()
        assert ("email", "alice@wonder.test") in r.context["traits"] and "alice@wonder.test" in html
        assert url("account_detail", tenant, world["acme"].public_id) in html
        assert r.context["row"].change_7 == 60 and r.context["row"].last_seen == DAY
        assert [h.day for h in r.context["history"]] == [DAY, D7, D30]  # newest first
        assert "The numbers behind the chart (3 days" in html

    def test_recent_events_newest_first_in_the_tenants_time_zone(self, client, viewer, tenant, world):
        alice = world["alice"]
        add_events(tenant, alice, world["activity"], 55)
        add_events(tenant, world["bob"], world["activity"], 2)
        r = login(client, viewer).get(url("user_detail", tenant, alice.public_id))
        events = r.context["events"]
        assert len(events) == 50
        assert events[0].time.isoformat() == "2026-03-31T00:30:00+02:00"  # 22:30 UTC in Paris (summer time)
        assert [e.time for e in events] == sorted((e.time for e in events), reverse=True)
        assert events[0].activity == "Shared photo" and events[0].summary == "album: Trip 0 · size: 0"
        html = r.content.decode()
        assert "2026-03-31 00:30" in html and "times in Europe/Paris" in html

    def test_the_chart_colours_the_dots_by_tier(self, client, viewer, tenant, world):
        r = login(client, viewer).get(url("user_detail", tenant, world["alice"].public_id))
        chart = chart_spec(r, "chart-history")
        names = [s["name"] for s in chart["series"]]
        assert names == ["Points", "high tier", "medium tier"]  # no low day, so no low legend entry
        points = chart["series"][0]["values"]
        dots = [s["values"] for s in chart["series"][1:]]
        # Every day's points are a dot of exactly one tier.
        assert [[v for v in day if v is not None] for day in zip(*dots, strict=True)] == [[p] for p in points]

    def test_points_thresholds_are_drawn(self, client, viewer, tenant, world):
        ScoringModel.objects.unscoped().filter(pk=world["model"].pk).update(
            tier_method="points", tier_high=80, tier_medium=20
        )
        r = login(client, viewer).get(url("user_detail", tenant, world["bob"].public_id))
        lines = {s["name"]: s for s in chart_spec(r, "chart-history")["series"] if s.get("dash")}
        assert set(lines) == {"high from 80", "medium from 20"}
        assert set(lines["high from 80"]["values"]) == {80}

    def test_empty_states(self, client, viewer, tenant, world):
        login(client, viewer)
        r = client.get(url("user_detail", tenant, world["dave"].public_id))
        assert r.status_code == 200 and b"No events stored yet" in r.content and b"No traits yet" in r.content
        ScoringModel.objects.filter(tenant=tenant).update(status=ModelStatus.RETIRED)
        r = client.get(url("user_detail", tenant, world["alice"].public_id))
        assert r.status_code == 200 and b"no scoring model is published" in r.content

    def test_query_count_is_bounded(self, client, viewer, tenant, world, django_assert_max_num_queries):
        add_events(tenant, world["alice"], world["activity"], 30)
        login(client, viewer)
        with django_assert_max_num_queries(16):
            client.get(url("user_detail", tenant, world["alice"].public_id))

    def test_it_checks_the_tenant(self, client, outsider, other_tenant, tenant, world):
        login(client, outsider)
        assert client.get(url("user_detail", other_tenant, world["alice"].public_id)).status_code == 404


class TestAccountDetail:
    def test_it_ranks_users_and_shows_engaged_seats(self, client, viewer, tenant, world):
        acme = world["acme"]
        r = login(client, viewer).get(url("account_detail", tenant, acme.public_id))
        assert r.status_code == 200
        assert [m.user_id for m in r.context["members"]] == ["u-alice", "u-bob"]
        seats = r.context["seats"]
        assert (seats.engaged, seats.active, seats.seats, seats.engaged_share) == (2, 2, 2, 100.0)
        html = r.content.decode()
        assert "Seats engaged" in html and "100.0 %" in html
        assert ("industry", "Retail") in r.context["traits"]
        assert [h.day for h in r.context["history"]] == [DAY, D7, D30]

    def test_share_of_seats_engaged(self, client, viewer, tenant, world):
        globex = world["globex"]
        r = login(client, viewer).get(url("account_detail", tenant, globex.public_id))
        seats = r.context["seats"]
        assert (seats.engaged, seats.active, seats.seats, seats.engaged_share) == (0, 1, 1, 0.0)
        assert seats.tiers["low"] == 1

    def test_recent_events_of_its_users(self, client, viewer, tenant, world):
        add_events(tenant, world["alice"], world["activity"], 2)
        add_events(tenant, world["bob"], world["activity"], 1, start=datetime(2026, 3, 31, 8, tzinfo=UTC))
        add_events(tenant, world["carol"], world["activity"], 3)  # another account
        r = login(client, viewer).get(url("account_detail", tenant, world["acme"].public_id))
        events = r.context["events"]
        assert [e.end_user.user_id for e in events] == ["u-bob", "u-alice", "u-alice"]
        assert url("user_detail", tenant, world["bob"].public_id) in r.content.decode()

    def test_the_chart(self, client, viewer, tenant, world):
        r = login(client, viewer).get(url("account_detail", tenant, world["globex"].public_id))
        chart = chart_spec(r, "chart-history")
        assert {"low tier", "medium tier"} <= {s["name"] for s in chart["series"]}
        assert len(chart["labels"]) == len(r.context["history"])

    def test_query_count_is_bounded(self, client, viewer, tenant, world, django_assert_max_num_queries):
        add_events(tenant, world["alice"], world["activity"], 30)
        login(client, viewer)
        with django_assert_max_num_queries(17):
            client.get(url("account_detail", tenant, world["acme"].public_id))

    def test_it_checks_the_tenant(self, client, outsider, other_tenant, tenant, world):
        login(client, outsider)
        assert client.get(url("account_detail", other_tenant, world["acme"].public_id)).status_code == 404
