# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""The daily insight aggregates: written by the scoring job, read by the insight pages.

`write_day_aggregates(model, days)` runs inside the scoring transaction after the
days' snapshots (scoring.hooks). For the published version it replaces, for
the days of `days` (set-based: growth and adoption in a few statements for the
whole list; transitions and outcomes one statement per day; never a loop over
end users):

- growth accounting of the week and the month holding the day, so far (new,
  retained, resurrected, churned; active and engaged; users and accounts);
- adoption: users and accounts per activity (and any activity) in the 7 and 30
  days ending the day, and users since the day's Monday (the weekly trend);
- the tier transitions from the page's default comparison day (the latest
  scored day 30 days before) to the day;
- outcomes: the day's tiers and deciles, and the 30- and 60-day horizons of the
  earlier days that close on it;
- an AggregatedDay row saying the day is done.

Drafts and retired versions write nothing (the pages read only the published
version), nor does the engine outside a scoring run: a backtest or preview,
always rolled back, should not pay for them.
Each row is a pure function of the rollup and the snapshots up to its day, so a
recompute gives the same rows. Definitions: insights/queries/common.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from accounts.scoping import tenant_sql
from core.sql import fetch_all, is_postgresql, sql_date
from scoring.models import ModelStatus, ProductScore, RunStatus, ScoringModel, ScoringRun

from .models import WEEK_TO_DATE, AdoptionCount, AggregatedDay, GrowthCount, OutcomeCount, TransitionCount
from .queries.common import ENGAGED, SUBJECTS, period_of, period_sql, period_start

PERIODS = ("week", "month")
WINDOWS = (7, 30)  # the adoption page's windows read from here (90 days is computed on the page)
TRANSITION_DAYS = 30  # the transitions page's default comparison: 30 days before
TABLES = (GrowthCount, AdoptionCount, TransitionCount, OutcomeCount, AggregatedDay)
_ENGAGED_SQL = "('" + "', '".join(ENGAGED) + "')"


def write_day_aggregates(model: ScoringModel, days: Sequence[date]) -> None:
    """The scoring hook: replace `model`'s aggregates of `days` when a scoring run computed them.

    The engine also runs outside any run — a backtest of past days, a draft's preview —
    always in a transaction that is rolled back: those skip the aggregates (seconds a day on a
    large tenant, for rows that would vanish). A run is running while its days compute.
    """
    if model.status != ModelStatus.PUBLISHED or not days:
        return
    running = ScoringRun.objects.for_tenant(model.tenant_id).filter(
        model=model, status=RunStatus.RUNNING, first_day__lte=max(days), last_day__gte=min(days))
    if running.exists():
        aggregate_days(model, days)


def aggregate_days(model: ScoringModel, days: Sequence[date]) -> None:
    """Replace `model`'s aggregates of `days` (idempotent; the hook and the backfill)."""
    if not days:
        return
    days = sorted(set(days))
    tenant_id = model.tenant_id
    for table in TABLES:
        table.objects.for_tenant(tenant_id).filter(model=model, day__in=days).delete()
    scored = list(ProductScore.objects.for_tenant(tenant_id).filter(model=model, day__lte=days[-1])
                  .order_by("day").values_list("day", flat=True))
    rows = []
    for period in PERIODS:
        for subject in SUBJECTS:
            rows += _growth_rows(model, days, period, subject, "active", _active_growth(model, days, period, subject))
            rows += _growth_rows(model, days, period, subject, "engaged",
                                 _engaged_growth(model, days, period, subject, scored))
    GrowthCount.objects.bulk_create(rows)
    AdoptionCount.objects.bulk_create(_adoption_rows(model, days))
    pairs = _transition_pairs(days, scored)
    TransitionCount.objects.bulk_create(_transition_rows(model, pairs))
    OutcomeCount.objects.bulk_create(_outcome_rows(model, days, scored))
    AggregatedDay.objects.bulk_create(
        AggregatedDay(tenant_id=tenant_id, model=model, day=d, transitions_from=pairs.get(d)) for d in days)


