"""Reads for surveys: results aggregation, heatmap, free text, proposals, response rate, tracking plan.

Ratings are few (respondents x candidate activities, thousands at most), so one
query fetches (activity, department, importance) and the statistics are computed
exactly with `statistics`; nothing here loops over events.
"""

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.models import Department, Tenant
from core.site import site_url
from events.models import Activity

from .models import ActivityRating, ProposedActivity, Survey, SurveyInvitee, SurveyResponse, SurveyShareLink

DEPARTMENT_LABELS = dict(Department.choices)
DEPARTMENT_ORDER = {value: i for i, value in enumerate(Department.values)}


def surveys_of(tenant: Tenant):
    return (
        Survey.objects.for_tenant(tenant)
        .annotate(
            response_count=Count("responses", distinct=True),
            invitee_count=Count("invitees", filter=Q(invitees__revoked_at=None), distinct=True),
            # The list says how many of the invited answered, and how many came through a share link.
            invited_answer_count=Count("responses", filter=Q(responses__invitee__isnull=False), distinct=True),
        )
        .order_by("-created_at")
    )


# --- Results ----------------------------------------------------------------------


@dataclass
class DepartmentStat:
    department: str
    count: int
    mean: float | None

    @property
    def label(self) -> str:
        return DEPARTMENT_LABELS.get(self.department, self.department)

    @property
    def heat(self) -> str:
        """CSS class for the heatmap cell (CSP forbids inline styles)."""
        return "heat-none" if self.mean is None else f"heat-{round(self.mean)}"


@dataclass
class ActivityStat:
    activity: Activity
    count: int  # ratings given (0-10); "not relevant" excluded
    not_relevant: int
    mean: float | None
    median: float | None
    stddev: float | None  # population standard deviation of the ratings: spread, 0 = full agreement
    by_department: dict[str, DepartmentStat] = field(default_factory=dict)

    @property
    def disagreement(self) -> float | None:
        """Spread between departments: population stddev of the department means (two or more departments)."""
        means = [d.mean for d in self.by_department.values() if d.mean is not None]
        return statistics.pstdev(means) if len(means) >= 2 else None

    def cells(self, departments: list[str]) -> list[DepartmentStat]:
        return [self.by_department.get(d) or DepartmentStat(d, 0, None) for d in departments]


def _mean(values: list[int]) -> float | None:
    return statistics.fmean(values) if values else None


def activity_stats(*, survey: Survey, sort: str = "importance") -> list[ActivityStat]:
    """Per candidate activity: mean, median, count, spread, and per department (one ratings query)."""
    activities = list(survey.candidate_activities())
    rows = (
        ActivityRating.objects.for_tenant(survey.tenant)
        .filter(response__survey=survey, activity__in=[a.pk for a in activities])
        .values_list("activity_id", "response__department", "importance")
    )
    values: dict[int, list[int]] = defaultdict(list)
    per_department: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    not_relevant: dict[int, int] = defaultdict(int)
    for activity_id, department, importance in rows:
        if importance is None:
            not_relevant[activity_id] += 1
            continue
        values[activity_id].append(importance)
        per_department[activity_id][department].append(importance)
    stats = []
    for activity in activities:
        ratings = values.get(activity.pk, [])
        stats.append(
            ActivityStat(
                activity=activity,
                count=len(ratings),
                not_relevant=not_relevant.get(activity.pk, 0),
                mean=_mean(ratings),
                median=statistics.median(ratings) if ratings else None,
                stddev=statistics.pstdev(ratings) if ratings else None,
                by_department={
                    d: DepartmentStat(d, len(v), _mean(v)) for d, v in per_department.get(activity.pk, {}).items()
                },
            )
        )
    return sort_stats(stats, sort)


@dataclass
class WeightInput:
    """What the weights proposal needs for one activity: one importance per respondent."""

    activity: Activity
    candidate: bool  # rated on the form; False = only proposed by respondents (and accepted)
    mean: float | None
    count: int


def weight_inputs(*, survey: Survey) -> list[WeightInput]:
    """The candidate activities and the accepted proposals, each with its importances (three queries).

    A respondent counts once per activity: their rating of it as a candidate if they
    gave one (also "not relevant"), else the importance they gave when proposing it.
    An activity accepted after the close was never a candidate, so only its
    proposers rated it; one accepted while the survey was open adds later raters.
    """
    activities = {a.pk: a for a in survey.candidate_activities()}
    candidates = set(activities)
    proposed = list(
        ProposedActivity.objects.for_tenant(survey.tenant)
        .filter(survey=survey, accepted_activity__isnull=False)
        .values_list("accepted_activity_id", "response_id", "importance")
    )
    extra = {activity_id for activity_id, _, _ in proposed} - candidates
    if extra:
        activities.update((a.pk, a) for a in Activity.objects.for_tenant(survey.tenant).filter(pk__in=extra))
    by_respondent: dict[int, dict[int, int | None]] = defaultdict(dict)
    for activity_id, response_id, importance in proposed:
        if activity_id in activities:
            by_respondent[activity_id][response_id] = importance
    ratings = (
        ActivityRating.objects.for_tenant(survey.tenant)
        .filter(response__survey=survey, activity__in=list(activities))
        .values_list("activity_id", "response_id", "importance")
    )
    for activity_id, response_id, importance in ratings:
        # The rating on the form is the respondent's considered answer: it replaces the proposal's.
        by_respondent[activity_id][response_id] = importance
    inputs = []
    for activity_id, activity in activities.items():
        values = [v for v in by_respondent.get(activity_id, {}).values() if v is not None]
        inputs.append(WeightInput(activity, activity_id in candidates, _mean(values), len(values)))
    return inputs


