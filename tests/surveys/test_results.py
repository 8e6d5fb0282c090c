"""Results math on a hand-computed case: mean, median, spread, per department, heatmap, sorting, free text."""

import math

import pytest

from accounts.models import Department
from surveys import selectors, services

from . import factories

# Ratings by department (None = "not relevant"):
#   Logged in:    sales 2, 4 · product 9 · engineering 5
#   Added photo:  nobody rates it (all "not relevant")
#   Shared photo: sales 8, 8 · product 8 · engineering not relevant
ANSWERS = [
    (Department.SALES, {"Logged in": 2, "Added photo": None, "Shared photo": 8}),
    (Department.SALES, {"Logged in": 4, "Added photo": None, "Shared photo": 8}),
    (Department.PRODUCT, {"Logged in": 9, "Added photo": None, "Shared photo": 8}),
    (Department.ENGINEERING, {"Logged in": 5, "Added photo": None, "Shared photo": None}),
]


@pytest.fixture
def survey(tenant):
    survey = factories.survey(tenant)
    for department, ratings in ANSWERS:
        factories.answer(survey, department=department, ratings=ratings)
    return survey


def by_name(stats):
    return {s.activity.name: s for s in stats}


def test_per_activity_statistics(survey):
    stats = by_name(selectors.activity_stats(survey=survey))
    logged_in = stats["Logged in"]
    assert logged_in.count == 4 and logged_in.not_relevant == 0
    assert logged_in.mean == 5.0  # (2 + 4 + 9 + 5) / 4
    assert logged_in.median == 4.5  # (4 + 5) / 2
    # Population standard deviation: deviations -3, -1, 4, 0 → (9 + 1 + 16 + 0) / 4 = 6.5
    assert logged_in.stddev == pytest.approx(math.sqrt(6.5))

    shared = stats["Shared photo"]
    assert (shared.count, shared.not_relevant, shared.mean, shared.median, shared.stddev) == (3, 1, 8.0, 8, 0.0)

    added = stats["Added photo"]
    assert (added.count, added.not_relevant, added.mean, added.median, added.stddev) == (0, 4, None, None, None)


def test_per_department_breakdown(survey):
    logged_in = by_name(selectors.activity_stats(survey=survey))["Logged in"]
    means = {d: (s.count, s.mean) for d, s in logged_in.by_department.items()}
    assert means == {"sales": (2, 3.0), "product": (1, 9.0), "engineering": (1, 5.0)}
    # Spread of the department means 3, 9, 5 around 17/3.
    expected = math.sqrt(((3 - 17 / 3) ** 2 + (9 - 17 / 3) ** 2 + (5 - 17 / 3) ** 2) / 3)
    assert logged_in.disagreement == pytest.approx(expected)
    assert by_name(selectors.activity_stats(survey=survey))["Shared photo"].disagreement == 0.0


def test_heatmap_data(survey):
    data = selectors.heatmap(survey=survey)
    # Columns in the Department order, only departments that answered.
    assert data["departments"] == [("product", "Product"), ("engineering", "Engineering"), ("sales", "Sales")]
    rows = {stat.activity.name: [(c.department, c.mean, c.heat) for c in cells] for stat, cells in data["rows"]}
    assert rows["Logged in"] == [("product", 9.0, "heat-9"), ("engineering", 5.0, "heat-5"), ("sales", 3.0, "heat-3")]
    assert rows["Shared photo"] == [
        ("product", 8.0, "heat-8"),
        ("engineering", None, "heat-none"),
        ("sales", 8.0, "heat-8"),
    ]
    assert rows["Added photo"] == [(d, None, "heat-none") for d in ("product", "engineering", "sales")]


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("importance", ["Shared photo", "Logged in", "Added photo"]),
        ("disagreement", ["Logged in", "Shared photo", "Added photo"]),
        ("spread", ["Logged in", "Shared photo", "Added photo"]),
    ],
)
def test_sorting(survey, sort, expected):
    assert [s.activity.name for s in selectors.activity_stats(survey=survey, sort=sort)] == expected