def _values(rows: list[tuple], names: str) -> tuple[str, list]:
    """A VALUES list as a CTE body: `d(day, p)` with one (%s, ...) per row (dates typed on PostgreSQL)."""
    cast = "CAST(%s AS DATE)" if is_postgresql() else "%s"
    cells = []
    params: list = []
    for row in rows:
        # None is always a date here (a day with no scored day yet): typed too, or PostgreSQL reads text.
        cells.append("(" + ", ".join(cast if v is None or isinstance(v, date) else "%s" for v in row) + ")")
        params += [sql_date(v) if isinstance(v, date) else v for v in row]
    return f"{names} AS (VALUES {', '.join(cells)})", params


def _plus_days(column: str, n: int) -> str:
    return f"({column} + {int(n)})" if is_postgresql() else f"date({column}, '+{int(n)} days')"


# --- Growth accounting ------------------------------------------------------------------------------


def _growth_rows(model, days, period, subject, measure, counts: dict[date, tuple]) -> list[GrowthCount]:
    out = []
    for d in days:
        active, retained, resurrected, churned = counts.get(d, (0, 0, 0, 0))
        out.append(GrowthCount(tenant_id=model.tenant_id, model=model, day=d, period=period, subject=subject,
                               measure=measure, active=active, new=active - retained - resurrected,
                               retained=retained, resurrected=resurrected, churned=churned))
    return out


def _first_days_sql(tenant_id: int, subject: str, period: str, first: date, last: date) -> tuple[str, list]:
    """CTE `m`: each subject's first active day in each period, from the rollup rows of [first, last].

    An account's is its earliest member's (every account the user is a member of now), taken
    from the members' first days rather than joining every rollup row to the memberships."""
    scope, params = tenant_sql(tenant_id, "r")
    params = [*params, sql_date(first), sql_date(last)]
    users = f"""SELECT r.end_user_id AS s, {period_sql("r.day", period)} AS p, MIN(r.day) AS f
        FROM events_dailyactivitycount r WHERE {scope} AND r.day >= %s AND r.day <= %s
        GROUP BY r.end_user_id, {period_sql("r.day", period)}"""
    if subject == "users":
        return f"m AS ({users})", params
    member_scope, member_params = tenant_sql(tenant_id, "am")
    return (f"""mu AS ({users}),
    m AS (SELECT am.account_id AS s, mu.p, MIN(mu.f) AS f FROM mu
          JOIN events_accountmembership am ON am.end_user_id = mu.s AND am.ended_at IS NULL
          WHERE {member_scope} GROUP BY am.account_id, mu.p)"""), [*params, *member_params]


def _seen_before_sql(tenant_id: int, subject: str, column: str, before: str) -> tuple[str, list]:
    """EXISTS: subject `column` had any rollup row before the date expression `before`."""
    scope, params = tenant_sql(tenant_id, "z")
    if subject == "users":
        return (f"EXISTS (SELECT 1 FROM events_dailyactivitycount z WHERE {scope} AND z.end_user_id = {column}"
                f" AND z.day < {before})"), params
    member_scope, member_params = tenant_sql(tenant_id, "za")
    return (f"""EXISTS (SELECT 1 FROM events_accountmembership za
        JOIN events_dailyactivitycount z ON z.end_user_id = za.end_user_id
        WHERE {member_scope} AND za.account_id = {column} AND za.ended_at IS NULL AND {scope}
          AND z.day < {before})"""), [*member_params, *params]