SORTS = {
    "importance": "mean importance, highest first",
    "disagreement": "disagreement between departments, largest first",
    "spread": "spread of all ratings, largest first",
}


def sort_stats(stats: list[ActivityStat], sort: str) -> list[ActivityStat]:
    def desc(value):
        # Missing values last, then by name for a stable order.
        return (value is None, -(value or 0))

    if sort == "disagreement":
        return sorted(stats, key=lambda s: (*desc(s.disagreement), *desc(s.stddev), s.activity.name))
    if sort == "spread":
        return sorted(stats, key=lambda s: (*desc(s.stddev), s.activity.name))
    return sorted(stats, key=lambda s: (*desc(s.mean), s.activity.name))


def departments_answered(*, survey: Survey) -> list[str]:
    departments = (
        SurveyResponse.objects.for_tenant(survey.tenant).filter(survey=survey).values_list("department", flat=True)
    )
    return sorted(set(departments), key=lambda d: DEPARTMENT_ORDER.get(d, 99))


def heatmap(*, survey: Survey, stats: list[ActivityStat] | None = None) -> dict:
    """Rows of activities x columns of departments; each cell a DepartmentStat with its CSS class."""
    stats = stats if stats is not None else activity_stats(survey=survey)
    departments = departments_answered(survey=survey)
    return {
        "departments": [(d, DEPARTMENT_LABELS.get(d, d)) for d in departments],
        "rows": [(s, s.cells(departments)) for s in stats],
    }


# --- Free text --------------------------------------------------------------------


def highlight_activities(text: str, names: list[str]) -> SafeString:
    """Escape `text`, then wrap catalog activity names it mentions in <mark> (case-insensitive, whole words)."""
    escaped = escape(text)
    names = sorted({escape(n) for n in names if n and n.strip()}, key=len, reverse=True)
    if not names:
        return mark_safe(escaped)  # noqa: S308 - escaped above
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?!\w)", re.IGNORECASE)
    return mark_safe(pattern.sub(r"<mark>\1</mark>", escaped))  # noqa: S308 - input escaped, names escaped


def catalog_names(tenant: Tenant) -> list[str]:
    names = []
    for name, display_name in Activity.objects.for_tenant(tenant).values_list("name", "display_name"):
        names.append(name)
        if display_name:
            names.append(display_name)
    return names


@dataclass
class AnswerRow:
    response: SurveyResponse
    who: str
    answer_html: SafeString
    comment_html: SafeString


def answers_by_department(*, survey: Survey) -> list[tuple[str, list[AnswerRow]]]:
    names = catalog_names(survey.tenant)
    responses = (
        SurveyResponse.objects.for_tenant(survey.tenant)
        .filter(survey=survey)
        .select_related("survey", "invitee__membership__user")
        .order_by("submitted_at")
    )
    groups: dict[str, list[AnswerRow]] = defaultdict(list)
    for response in responses:
        groups[response.department].append(
            AnswerRow(
                response=response,
                who=response.who,
                answer_html=highlight_activities(response.answer, names),
                comment_html=highlight_activities(response.comment, names),
            )
        )
    ordered = sorted(groups, key=lambda d: DEPARTMENT_ORDER.get(d, 99))
    return [(DEPARTMENT_LABELS.get(d, d), groups[d]) for d in ordered]


# --- Proposed activities ------------------------------------------------------------


@dataclass
class ProposalGroup:
    first: ProposedActivity  # the one an editor accepts
    proposers: list[str]  # names (or departments when anonymous)
    descriptions: list[str]
    importance_mean: float | None
    rated_count: int  # how many rated it: proposers who gave it a rating + ratings as a candidate
    accepted_activity: Activity | None


def proposal_groups(*, survey: Survey) -> list[ProposalGroup]:
    proposals = (
        ProposedActivity.objects.for_tenant(survey.tenant)
        .filter(survey=survey)
        .select_related("response__survey", "response__invitee__membership__user", "accepted_activity")
    )
    grouped: dict[str, list[ProposedActivity]] = defaultdict(list)
    for p in proposals:
        grouped[p.normalized_name].append(p)
    accepted_ids = [ps[0].accepted_activity_id for ps in grouped.values() if ps[0].accepted_activity_id]
    candidate_counts = dict(
        ActivityRating.objects.for_tenant(survey.tenant)
        .filter(response__survey=survey, activity_id__in=accepted_ids, importance__isnull=False)
        .values_list("activity_id")
        .annotate(n=Count("id"))
    )
    groups = []
    for items in grouped.values():
        first = items[0]
        ratings = [p.importance for p in items if p.importance is not None]
        proposers = []
        for p in items:
            label = DEPARTMENT_LABELS.get(p.response.department, p.response.department)
            who = p.response.who
            proposers.append(f"{who} ({label})" if who else label)
        groups.append(
            ProposalGroup(
                first=first,
                proposers=proposers,
                descriptions=[p.description for p in items if p.description],
                importance_mean=_mean(ratings),
                rated_count=len(ratings) + candidate_counts.get(first.accepted_activity_id, 0),
                accepted_activity=first.accepted_activity,
            )
        )
    groups.sort(key=lambda g: (-len(g.proposers), g.first.normalized_name))
    return groups