def test_free_text_is_escaped_then_highlighted():
    html = selectors.highlight_activities(
        "I <b>think</b> logged in & Shared photo matter; Logged inside doesn't", ["Logged in", "Shared photo", "A&B"]
    )
    assert html == (
        "I &lt;b&gt;think&lt;/b&gt; <mark>logged in</mark> &amp; <mark>Shared photo</mark> matter; "
        "Logged inside doesn&#x27;t"
    )
    assert selectors.highlight_activities("uses A&B daily", ["A&B"]) == "uses <mark>A&amp;B</mark> daily"
    assert selectors.highlight_activities("<script>", []) == "&lt;script&gt;"


def test_answers_grouped_by_department(tenant, viewer):
    survey = factories.survey(tenant)
    factories.answer(survey, department="sales", answer="Invites friends, Logged in daily")
    factories.answer(survey, department="product", answer="Shared photo")
    member = factories.member_invitee(survey, viewer)
    factories.answer(survey, invitee=member, answer="Added photo")
    groups = selectors.answers_by_department(survey=survey)
    assert [label for label, _ in groups] == ["Product", "Sales"]
    sales = dict(groups)["Sales"]
    assert [row.answer_html for row in sales] == [
        "Invites friends, <mark>Logged in</mark> daily",
        "<mark>Added photo</mark>",
    ]
    assert sales[1].who == "Vic Viewer"


def test_anonymous_survey_hides_who(tenant, viewer):
    survey = factories.survey(tenant, anonymous=True)
    member = factories.member_invitee(survey, viewer)
    factories.answer(survey, invitee=member, proposals=[("Printed album",)])
    [(label, [row])] = selectors.answers_by_department(survey=survey)
    assert row.who == ""
    [group] = selectors.proposal_groups(survey=survey)
    assert group.proposers == ["Sales"]


def test_proposal_groups(tenant, owner):
    survey = factories.survey(tenant)
    factories.answer(survey, department="sales", proposals=[("Printed album", "Orders prints", 8)])
    factories.answer(survey, department="finance", proposals=[("printed album", "", 6), ("Made a story",)])
    groups = {g.first.normalized_name: g for g in selectors.proposal_groups(survey=survey)}
    album = groups["printed album"]
    assert len(album.proposers) == 2 and album.importance_mean == 7.0 and album.rated_count == 2
    assert album.descriptions == ["Orders prints"]
    assert groups["made a story"].rated_count == 0
    # Accepted while open: later respondents rate it as a candidate, and they count too.
    activity = services.proposal_accept(proposal=album.first, accepted_by=owner)
    factories.answer(survey, department="product", ratings={"Printed album": 9})
    album = {g.first.normalized_name: g for g in selectors.proposal_groups(survey=survey)}["printed album"]
    assert album.accepted_activity == activity and album.rated_count == 3


def test_response_rate(tenant, viewer):
    survey = factories.survey(tenant)
    member = factories.member_invitee(survey, viewer)
    factories.invitee(survey, "guest@x.test")
    services.link_mark_opened(services.ResolvedLink(survey=survey, invitee=member))
    factories.answer(survey, invitee=member)
    factories.answer(survey, department="finance")
    rate = selectors.response_rate(survey=survey)
    assert rate["totals"] == {
        "invited": 2,
        "opened": 1,
        "answered": 1,
        "share_answers": 1,
        "rate": 50,
        "responses": 2,
        "share_opens": 0,
    }
    rows = {r["department"]: r for r in rate["departments"]}
    assert rows["sales"]["invited"] == 1 and rows["sales"]["answered"] == 1 and rows["sales"]["rate"] == 100
    assert rows[""]["label"] == "Not known yet" and rows[""]["answered"] == 0
    assert rows["finance"]["share_answers"] == 1 and rows["finance"]["rate"] is None


def test_results_never_read_another_survey(tenant, other_tenant, survey):
    other = factories.survey(other_tenant)
    factories.answer(other, department="sales", ratings={"Logged in": 0})
    assert by_name(selectors.activity_stats(survey=survey))["Logged in"].count == 4