def _active_growth(model, days, period, subject) -> dict[date, tuple]:
    """{day: (active, retained, resurrected, churned)} of the day's period so far, from the rollup."""
    periods = sorted({period_of(d, period) for d in days})
    first_days, first_params = _first_days_sql(model.tenant_id, subject, period,
                                               period_start(periods[0] - 1, period), days[-1])
    day_cte, day_params = _values([(d, period_of(d, period)) for d in days], "d(day, p)")
    period_cte, period_params = _values([(p, period_start(p - 1, period)) for p in periods], "pp(p, prev_start)")
    seen, seen_params = _seen_before_sql(model.tenant_id, subject, "w.s", "pp.prev_start")
    # m: each subject's first active day in each period (from the period before the first one asked);
    # a subject counts on day d when its first day in d's period is on or before d. Its previous and
    # next periods come from window functions over its own rows (no self-join to misestimate).
    sql = f"""WITH {day_cte}, {period_cte},
    {first_days},
    w AS (
        SELECT m.s, m.p, m.f, LAG(m.p) OVER (PARTITION BY m.s ORDER BY m.p) AS prev_p,
               LEAD(m.p) OVER (PARTITION BY m.s ORDER BY m.p) AS next_p,
               LEAD(m.f) OVER (PARTITION BY m.s ORDER BY m.p) AS next_f
        FROM m
    ),
    mm AS (
        SELECT w.p, w.f, CASE WHEN w.prev_p = w.p - 1 THEN 1 ELSE 0 END AS ret,
               CASE WHEN w.prev_p < w.p - 1 THEN 1 WHEN w.prev_p IS NULL AND {seen} THEN 1 ELSE 0 END AS res
        FROM w JOIN pp ON pp.p = w.p
    )
    SELECT d.day, 'a', COUNT(*), SUM(mm.ret), SUM(mm.res) FROM d JOIN mm ON mm.p = d.p AND mm.f <= d.day
        GROUP BY d.day
    UNION ALL
    SELECT d.day, 'c', COUNT(*), 0, 0 FROM d JOIN w ON w.p = d.p - 1
        WHERE w.next_p IS NULL OR w.next_p > d.p OR w.next_f > d.day
        GROUP BY d.day"""
    params = [*day_params, *period_params, *first_params, *seen_params]
    return _growth_counts(fetch_all(sql, params))


def _growth_counts(found) -> dict[date, tuple]:
    counts: dict[date, list[int]] = {}
    for d, kind, n, ret, res in found:
        d = d if isinstance(d, date) else date.fromisoformat(str(d))
        row = counts.setdefault(d, [0, 0, 0, 0])
        if kind == "a":
            row[0], row[1], row[2] = int(n), int(ret or 0), int(res or 0)
        else:
            row[3] = int(n)
    return {d: tuple(v) for d, v in counts.items()}


def _last_scored(scored: list[date], period: str) -> dict[int, date]:
    last: dict[int, date] = {}
    for d in scored:
        last[period_of(d, period)] = d  # scored is in order: the last one wins
    return last


def _engaged_growth(model, days, period, subject, scored: list[date]) -> dict[date, tuple]:
    """{day: counts} where "engaged in a period" is engaged on its last scored day (on or before `day`)."""
    last = _last_scored(scored, period)
    day_rows, before_rows = [], []
    for d in days:
        p = period_of(d, period)
        so_far = max((s for s in scored if s <= d and period_of(s, period) == p), default=None)
        day_rows.append((d, so_far, last.get(p - 1)))
        before_rows += [(d, last[q]) for q in last if q < p - 1]
    if not any(r[1] or r[2] for r in day_rows):
        return {}
    table, column, _ = SUBJECTS[subject]
    day_cte, day_params = _values(day_rows, "d(day, cur_day, prev_day)")
    scopes = {alias: tenant_sql(model.tenant_id, alias) for alias in ("x", "y", "z")}
    engaged = f"model_id = {int(model.pk)} AND {{a}}.tier IN {_ENGAGED_SQL}"
    if before_rows:
        before_cte, before_params = _values(before_rows, "bd(day, before_day)")
        seen = f"""EXISTS (SELECT 1 FROM bd JOIN {table} z ON z.day = bd.before_day WHERE bd.day = cl.day
            AND {scopes["z"][0]} AND z.{column} = cl.s AND z.{engaged.format(a="z")})"""
        seen_params = scopes["z"][1]
        before_cte = ", " + before_cte
    else:
        before_cte, before_params, seen, seen_params = "", [], "1 = 0", []
    # The engaged rows of the day's period so far (c) and of the period before (pv), stacked and grouped
    # by (day, subject): no join between the two snapshots (the day just scored has no statistics yet).
    # Only those engaged now but not before are probed for an earlier period.
    sql = f"""WITH {day_cte}{before_cte},
    st AS (
        SELECT d.day, x.{column} AS s, 1 AS c, 0 AS pv FROM d JOIN {table} x ON x.day = d.cur_day
            WHERE {scopes["x"][0]} AND x.{engaged.format(a="x")}
        UNION ALL
        SELECT d.day, y.{column}, 0, 1 FROM d JOIN {table} y ON y.day = d.prev_day
            WHERE {scopes["y"][0]} AND y.{engaged.format(a="y")}
    ),
    cl AS (SELECT day, s, MAX(c) AS c, MAX(pv) AS ret FROM st GROUP BY day, s)
    SELECT day, 'a', COUNT(*), SUM(ret), SUM(CASE WHEN ret = 1 THEN 0 WHEN {seen} THEN 1 ELSE 0 END)
        FROM cl WHERE c = 1 GROUP BY day
    UNION ALL
    SELECT day, 'c', COUNT(*), 0, 0 FROM cl WHERE c = 0 GROUP BY day"""
    params = [*day_params, *before_params, *scopes["x"][1], *scopes["y"][1], *seen_params]
    return _growth_counts(fetch_all(sql, params))