# --- Response rate ----------------------------------------------------------------


def response_rate(*, survey: Survey) -> dict:
    """Invited, opened, answered, overall and by department (a handful of grouped queries)."""
    invitees = (
        SurveyInvitee.objects.for_tenant(survey.tenant)
        .filter(survey=survey, revoked_at=None)
        .values("department")
        .annotate(
            invited=Count("id"),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            answered=Count("response"),
        )
    )
    share_answers = (
        SurveyResponse.objects.for_tenant(survey.tenant)
        .filter(survey=survey, invitee__isnull=True)
        .values("department")
        .annotate(n=Count("id"))
    )
    rows: dict[str, dict] = {}

    def row(department: str) -> dict:
        return rows.setdefault(
            department,
            {
                "department": department,
                "label": DEPARTMENT_LABELS.get(department, "Not known yet"),
                "invited": 0,
                "opened": 0,
                "answered": 0,
                "share_answers": 0,
            },
        )

    for r in invitees:
        entry = row(r["department"])
        entry.update(invited=r["invited"], opened=r["opened"], answered=r["answered"])
    for r in share_answers:
        row(r["department"])["share_answers"] = r["n"]
    ordered = sorted(rows.values(), key=lambda r: DEPARTMENT_ORDER.get(r["department"], 99))
    for entry in ordered:
        entry["rate"] = round(100 * entry["answered"] / entry["invited"]) if entry["invited"] else None
    totals = {key: sum(r[key] for r in ordered) for key in ("invited", "opened", "answered", "share_answers")}
    totals["rate"] = round(100 * totals["answered"] / totals["invited"]) if totals["invited"] else None
    totals["responses"] = totals["answered"] + totals["share_answers"]
    # Every share link the survey had: opens of a replaced link still happened.
    totals["share_opens"] = (
        SurveyShareLink.objects.for_tenant(survey.tenant)
        .filter(survey=survey)
        .aggregate(n=Coalesce(Sum("open_count"), 0))["n"]
    )
    return {"status": survey.status, "departments": ordered, "totals": totals}


# --- Tracking plan ------------------------------------------------------------------


def untracked_activities(*, tenant: Tenant):
    return Activity.objects.for_tenant(tenant).filter(first_seen_at__isnull=True).order_by("name")


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def tracking_snippets(*, activity: Activity) -> dict[str, str]:
    """Copy-paste snippets to send this activity as an event (Segment clients and curl)."""
    host = site_url()
    bare_host = host.split("://", 1)[-1]
    protocol = host.split("://", 1)[0] if "://" in host else "https"
    name = json.dumps(activity.name)
    python = (
        "import segment.analytics as analytics\n\n"
        'analytics.write_key = "YOUR_WRITE_KEY"\n'
        f'analytics.host = "{host}"\n'
        "analytics.timeout = 5  # seconds: give up soon, with the reason, when the host does not answer\n\n"
        f'analytics.track("user-123", {name}, {{"plan": "pro"}})\n'
    )
    javascript = (
        'import { AnalyticsBrowser } from "@segment/analytics-next";\n\n'
        "const analytics = AnalyticsBrowser.load(\n"
        '  { writeKey: "YOUR_WRITE_KEY", cdnSettings: { integrations: { "Segment.io": {\n'
        f'    apiKey: "YOUR_WRITE_KEY", apiHost: "{bare_host}/v1", protocol: "{protocol}" }} }} }},\n'
        '  { integrations: { "Segment.io": { apiHost: '
        f'"{bare_host}/v1", protocol: "{protocol}" }} }} }},\n'
        ");\n\n"
        f'analytics.track({name}, {{ plan: "pro" }});\n'
    )
    body = json.dumps({"userId": "user-123", "event": activity.name, "properties": {"plan": "pro"}})
    curl = (
        f"curl --fail-with-body --connect-timeout 5 --max-time 10 -X POST {host}/v1/track \\\n"
        "  -u 'YOUR_WRITE_KEY:' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {_shell_quote(body)}\n"
    )
    return {"python": python, "javascript": javascript, "curl": curl}


def response_of(invitee: SurveyInvitee | None) -> SurveyResponse | None:
    """The answer given through a personal link (None for the share link or before answering)."""
    if invitee is None:
        return None
    return SurveyResponse.objects.for_tenant(invitee.tenant).filter(invitee=invitee).first()