# --- Adoption ---------------------------------------------------------------------------------------


def _adoption_source(model, subject: str) -> tuple[str, list]:
    """(k activity, s subject, day) rollup rows: the end user, or every account it is a member of now."""
    scope, scope_params = tenant_sql(model.tenant_id, "r")
    if subject == "users":
        return (f"SELECT r.activity_id AS k, r.end_user_id AS s, r.day AS day FROM events_dailyactivitycount r"
                f" WHERE {scope}"), scope_params
    member_scope, member_params = tenant_sql(model.tenant_id, "am")
    return (f"""SELECT r.activity_id AS k, am.account_id AS s, r.day AS day FROM events_dailyactivitycount r
        JOIN events_accountmembership am ON am.end_user_id = r.end_user_id AND am.ended_at IS NULL
        WHERE {scope} AND {member_scope}"""), [*scope_params, *member_params]


def _adoption_sql(model, days, subject: str) -> tuple[str, list]:
    """(day, window, activity or -1 for any, distinct subjects) for every day, window and activity.

    Each (activity, subject, active day) row counts from its day until the window closes or the
    subject's next active day takes over (LEAD), so the distinct count of a day is a running sum
    of +1/-1 steps per activity: one pass over the rollup for the whole list of days.
    """
    rows, rows_params = _adoption_source(model, subject)
    windows = [*WINDOWS, WEEK_TO_DATE] if subject == "users" else list(WINDOWS)
    first = days[0] - timedelta(days=max(WINDOWS) - 1)
    day_cte, day_params = _values([(d, d - timedelta(days=d.weekday())) for d in days], "d(day, monday)")
    steps = []
    for w in WINDOWS:
        stop = _plus_days("day", w)
        steps.append(f"SELECT {w} AS w, k, day, 1 AS n FROM iv UNION ALL "
                     f"SELECT {w}, k, CASE WHEN nx IS NOT NULL AND nx < {stop} THEN nx ELSE {stop} END, -1 FROM iv")
    week = period_sql("day", "week")
    weekly = ""
    if WEEK_TO_DATE in windows:
        # Since Monday: each (activity, subject)'s first day of the week, counted from then to Sunday.
        weekly = f"""UNION ALL
    SELECT d.day, {WEEK_TO_DATE}, f.k, SUM(f.n) FROM d JOIN (
        SELECT k, f, COUNT(*) AS n FROM (SELECT k, s, MIN(day) AS f FROM x GROUP BY k, s, {week}) w1 GROUP BY k, f
    ) f ON f.f >= d.monday AND f.f <= d.day GROUP BY d.day, f.k"""
    sql = f"""WITH {day_cte},
    x0 AS ({rows} AND r.day >= %s AND r.day <= %s),
    x AS (SELECT k, s, day FROM x0 GROUP BY k, s, day UNION ALL SELECT -1, s, day FROM x0 GROUP BY s, day),
    iv AS (SELECT k, day, LEAD(day) OVER (PARTITION BY k, s ORDER BY day) AS nx FROM x),
    steps AS (SELECT w, k, day, SUM(n) AS n FROM ({" UNION ALL ".join(steps)}) t GROUP BY w, k, day)
    SELECT d.day, steps.w, steps.k, SUM(steps.n) FROM d JOIN steps ON steps.day <= d.day
        GROUP BY d.day, steps.w, steps.k HAVING SUM(steps.n) > 0
    {weekly}"""
    return sql, [*day_params, *rows_params, sql_date(first), sql_date(days[-1])]


def _adoption_day_sql(model, day: date) -> tuple[str, list, list[int]]:
    """`_adoption_sql` for one day, both subjects: each (activity, end user)'s last active day in the 30
    days, each account's from its members', and over all activities, counted against each window's
    first day in one pass (hash aggregates, no sort). Rows: (subject, activity or -1, n per window)."""
    rows, rows_params = _adoption_source(model, "users")
    member_scope, member_params = tenant_sql(model.tenant_id, "am")
    windows = [(w, day - timedelta(days=w - 1)) for w in WINDOWS] + [(WEEK_TO_DATE,
                                                                        day - timedelta(days=day.weekday()))]
    sums = ", ".join(f"SUM(CASE WHEN lastday >= %s THEN 1 ELSE 0 END) AS n{w}" for w, _start in windows)
    sql = f"""WITH x0 AS ({rows} AND r.day >= %s AND r.day <= %s),
    last AS (SELECT k, s, MAX(day) AS lastday FROM x0 GROUP BY k, s),
    acc AS (SELECT l.k, am.account_id AS s, MAX(l.lastday) AS lastday FROM last l
            JOIN events_accountmembership am ON am.end_user_id = l.s AND am.ended_at IS NULL
            WHERE {member_scope} GROUP BY l.k, am.account_id),
    al AS (SELECT 'users' AS subject, k, lastday FROM last
           UNION ALL SELECT 'users', -1, MAX(lastday) FROM last GROUP BY s
           UNION ALL SELECT 'accounts', k, lastday FROM acc
           UNION ALL SELECT 'accounts', -1, MAX(lastday) FROM acc GROUP BY s)
    SELECT subject, k, {sums} FROM al GROUP BY subject, k"""
    params = [*rows_params, sql_date(day - timedelta(days=max(WINDOWS) - 1)), sql_date(day), *member_params,
              *[sql_date(start) for _w, start in windows]]
    return sql, params, [w for w, _start in windows]


# A scoring run of a day or two (the hourly refresh): one statement per day beats the range's sort.
SHORT_RANGE = 3


def _adoption_rows(model, days) -> list[AdoptionCount]:
    found = []  # (day, window, activity or -1, subject, n)
    if len(days) <= SHORT_RANGE:
        for d in days:
            sql, params, windows = _adoption_day_sql(model, d)
            found += [(d, w, k, subject, n) for subject, k, *ns in fetch_all(sql, params)
                      for w, n in zip(windows, ns, strict=True)]
    else:
        found = [(d, w, k, subject, n) for subject in SUBJECTS
                 for d, w, k, n in fetch_all(*_adoption_sql(model, days, subject))]
    counts: dict[tuple, dict[str, int]] = {}
    for d, w, k, subject, n in found:
        if not n:
            continue
        d = d if isinstance(d, date) else date.fromisoformat(str(d))
        counts.setdefault((d, int(w), None if int(k) == -1 else int(k)), {})[subject] = int(n)
    out = []
    for (d, w, activity_id), n in counts.items():
        out.append(AdoptionCount(tenant_id=model.tenant_id, model=model, day=d, window=w, activity_id=activity_id,
                                 users=n.get("users", 0),
                                 accounts=None if w == WEEK_TO_DATE else n.get("accounts", 0)))
    return out


# --- Tier transitions ----------------------------------------------------------------------------------


def transitions_from(scored: list[date], day: date) -> date | None:
    """The page's default first day for `day`: the latest scored day on or before 30 days earlier
    (else the first scored day), as insights.views.transitions.snapped_days picks it."""
    wanted = day - timedelta(days=TRANSITION_DAYS)
    before = [d for d in scored if d <= wanted]
    return before[-1] if before else (scored[0] if scored else None)


def _transition_pairs(days, scored: list[date]) -> dict[date, date]:
    scored_set = set(scored)
    return {d: transitions_from(scored, d) for d in days if d in scored_set}


def _transition_rows(model, pairs: dict[date, date]) -> list[TransitionCount]:
    """Per day: both days' snapshot rows stacked and grouped by subject (no join, so the fresh rows
    of the day just scored, which the planner has no statistics for yet, cannot derail a plan)."""
    from .queries.transitions import NOT_SEEN

    out = []
    for day_to, day_from in sorted(pairs.items()):
        for subject, (table, column, _) in SUBJECTS.items():
            scope, params = tenant_sql(model.tenant_id, "x")
            sql = f"""SELECT COALESCE(tier_from, '{NOT_SEEN}'), tier_to, COUNT(*) FROM (
                SELECT MAX(CASE WHEN x.day = %s THEN x.tier END) AS tier_from,
                       MAX(CASE WHEN x.day = %s THEN x.tier END) AS tier_to
                FROM {table} x WHERE {scope} AND x.model_id = %s AND x.day IN (%s, %s) GROUP BY x.{column}
            ) t WHERE tier_to IS NOT NULL GROUP BY COALESCE(tier_from, '{NOT_SEEN}'), tier_to"""
            found = fetch_all(sql, [sql_date(day_from), sql_date(day_to), *params, model.pk, sql_date(day_from),
                                    sql_date(day_to)])
            out += [TransitionCount(tenant_id=model.tenant_id, model=model, day=day_to, day_from=day_from,
                                    subject=subject, tier_from=tier_from, tier_to=tier_to, subjects=int(n))
                    for tier_from, tier_to, n in found]
    return out


# --- Outcomes ------------------------------------------------------------------------------------------


def _outcome_rows(model, days, scored: list[date]) -> list[OutcomeCount]:
    """The outcome groups of each scored day of `days` (horizon 0), and the horizons that close on a day
    of `days`: day d's 30-day outcome is written with day d + 30 (the 7 days ending then)."""
    from .queries.outcomes import HORIZONS, outcome_groups_sql

    today = model.tenant.today()
    scored_set = set(scored)
    wanted: dict[date, set[int]] = {}
    for d in days:
        for h in (0, *HORIZONS):
            for snap in (d, d - timedelta(days=h)):
                if snap in scored_set and snap + timedelta(days=h) <= today:
                    wanted.setdefault(snap, set()).add(h)
    # The rows of the days themselves went with TABLES; these are the earlier days' closing horizons.
    for h in HORIZONS:
        OutcomeCount.objects.for_tenant(model.tenant_id).filter(
            model=model, horizon=h, day__in=[d - timedelta(days=h) for d in days]).delete()
    out = []
    for snap, horizons in sorted(wanted.items()):  # one statement per snapshot day and subject
        later = tuple(h for h in HORIZONS if h in horizons)
        for subject in SUBJECTS:
            for kind, group, n, *rest in fetch_all(*outcome_groups_sql(model.tenant_id, model.pk, snap, subject,
                                                                       later)):
                with_trait, churned, mrr = rest[len(later):]
                grouping = "tier" if kind == "t" else "decile"
                for h, active in zip((0, *later), (0, *rest[: len(later)]), strict=True):
                    if h not in horizons:
                        continue
                    out.append(OutcomeCount(
                        tenant_id=model.tenant_id, model=model, day=snap, subject=subject, horizon=h,
                        grouping=grouping, group=str(group), subjects=int(n), active=int(active or 0),
                        with_churn_trait=None if with_trait is None else int(with_trait),
                        churned=None if churned is None else int(churned),
                        mrr=None if mrr is None else round(float(mrr), 2)))
    return out


# --- Backfill ---------------------------------------------------------------------------------------

BACKFILL_CHUNK_DAYS = 31


def aggregates_backfill(tenant, *, days: int | None = None) -> int:
    """Write the published version's aggregates for the last `days` days (None: from the first rollup
    or scored day), a month per transaction under each day's scoring lock. Returns the days written.

    For installs older than the aggregates and for history the scoring runs never covered (the
    pages need a year of months); a recompute of scores rewrites its days' aggregates anyway.
    """
    from django.db import transaction
    from django.db.models import Min

    from events.models import DailyActivityCount
    from scoring.engine import lock_day
    from scoring.selectors import published_model

    model = published_model(tenant)
    if model is None:
        return 0
    today = tenant.today()
    if days is not None:
        start = today - timedelta(days=days - 1)
    else:
        firsts = [DailyActivityCount.objects.for_tenant(tenant).aggregate(d=Min("day"))["d"],
                  ProductScore.objects.for_tenant(tenant).filter(model=model).aggregate(d=Min("day"))["d"]]
        start = min([d for d in firsts if d is not None], default=today)
    every = [start + timedelta(days=i) for i in range((today - start).days + 1)]
    for i in range(0, len(every), BACKFILL_CHUNK_DAYS):
        chunk = every[i : i + BACKFILL_CHUNK_DAYS]
        with transaction.atomic():
            for day in chunk:  # in order, as the scoring runs take them
                lock_day(tenant.pk, day)
            aggregate_days(model, chunk)
    return len(every)
