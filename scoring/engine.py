"""The scoring engine: one tenant day under one model version, in four SQL statements.

For a day it deletes the version's rows of that day, then inserts the user
snapshots straight from the rollup (`events_dailyactivitycount`), the account
snapshots from the user snapshots, and the product row from the user snapshots,
all inside one transaction. Nothing loops over events or users in Python, so
memory stays flat however many events a tenant has; the formulas are written
out in docs/scoring.md. compute_days (below) writes the same rows for a range
of days from one read of the rollup; compute_day stays the reference it is
tested against, and what a lone day runs.

The SQL runs unchanged on SQLite (embedded default) and PostgreSQL: dates and
datetimes are adapted by the connection's own ops, the recency decay comes as a
small VALUES table of per-day factors (no `power()` needed), the cap is a CASE,
the median uses ROW_NUMBER. Only constants of this module (table names,
CASE expressions) are formatted into the SQL; every value is a parameter.
Sums are rounded to 4 decimals so a recompute gives
identical rows whatever order the database adds them in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from accounts.scoping import tenant_sql
from core.sql import sql_date

from .hooks import run_day_hooks
from .models import AccountRollup, ScoringModel, TierMethod

USER_TABLE = "scoring_userscore"
ACCOUNT_TABLE = "scoring_accountscore"
PRODUCT_TABLE = "scoring_productscore"


@dataclass(frozen=True)
class DayResult:
    day: date
    users: int
    accounts: int

    @property
    def rows(self) -> int:
        return self.users + self.accounts + 1


def _dt(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def day_start(model: ScoringModel, day: date) -> datetime:
    """The instant a tenant day begins, in the tenant's time zone."""
    return datetime.combine(day, time.min, tzinfo=model.tenant.tzinfo)


def decay_factors(model: ScoringModel, day: date) -> list[tuple[date, float]]:
    """0.5 ** (age / half-life) for each day of the window ending with `day`."""
    half_life = model.half_life_days
    return [(day - timedelta(days=age), 0.5 ** (age / half_life)) for age in range(model.window_days)]


def _tier_case(metric: str, model: ScoringModel, dormant: str, new: str) -> tuple[str, list]:
    sql = (
        f"CASE WHEN {dormant} THEN 'dormant' WHEN {new} THEN 'new' "
        f"WHEN {metric} >= %s THEN 'high' WHEN {metric} >= %s THEN 'medium' ELSE 'low' END"
    )
    return sql, [model.tier_high, model.tier_medium]


def model_weights(model: ScoringModel) -> list[tuple[int, int]]:
    """(activity id, points) of the activities that count (points > 0)."""
    return list(model.weights.filter(points__gt=0).order_by("activity_id").values_list("activity_id", "points"))


def _weights_cte(model: ScoringModel, weights: list | None) -> tuple[list[str], list]:
    """The `weights (activity_id, points)` CTE of the activities that count."""
    if connection.vendor == "sqlite":
        # SQLite's planner would loop over a VALUES list and rescan the window once per
        # activity; reading the table, it looks each rollup row's weight up by index.
        sql = "SELECT activity_id, points FROM scoring_activityweight WHERE model_id = %s AND points > 0"
        return [f"weights (activity_id, points) AS ({sql})"], [model.pk]
    # PostgreSQL gets a VALUES list: exact row estimates for the planner (no dependency on the
    # weights table's statistics), so it reads the window through the rollup's (tenant, day) index.
    weights = model_weights(model) if weights is None else weights
    if not weights:
        return ["weights (activity_id, points) AS (SELECT 0, 0 WHERE 1 = 0)"], []
    values = ", ".join(["(%s, %s)"] * len(weights))
    return [f"weights (activity_id, points) AS (VALUES {values})"], [v for pair in weights for v in pair]


def contrib_ctes(
    model: ScoringModel, day: date, subject_sql: str = "", subject_params=(), weights: list | None = None
) -> tuple[list[str], list]:
    """CTEs ending in `contrib`: one row per rollup row in the window with its weighted points `pts`.

    points_a x min(count, cap) x 0.5 ** ((day - t) / half_life), for activities with points > 0.
    `subject_sql` narrows the rows (e.g. one end user, for the explanation).
    """
    ctes, params = _weights_cte(model, weights)
    decay_join, factor_sql, factor_params = "", "1", []
    if model.half_life_days and connection.vendor == "sqlite":
        # SQLite cannot use the (tenant, day) index for a join on a VALUES day, so the factor
        # is a CASE over the window's days instead (SQLite may also lack power()).
        factors = decay_factors(model, day)
        factor_sql = f"(CASE r.day {' '.join(['WHEN %s THEN %s'] * len(factors))} ELSE 0 END)"
        factor_params = [value for when, factor in factors for value in (sql_date(when), factor)]
    elif model.half_life_days:
        factors = decay_factors(model, day)
        # Float factors, so PostgreSQL sums in floating point rather than in numeric (slower);
        # the result is rounded to 4 decimals, which keeps recomputes identical.
        values = ", ".join(["(%s, CAST(%s AS DOUBLE PRECISION))"] * len(factors))
        ctes.append(f"decay (day, factor) AS (VALUES {values})")
        for when, factor in factors:
            params += [sql_date(when), factor]
        decay_join, factor_sql = "JOIN decay ON decay.day = r.day", "decay.factor"
    if model.daily_cap:
        count_sql = 'CASE WHEN r."count" > %s THEN %s ELSE r."count" END'
    else:
        count_sql = 'r."count"'
    first_day = day - timedelta(days=model.window_days - 1)
    tenant_where, tenant_params = tenant_sql(model.tenant_id, "r")
    ctes.append(
        f"""contrib AS (
        SELECT r.end_user_id AS end_user_id, r.activity_id AS activity_id, r.day AS day,
               ({count_sql}) AS times, w.points * ({count_sql}) * {factor_sql} AS pts
        FROM events_dailyactivitycount r
        JOIN weights w ON w.activity_id = r.activity_id
        {decay_join}
        WHERE {tenant_where} AND r.day >= %s AND r.day <= %s AND r."count" > 0 {subject_sql}
    )"""  # noqa: S608 - only module constants are formatted in; values are parameters
    )
    # In SQL order: times (cap), pts (cap, factor), then the WHERE clause.
    cap = [model.daily_cap, model.daily_cap] if model.daily_cap else []
    params += cap + cap + factor_params
    params += [*tenant_params, sql_date(first_day), sql_date(day), *subject_params]
    return ctes, params


# The earlier days each snapshot compares its points with (stored as `change_<key>`), and how many
# days before the scored day each is. The lists show the change over 7 and 30 days.
COMPARED = {"7": 7, "30": 30}


def compared_days(model: ScoringModel) -> dict[str, int]:
    """{column suffix: days back} of the points a snapshot stores a comparison with."""
    return dict(COMPARED)


def days_back(model: ScoringModel) -> list[int]:
    """Every earlier day whose points the engine computes with a day's: the changes' and the trend's."""
    return sorted({*COMPARED.values(), model.trend_days})


def falling_sql(alias: str, model: ScoringModel) -> tuple[str, list]:
    """The falling flag (docs/scoring.md): not new, had points `trend_days` earlier, and today's are
    at least `falling_drop_pct` % below them. FALSE for every row when the model has no percentage."""
    if not model.falling_drop_pct:
        return "FALSE", []
    sql = (
        f"CASE WHEN {alias}.tier <> 'new' AND {alias}.trend_points > 0 "
        f"AND {alias}.points <= {alias}.trend_points * %s THEN TRUE ELSE FALSE END"
    )
    return sql, [1 - model.falling_drop_pct / 100]


def _factor_sql(model: ScoringModel, day: date, back: int, first_read: date) -> tuple[str, list, list]:
    """(factor expression, its params, decay VALUES columns) of the window ending `back` days before `day`.

    The factor is 0.5 ** (age / half_life) inside that window and NULL outside it, so a SUM over the
    rows read once gives that day's points exactly as the engine computes them on that day."""
    end = day - timedelta(days=back)
    first = end - timedelta(days=model.window_days - 1)
    if not model.half_life_days:
        return "(CASE WHEN r.day >= %s AND r.day <= %s THEN 1 END)", [sql_date(first), sql_date(end)], []
    factors = decay_factors(model, end)
    if connection.vendor == "sqlite":
        sql = f"(CASE r.day {' '.join(['WHEN %s THEN %s'] * len(factors))} END)"
        return sql, [value for when, factor in factors for value in (sql_date(when), factor)], []
    by_day = dict(factors)
    span = (day - first_read).days + 1
    column = [by_day.get(first_read + timedelta(days=i)) for i in range(span)]
    return f"decay.f{back}", [], column


def _per_user_cte(model: ScoringModel, day: date) -> tuple[list[str], list]:
    """CTEs ending in `per_user`: each end user with any activity in the days read, with the points,
    breadth and active days of `day`, the points of each compared day, and the last day seen.

    One pass over the rollup from the first compared window's start to `day` (FILTER-like CASE sums),
    instead of scoring each compared day again."""
    ctes, params = _weights_cte(model, None)
    backs = [0, *days_back(model)]
    first_read = day - timedelta(days=max(backs) + model.window_days - 1)
    factors = {back: _factor_sql(model, day, back, first_read) for back in backs}
    decay_join = ""
    if any(column for _, _, column in factors.values()):
        # PostgreSQL: one VALUES row per day read with each compared day's factor (NULL outside its window).
        names = [f"f{back}" for back in backs]
        span = (day - first_read).days + 1
        row = "(%s, " + ", ".join(["CAST(%s AS DOUBLE PRECISION)"] * len(backs)) + ")"
        ctes.append(f"decay (day, {', '.join(names)}) AS (VALUES {', '.join([row] * span)})")
        for i in range(span):
            params += [sql_date(first_read + timedelta(days=i)), *(factors[b][2][i] for b in backs)]
        decay_join = "JOIN decay ON decay.day = r.day"
    if model.daily_cap:
        count_sql, count_params = 'CASE WHEN r."count" > %s THEN %s ELSE r."count" END', [model.daily_cap] * 2
    else:
        count_sql, count_params = 'r."count"', []
    window_start = sql_date(day - timedelta(days=model.window_days - 1))
    tenant_where, tenant_params = tenant_sql(model.tenant_id, "r")
    # Two aggregates: every compared day's points and the last day seen as sums over the days read
    # (a hash aggregate per end user, no sort), and breadth and active days over the window alone.
    sums, sum_params = [], []
    for back in backs:
        factor, factor_params, _ = factors[back]
        name = "points" if back == 0 else f"points_{back}"
        sums.append(f"ROUND(CAST(COALESCE(SUM(r.wc * {factor}), 0) AS NUMERIC), 4) AS {name}")
        sum_params += factor_params
    # OFFSET 0 keeps the capped, weighted count a column computed once per row, not once per sum.
    ctes.append(
        f"""sums AS (
        SELECT r.end_user_id AS end_user_id, {", ".join(sums)}, MAX(r.day) AS last_seen
        FROM (
            SELECT r.end_user_id AS end_user_id, r.day AS day, w.points * ({count_sql}) AS wc
            FROM events_dailyactivitycount r
            LEFT JOIN weights w ON w.activity_id = r.activity_id
            WHERE {tenant_where} AND r.day >= %s AND r.day <= %s AND r."count" > 0
            {"OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"}
        ) r
        {decay_join}
        GROUP BY r.end_user_id
    )"""  # noqa: S608 - only module constants are formatted in; values are parameters
    )
    params += [*sum_params, *count_params, *tenant_params, sql_date(first_read), sql_date(day)]
    ctes.append(
        f"""in_window AS (
        SELECT r.end_user_id AS end_user_id, COUNT(DISTINCT r.activity_id) AS breadth,
               COUNT(DISTINCT r.day) AS active_days
        FROM events_dailyactivitycount r JOIN weights w ON w.activity_id = r.activity_id
        WHERE {tenant_where} AND r.day >= %s AND r.day <= %s AND r."count" > 0
        GROUP BY r.end_user_id
    )"""  # noqa: S608 - constants only
    )
    params += [*tenant_params, window_start, sql_date(day)]
    ctes.append(
        """per_user AS (
        SELECT s.*, COALESCE(iw.breadth, 0) AS breadth, COALESCE(iw.active_days, 0) AS active_days
        FROM sums s LEFT JOIN in_window iw ON iw.end_user_id = s.end_user_id
    )"""
    )
    return ctes, params


def _changes_sql(alias: str, model: ScoringModel) -> str:
    """The stored changes: points now minus the points of each compared day (4 decimals)."""
    return ", ".join(
        f"ROUND(CAST({alias}.points - {alias}.points_{back} AS NUMERIC), 4) AS change_{key}"
        for key, back in compared_days(model).items()
    )


def _change_columns(model: ScoringModel, alias: str = "") -> str:
    return ", ".join(f"{alias}change_{key}" for key in compared_days(model))


def user_scores_sql(model: ScoringModel, day: date) -> tuple[str, list]:
    tenant_id = model.tenant_id
    ctes, params = _per_user_cte(model, day)
    backs = days_back(model)
    carried = ", ".join(f"points_{back}" for back in backs)
    ctes.append(
        f"""ranked AS (
        SELECT end_user_id, points, breadth, active_days, {carried}, last_seen,
               ROUND(CAST(100.0 * CUME_DIST() OVER (ORDER BY points) AS NUMERIC), 2) AS percentile
        FROM per_user WHERE points > 0
    )"""  # noqa: S608 - constants only
    )
    falling, falling_params = falling_sql("x", model)
    select_params = [tenant_id, model.pk, sql_date(day), *falling_params]
    if model.grace_days:
        # New: first seen inside the grace period, and no activity at all before it
        # (imported history makes first_seen_at later than the first activity).
        # No tenant filter on r2: the end user pins it, and the (end_user, ...) index serves it.
        new_sql = (
            "(e.first_seen_at >= %s AND NOT EXISTS (SELECT 1 FROM events_dailyactivitycount r2 "
            "WHERE r2.end_user_id = e.id AND r2.day <= %s))"
        )
        grace_start = day - timedelta(days=model.grace_days - 1)
        select_params += [_dt(day_start(model, grace_start)), sql_date(grace_start - timedelta(days=1))]
    else:
        new_sql = "1 = 0"
    metric = "k.percentile" if model.tier_method == TierMethod.PERCENTILE else "k.points"
    tier_sql, tier_params = _tier_case(metric, model, "1 = 0", new_sql)
    select_params += tier_params
    # Scored users, then the tenant's other end users seen by the end of the day as dormant:
    # first seen before it ends, or (imported history) with any activity up to that day. A dormant
    # user active in the days read carries its earlier points and last day from per_user; one quiet
    # for longer looks its last day up in the rollup (by the end-user index).
    day_end = _dt(day_start(model, day + timedelta(days=1)))
    tenant_where, tenant_params = tenant_sql(tenant_id, "e")
    dormant_changes = ", ".join(f"-COALESCE(p.points_{back}, 0)" for back in compared_days(model).values())
    select_params += [sql_date(day), *tenant_params, day_end, sql_date(day)]
    trend = model.trend_days
    sql = f"""INSERT INTO {USER_TABLE} (tenant_id, model_id, day, end_user_id, points, breadth, active_days,
        percentile, tier, {_change_columns(model)}, last_seen, trend_points, falling)
    WITH {", ".join(ctes)}
    SELECT %s, %s, %s, x.end_user_id, x.points, x.breadth, x.active_days, x.percentile, x.tier,
        {_change_columns(model, "x.")}, x.last_seen, x.trend_points, {falling}
    FROM (
        SELECT k.end_user_id AS end_user_id, k.points AS points, k.breadth AS breadth,
            k.active_days AS active_days, k.percentile AS percentile, {tier_sql} AS tier,
            {_changes_sql("k", model)}, k.last_seen AS last_seen, k.points_{trend} AS trend_points
        FROM ranked k JOIN events_enduser e ON e.id = k.end_user_id
        UNION ALL
        SELECT e.id, 0, 0, 0, NULL, 'dormant', {dormant_changes},
            COALESCE(p.last_seen, (SELECT MAX(r4.day) FROM events_dailyactivitycount r4
                                   WHERE r4.end_user_id = e.id AND r4.day <= %s AND r4."count" > 0)),
            COALESCE(p.points_{trend}, 0)
        FROM events_enduser e LEFT JOIN per_user p ON p.end_user_id = e.id
        WHERE {tenant_where} AND e.id NOT IN (SELECT end_user_id FROM ranked)
          AND (e.first_seen_at < %s OR EXISTS (
              SELECT 1 FROM events_dailyactivitycount r3 WHERE r3.end_user_id = e.id AND r3.day <= %s))
    ) x"""  # noqa: S608
    return sql, params + select_params


# The account score by roll-up, for today's points (suffix "") or a compared day's ("_7", "_30").
ROLLUPS = {
    AccountRollup.SUM: "COALESCE(agg.total{k}, 0)",
    AccountRollup.MEAN: (
        "CASE WHEN COALESCE(agg.active{k}, 0) > 0 THEN agg.total{k} * 1.0 / agg.active{k} ELSE 0 END"
    ),
    AccountRollup.SEATS: (
        "CASE WHEN COALESCE(seats.seats, 0) > 0 THEN 100.0 * COALESCE(agg.engaged{k}, 0) / seats.seats ELSE 0 END"
    ),
}


def account_members_cte(model: ScoringModel, day: date) -> tuple[str, list]:
    """`members (account_id, end_user_id)`: the memberships as they stood when `day` ended.

    The account roll-up's one source of (account, end user) pairs. Membership has a
    history (events.AccountMembership), so an old day recomputed after users joined or
    left accounts reads the same pairs: started before the day ended, not ended by then.
    """
    where, params = tenant_sql(model.tenant_id, "m")
    day_end = _dt(day_start(model, day + timedelta(days=1)))
    sql = f"""members AS (
        SELECT DISTINCT m.account_id AS account_id, m.end_user_id AS end_user_id
        FROM events_accountmembership m
        WHERE {where} AND m.started_at < %s AND (m.ended_at IS NULL OR m.ended_at >= %s)
    )"""  # noqa: S608 - constants only
    return sql, [*params, day_end, day_end]


def account_compared(model: ScoringModel) -> list[str]:
    """The earlier days an account's score is rolled up for: the changes' and the trend's."""
    return [*compared_days(model), "trend"]


def _compared_users_sql(model: ScoringModel, day: date) -> tuple[str, list]:
    """`users`: the day's user snapshots with each compared day's points (points - change) and, for
    the seats roll-up, whether the user ranked engaged (high or medium) by those points then."""
    where, params = tenant_sql(model.tenant_id, "s")
    columns = []
    for key in account_compared(model):
        then = "s.trend_points" if key == "trend" else f"(s.points - s.change_{key})"
        columns.append(f"{then} AS points_{key}")
        if model.account_rollup != AccountRollup.SEATS:
            continue
        if model.tier_method == TierMethod.PERCENTILE:
            rank = (
                f"ROUND(CAST(100.0 * CUME_DIST() OVER (PARTITION BY CASE WHEN {then} > 0 THEN 1 ELSE 0 END "
                f"ORDER BY {then}) AS NUMERIC), 2)"
            )
        else:
            rank = then
        # The grace period is not applied to earlier days: a member counts by its points alone.
        columns.append(f"CASE WHEN {then} > 0 AND {rank} >= %s THEN 1 ELSE 0 END AS engaged_{key}")
    seats = model.account_rollup == AccountRollup.SEATS
    engaged_params = [model.tier_medium] * len(account_compared(model)) if seats else []
    sql = f"""users AS (
        SELECT s.end_user_id AS end_user_id, s.points AS points, s.tier AS tier, s.last_seen AS last_seen,
               {", ".join(columns)}
        FROM {USER_TABLE} s WHERE {where} AND s.model_id = %s AND s.day = %s
    )"""  # noqa: S608 - constants only
    return sql, [*engaged_params, *params, model.pk, sql_date(day)]


def account_scores_sql(model: ScoringModel, day: date) -> tuple[str, list]:
    """Each account's snapshot from its members' snapshots: a member's points count in full in
    every account it belongs to (docs/scoring.md, "Users in several accounts"). The compared days'
    scores roll up the same members' points of those days."""
    tenant_id = model.tenant_id
    metric = "ranked.percentile" if model.tier_method == TierMethod.PERCENTILE else "acc.points"
    members_sql, members_params = account_members_cte(model, day)
    users_sql, users_params = _compared_users_sql(model, day)
    day_end = _dt(day_start(model, day + timedelta(days=1)))
    # "New" is about the account's own first activity: first seen within the grace period and none
    # of its members (as they stood when the day ended) active before it. Its users being new is not enough.
    new_sql, new_params = "1 = 0", []
    if model.grace_days:
        new_sql = (
            "(acc.first_seen_at >= %s AND NOT EXISTS (SELECT 1 FROM events_accountmembership m2 "
            "JOIN events_dailyactivitycount r2 ON r2.end_user_id = m2.end_user_id "
            "WHERE m2.account_id = acc.account_id AND m2.started_at < %s AND r2.day <= %s))"
        )
        grace_start = day - timedelta(days=model.grace_days - 1)
        new_params = [_dt(day_start(model, grace_start)), day_end, sql_date(grace_start - timedelta(days=1))]
    tier_sql, tier_params = _tier_case(metric, model, "acc.active = 0", new_sql)
    tier_params = new_params + tier_params
    keys = account_compared(model)
    compared_aggs = []
    for key in keys:
        compared_aggs.append(f"SUM(s.points_{key}) AS total_{key}")
        compared_aggs.append(f"SUM(CASE WHEN s.points_{key} > 0 THEN 1 ELSE 0 END) AS active_{key}")
        if model.account_rollup == AccountRollup.SEATS:
            compared_aggs.append(f"SUM(s.engaged_{key}) AS engaged_{key}")
    rollup = ROLLUPS[AccountRollup(model.account_rollup)]
    compared_points = ", ".join(
        f"ROUND(CAST({rollup.format(k='_' + key)} AS NUMERIC), 4) AS points_{key}" for key in keys
    )
    acc_where, acc_params = tenant_sql(tenant_id, "a")
    falling, falling_params = falling_sql("y", model)
    sql = f"""INSERT INTO {ACCOUNT_TABLE} (tenant_id, model_id, day, account_id, points, active_users, seats,
        percentile, tier, {_change_columns(model)}, last_seen, trend_points, falling)
    WITH {members_sql}, {users_sql},
    seats AS (SELECT account_id, COUNT(*) AS seats FROM members GROUP BY account_id),
    agg AS (
        SELECT m.account_id AS account_id, SUM(s.points) AS total,
               SUM(CASE WHEN s.points > 0 THEN 1 ELSE 0 END) AS active,
               SUM(CASE WHEN s.tier IN ('high', 'medium') THEN 1 ELSE 0 END) AS engaged,
               SUM(CASE WHEN s.tier IN ('high', 'medium', 'low') THEN 1 ELSE 0 END) AS established,
               MAX(s.last_seen) AS last_seen, {", ".join(compared_aggs)}
        FROM users s JOIN members m ON m.end_user_id = s.end_user_id
        GROUP BY m.account_id
    ),
    acc AS (
        SELECT a.id AS account_id, COALESCE(seats.seats, 0) AS seats, COALESCE(agg.active, 0) AS active,
               COALESCE(agg.established, 0) AS established, a.first_seen_at AS first_seen_at,
               agg.last_seen AS last_seen,
               ROUND(CAST({rollup.format(k="")} AS NUMERIC), 4) AS points, {compared_points}
        FROM events_customeraccount a
        LEFT JOIN seats ON seats.account_id = a.id
        LEFT JOIN agg ON agg.account_id = a.id
        WHERE {acc_where} AND (a.first_seen_at < %s OR EXISTS (
            SELECT 1 FROM events_accountmembership f WHERE f.account_id = a.id AND f.started_at < %s))
    ),
    ranked AS (
        SELECT account_id, ROUND(CAST(100.0 * CUME_DIST() OVER (ORDER BY points) AS NUMERIC), 2) AS percentile
        FROM acc WHERE active > 0
    )
    SELECT %s, %s, %s, y.account_id, y.points, y.active, y.seats, y.percentile, y.tier,
        {_change_columns(model, "y.")}, y.last_seen, y.trend_points, {falling}
    FROM (
        SELECT acc.account_id AS account_id, acc.points AS points, acc.active AS active, acc.seats AS seats,
            ranked.percentile AS percentile, {tier_sql} AS tier, {_changes_sql("acc", model)},
            acc.last_seen AS last_seen, acc.points_trend AS trend_points
        FROM acc LEFT JOIN ranked ON ranked.account_id = acc.account_id
    ) y"""  # noqa: S608
    # An account has rows from the day it was first seen (or its first member joined): a day
    # recomputed after a new account appeared keeps its rows.
    params = [*members_params, *users_params, *acc_params, day_end, day_end,
              tenant_id, model.pk, sql_date(day), *falling_params, *tier_params]
    return sql, params


def product_score_sql(model: ScoringModel, day: date) -> tuple[str, list]:
    active = "COALESCE(SUM(CASE WHEN points > 0 THEN 1 ELSE 0 END), 0)"

    def tier_count(*tiers: str) -> str:
        names = ", ".join(f"'{t}'" for t in tiers)
        return f"COALESCE(SUM(CASE WHEN tier IN ({names}) THEN 1 ELSE 0 END), 0)"

    where, where_params = tenant_sql(model.tenant_id)
    sql = f"""INSERT INTO {PRODUCT_TABLE} (tenant_id, model_id, day, total_points, mean_points, median_points,
        active_users, engaged_users, high_users, medium_users, low_users, new_users, dormant_users)
    WITH s AS (
        SELECT points, tier FROM {USER_TABLE} WHERE {where} AND model_id = %s AND day = %s
    ),
    act AS (SELECT points, ROW_NUMBER() OVER (ORDER BY points) AS rn, COUNT(*) OVER () AS n FROM s WHERE points > 0),
    med AS (SELECT AVG(points) AS m FROM act WHERE rn = (n + 1) / 2 OR rn = (n + 2) / 2)
    SELECT %s, %s, %s, ROUND(CAST(COALESCE(SUM(points), 0) AS NUMERIC), 4),
        CASE WHEN {active} > 0 THEN ROUND(CAST(SUM(points) * 1.0 / {active} AS NUMERIC), 4) ELSE 0 END,
        COALESCE((SELECT ROUND(CAST(m AS NUMERIC), 4) FROM med), 0),
        {active}, {tier_count("high", "medium")}, {tier_count("high")}, {tier_count("medium")},
        {tier_count("low")}, {tier_count("new")}, {tier_count("dormant")}
    FROM s"""  # noqa: S608
    return sql, [*where_params, model.pk, sql_date(day), model.tenant_id, model.pk, sql_date(day)]


def lock_key(tenant_id: int, day: date) -> int:
    digest = hashlib.blake2b(f"scoring:{tenant_id}:{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_day(cursor, tenant_id: int, day: date) -> None:
    # Two runs for the same tenant and day must never interleave their delete and
    # inserts. On PostgreSQL a transaction-scoped advisory lock makes the second
    # wait and then replace the first one's rows; SQLite serializes writers anyway.
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(tenant_id, day)])
        # Room for the day's sorts and hashes (COUNT DISTINCT, CUME_DIST) in memory instead
        # of temporary files; SET LOCAL ends with the transaction.
        cursor.execute(f"SET LOCAL work_mem = '{int(settings.SCORING_WORK_MEM_MB)}MB'")
        # The planner's estimate of the dormant rows' probes passes the JIT threshold, and compiling
        # the statements cost more than running them (~0.6 s of a 1 s day at 1M events).
        cursor.execute("SET LOCAL jit = off")


def lock_day(tenant_id: int, day: date) -> None:
    """Take `day`'s lock until the current transaction ends (callers hold an atomic block)."""
    with connection.cursor() as cursor:
        _lock_day(cursor, tenant_id, day)


def compute_day(model: ScoringModel, day: date) -> DayResult:
    """Replace the snapshots of `day` under `model`: all of them or none (one transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_day(cursor, model.tenant_id, day)
        where, params = tenant_sql(model.tenant_id)
        for table in (USER_TABLE, ACCOUNT_TABLE, PRODUCT_TABLE):
            cursor.execute(
                f"DELETE FROM {table} WHERE {where} AND model_id = %s AND day = %s",  # noqa: S608
                [*params, model.pk, sql_date(day)],
            )
        cursor.execute(*user_scores_sql(model, day))
        users = cursor.rowcount
        cursor.execute(*account_scores_sql(model, day))
        accounts = cursor.rowcount
        cursor.execute(*product_score_sql(model, day))
        run_day_hooks(model, [day])
    return DayResult(day=day, users=users, accounts=accounts)


# --- The range engine ----------------------------------------------------------------------
#
# compute_days scores many days in one pass over the rollup: the rollup rows of the range (and of
# the earlier days its windows and compared days reach) are summed once per (end user, day), laid
# on a dense (end user x day) grid, and every day's points, active days, breadth and last day seen
# come from running sums along each user's days (window functions), with the compared days' points
# read a fixed number of grid rows back (LAG). The rows equal compute_day's, day by day
# (tests/scoring/test_engine_range.py keeps compute_day as the oracle).

# A half-life grid carries 2 ** (age / half_life) per day: stay far below the float range (2 ** 1023).
_MAX_DECAY_EXPONENT = 900


def _cast(sql_type: str) -> str:
    """A typed parameter for a VALUES list (PostgreSQL needs the type; SQLite's CAST AS DATE would
    turn ISO text into a number)."""
    return f"CAST(%s AS {sql_type})" if connection.vendor == "postgresql" else "%s"


def _day_number(column: str) -> str:
    """SQL of the whole days from a parameter day (its one %s) to the date `column`."""
    if connection.vendor == "postgresql":
        return f"({column} - CAST(%s AS DATE))"
    return f"CAST(julianday({column}) - julianday(%s) AS INTEGER)"


def _range_spans(model: ScoringModel, days: list[date]) -> list[list[date]]:
    """`days` cut so that no grid spans more decay doublings than a float holds."""
    if not model.half_life_days:
        return [days]
    reach = max(days_back(model)) + model.window_days
    spans, current = [], []
    for day in days:
        if current and ((day - current[0]).days + reach) / model.half_life_days > _MAX_DECAY_EXPONENT:
            spans.append(current)
            current = []
        current.append(day)
    return [*spans, current]


# SQLite weighs each window day of a half-life model by its own LAG term (see user_range_sql): one
# LAG per window day and grid row, slower than the per-day statement beyond about this many days.
_MAX_LAG_TERMS = 60


def _per_day_users(model: ScoringModel) -> bool:
    """Whether compute_days writes the user rows with the per-day statement, day by day."""
    return connection.vendor == "sqlite" and bool(model.half_life_days) and model.window_days > _MAX_LAG_TERMS


def user_range_sql(model: ScoringModel, days: list[date]) -> tuple[str, list]:
    """The INSERT of the user snapshots of every day of `days` (sorted), equal to user_scores_sql's.

    The grid runs from `lo` (the first day any window or compared window of the range reaches) to
    the last day, one row per (end user active in it, day). Without a half-life, points are integer
    running sums: P(T) = C(T) - C(T - window). With one, C sums wc x 2 ** (d / h) and P(T) multiplies
    the difference by 0.5 ** (T / h) (days counted from `lo`): each row weighs 0.5 ** ((T - d) / h),
    as in compute_day, up to float rounding that the 4-decimal ROUND hides. Breadth counts the
    (user, activity) coverage intervals [d, d + window - 1] open on a day: +1 where a run of the
    activity's days starts, -1 a window after it ends."""
    tenant_id, window = model.tenant_id, model.window_days
    backs = days_back(model)
    first, last = days[0], days[-1]
    lo = first - timedelta(days=max(backs) + window - 1)
    span = (last - lo).days + 1
    half_life = model.half_life_days
    # With a half-life, C(T) - C(T - window) in floats would cancel the whole grid's history: a
    # heavy user's old days would leave float error of their size in later days' points (the
    # per-day engine never reads them). PostgreSQL sums in NUMERIC, so the difference is exact;
    # SQLite has no exact type, so it weighs each day of the window by its factor (LAG, below).
    lag_sum = bool(half_life) and connection.vendor == "sqlite"
    exact_g = bool(half_life) and not lag_sum
    ctes, params = _weights_cte(model, None)

    # cal: the grid's days (dense), their decay scales and whether the day is one to write.
    out_days = set(days)
    # On PostgreSQL g is the float's exact value as a NUMERIC, so the running sums below add exactly
    # (a CAST of the float would keep 15 digits of it).
    cal_row = f"({_cast('INTEGER')}, {_cast('DATE')}, {_cast('NUMERIC')}, " \
              f"{_cast('DOUBLE PRECISION')}, {_cast('INTEGER')})"
    ctes.append(f"cal (dn, day, g, h, out) AS (VALUES {', '.join([cal_row] * span)})")
    for i in range(span):
        g, h = (2.0 ** (i / half_life), 0.5 ** (i / half_life)) if half_life else (1.0, 1.0)
        when = lo + timedelta(days=i)
        params += [i, sql_date(when), Decimal(g) if exact_g else g, h, 1 if when in out_days else 0]

    if model.daily_cap:
        count_sql, count_params = 'CASE WHEN r."count" > %s THEN %s ELSE r."count" END', [model.daily_cap] * 2
    else:
        count_sql, count_params = 'r."count"', []
    dn_sql = _day_number("r.day")
    tenant_where, tenant_params = tenant_sql(tenant_id, "r")
    # rr: the rollup rows read, once. wc is NULL for an activity without points (it only counts
    # for the last day seen).
    ctes.append(
        f"""rr AS (
        SELECT r.end_user_id AS u, r.activity_id AS a, {dn_sql} AS dn, w.points * ({count_sql}) AS wc
        FROM events_dailyactivitycount r
        LEFT JOIN weights w ON w.activity_id = r.activity_id
        WHERE {tenant_where} AND r.day >= %s AND r.day <= %s AND r."count" > 0
    )"""  # noqa: S608 - only module constants are formatted in; values are parameters
    )
    params += [sql_date(lo), *count_params, *tenant_params, sql_date(lo), sql_date(last)]
    # Breadth: only the days whose windows end in the range matter.
    first_dn = (first - lo).days
    ctes.append(
        f"""runs AS (
        SELECT u, dn, LAG(dn) OVER (PARTITION BY u, a ORDER BY dn) AS prev,
               LEAD(dn) OVER (PARTITION BY u, a ORDER BY dn) AS nxt
        FROM rr WHERE wc IS NOT NULL AND dn >= {int(first_dn - window + 1)}
    ),
    uday AS (
        SELECT u, dn, SUM(wc) AS wc, MAX(act) AS act, SUM(bd) AS bd, MAX(seen) AS seen FROM (
            SELECT u, dn, wc, CASE WHEN wc IS NOT NULL THEN 1 ELSE 0 END AS act, 0 AS bd, 1 AS seen FROM rr
            UNION ALL
            SELECT u, dn, NULL, 0, 1, 0 FROM runs WHERE prev IS NULL OR dn - prev > {int(window)}
            UNION ALL
            SELECT u, dn + {int(window)}, NULL, 0, -1, 0 FROM runs WHERE nxt IS NULL OR nxt - dn > {int(window)}
        ) ev GROUP BY u, dn
    )"""  # noqa: S608 - integers only
    )
    # One row per (end user, day) of the grid: uday's sums where it has a row (a day with only a
    # breadth event, a run ending, is not a day seen).
    if not half_life or lag_sum:
        weighted = "COALESCE(ud.wc, 0)"
    else:
        weighted = "COALESCE(ud.wc, 0) * c.g"
    day_wc = " COALESCE(ud.wc, 0) AS wd," if lag_sum else ""
    ctes.append("grid_users AS (SELECT DISTINCT u FROM rr)")
    ctes.append(
        f"""grid AS (
        SELECT us.u AS u, c.dn AS dn, c.day AS day, c.h AS h, c.out AS out,{day_wc}
               SUM({weighted}) OVER w AS cw,
               SUM(COALESCE(ud.act, 0)) OVER w AS ca,
               SUM(COALESCE(ud.bd, 0)) OVER w AS breadth,
               MAX(CASE WHEN ud.seen = 1 THEN c.day END) OVER w AS last_seen
        FROM grid_users us CROSS JOIN cal c
        LEFT JOIN uday ud ON ud.u = us.u AND ud.dn = c.dn
        WINDOW w AS (PARTITION BY us.u ORDER BY c.dn ROWS UNBOUNDED PRECEDING)
    )"""  # noqa: S608 - constants only
    )

    source = "grid"
    if lag_sum:
        # SQLite: each grid row's points as the per-day engine weighs them, the window's days by
        # their factors 0.5 ** (age / half_life); a compared day's points are this `pw` read back.
        factors = decay_factors(model, first)
        terms = " + ".join(
            "wd" if age == 0 else f"COALESCE(LAG(wd, {age}) OVER o, 0) * %s" for age in range(window)
        )
        params += [factor for age, (_, factor) in enumerate(factors) if age]
        ctes.append(
            f"""gridp AS (
            SELECT grid.*, ({terms}) AS pw
            FROM grid WINDOW o AS (PARTITION BY u ORDER BY dn)
        )"""  # noqa: S608 - integers only
        )
        source = "gridp"

    def diff_at(back: int) -> str:
        """The points `back` grid rows before, unrounded."""
        if lag_sum:
            return f"LAG(pw, {back}) OVER o" if back else "pw"
        cw = f"LAG(cw, {back}) OVER o" if back else "cw"
        diff = f"({cw} - COALESCE(LAG(cw, {back + window}) OVER o, 0))"
        if half_life:
            diff = f"{f'LAG(h, {back}) OVER o' if back else 'h'} * {diff}"
        return diff

    # Rounded (as compute_day rounds them) only on the days written, after the window pass.
    raw = ", ".join(f"{diff_at(back)} AS d{back}" for back in [0, *backs])
    rounded = ", ".join(f"ROUND(CAST(d{back} AS NUMERIC), 4) AS points_{back}" for back in backs)
    ctes.append(
        f"""pts AS (
        SELECT u, day, breadth, last_seen, active_days, ROUND(CAST(d0 AS NUMERIC), 4) AS points, {rounded}
        FROM (
            SELECT u, day, out, breadth, last_seen, ca - COALESCE(LAG(ca, {int(window)}) OVER o, 0) AS active_days,
                   {raw}
            FROM {source} WINDOW o AS (PARTITION BY u ORDER BY dn)
        ) p WHERE out = 1
    )"""  # noqa: S608 - constants and integers only
    )
    # od: the days written, with the instants compute_day compares first_seen_at with.
    od_row = f"({_cast('DATE')}, {_cast('TIMESTAMP WITH TIME ZONE')}, {_cast('TIMESTAMP WITH TIME ZONE')}, " \
             f"{_cast('DATE')})"
    ctes.append(f"od (day, day_end, grace_at, before_grace) AS (VALUES {', '.join([od_row] * len(days))})")
    grace = model.grace_days
    for day in days:
        grace_start = day - timedelta(days=max(grace, 1) - 1)
        params += [sql_date(day), _dt(day_start(model, day + timedelta(days=1))),
                   _dt(day_start(model, grace_start)), sql_date(grace_start - timedelta(days=1))]
    # late: the end users first seen late enough (or never) for "seen by the day's end" or "new in
    # the grace period" to depend on the day, with their first rollup day (any activity), and per
    # day whether they are seen and new. Everyone else is seen and not new on every day written.
    threshold = day_start(model, first + timedelta(days=1))
    if grace:
        threshold = min(threshold, day_start(model, first - timedelta(days=grace - 1)))
    e_where, e_params = tenant_sql(tenant_id, "e")
    # Once per late user, by the end-user index: PostgreSQL would otherwise inline the lookup in each
    # use of `late` and answer MIN(day) with a walk of the tenant's (tenant, day) index.
    materialized, first_day = ("MATERIALIZED", "r2.day + 0") if connection.vendor == "postgresql" else ("", "r2.day")
    if grace:
        new_sql = "(lu.first_seen_at >= od.grace_at AND (lu.first_any IS NULL OR lu.first_any > od.before_grace))"
    else:
        new_sql = "1 = 0"
    ctes.append(
        f"""late_users AS {materialized} (
        SELECT e.id AS u, e.first_seen_at AS first_seen_at,
               (SELECT MIN({first_day}) FROM events_dailyactivitycount r2 WHERE r2.end_user_id = e.id) AS first_any
        FROM events_enduser e WHERE {e_where} AND (e.first_seen_at IS NULL OR e.first_seen_at >= %s)
    ),
    late AS (
        SELECT lu.u AS u, od.day AS day,
               CASE WHEN lu.first_seen_at < od.day_end OR lu.first_any <= od.day THEN 1 ELSE 0 END AS seen,
               CASE WHEN {new_sql} THEN 1 ELSE 0 END AS is_new
        FROM late_users lu CROSS JOIN od
    )"""  # noqa: S608 - constants only
    )
    params += [*e_params, _dt(threshold)]
    # ranked: each grid row of a day written, with its percentile among that day's users with points
    # (CUME_DIST over the points > 0 partition equals compute_day's over its ranked users).
    carried_cols = ", ".join(f"p.points_{back}" for back in backs)
    ctes.append(
        f"""ranked AS (
        SELECT p.u AS u, p.day AS day, p.points AS points, p.breadth AS breadth, p.active_days AS active_days,
               {carried_cols}, p.last_seen AS last_seen,
               CASE WHEN p.points > 0 THEN ROUND(CAST(100.0 * CUME_DIST() OVER (
                   PARTITION BY p.day, CASE WHEN p.points > 0 THEN 1 ELSE 0 END ORDER BY p.points) AS NUMERIC), 2)
               END AS percentile,
               COALESCE(l.seen, 1) AS seen, COALESCE(l.is_new, 0) AS is_new
        FROM pts p LEFT JOIN late l ON l.u = p.u AND l.day = p.day
    )"""  # noqa: S608 - constants only
    )

    falling, falling_params = falling_sql("x", model)
    metric = "k.percentile" if model.tier_method == TierMethod.PERCENTILE else "k.points"
    tier_sql, tier_params = _tier_case(metric, model, "k.points <= 0", "k.is_new = 1")
    compared = compared_days(model)
    trend = model.trend_days
    changes = ", ".join(
        f"CASE WHEN k.points > 0 THEN ROUND(CAST(k.points - k.points_{back} AS NUMERIC), 4) "
        f"ELSE -k.points_{back} END AS change_{key}"
        for key, back in compared.items()
    )
    zeros = ", ".join("0" for _ in compared)
    # Users of the grid: ranked with points, else dormant (if seen) with their earlier points; one
    # quiet since before the grid looks its last day up in the rollup by the end-user index (on
    # PostgreSQL `day + 0` keeps the planner off a backward scan of (tenant, day), which reads every
    # earlier row of the tenant for a user never active). Then the end users without a grid row:
    # dormant on each day they are seen by, their last day (if any) before the grid.
    before_grid = "r4.day + 0 < %s" if connection.vendor == "postgresql" else "r4.day < %s"
    last_before = f'(SELECT MAX(r4.day) FROM events_dailyactivitycount r4 WHERE r4.end_user_id = {{user}} AND {before_grid} AND r4."count" > 0)'  # noqa: E501, S608 - constants
    sql = f"""INSERT INTO {USER_TABLE} (tenant_id, model_id, day, end_user_id, points, breadth, active_days,
        percentile, tier, {_change_columns(model)}, last_seen, trend_points, falling)
    WITH {", ".join(ctes)}
    SELECT %s, %s, x.day, x.end_user_id, x.points, x.breadth, x.active_days, x.percentile, x.tier,
        {_change_columns(model, "x.")}, x.last_seen, x.trend_points, {falling}
    FROM (
        SELECT k.day AS day, k.u AS end_user_id,
            CASE WHEN k.points > 0 THEN k.points ELSE 0 END AS points,
            CASE WHEN k.points > 0 THEN k.breadth ELSE 0 END AS breadth,
            CASE WHEN k.points > 0 THEN k.active_days ELSE 0 END AS active_days,
            k.percentile AS percentile, {tier_sql} AS tier, {changes},
            COALESCE(k.last_seen, {last_before.format(user="k.u")}) AS last_seen, k.points_{trend} AS trend_points
        FROM ranked k WHERE k.points > 0 OR k.seen = 1
        UNION ALL
        SELECT od.day, e.id, 0, 0, 0, NULL, 'dormant', {zeros}, {last_before.format(user="e.id")}, 0
        FROM events_enduser e CROSS JOIN od LEFT JOIN late l ON l.u = e.id AND l.day = od.day
        WHERE {e_where} AND COALESCE(l.seen, 1) = 1
          AND NOT EXISTS (SELECT 1 FROM grid_users g WHERE g.u = e.id)
    ) x
    ORDER BY x.day, x.end_user_id"""  # noqa: S608 - in index order: the inserts find their index pages cached
    params += [tenant_id, model.pk, *falling_params, *tier_params, sql_date(lo), sql_date(lo), *e_params]
    return sql, params


def _delete_days(cursor, model: ScoringModel, days: list[date]) -> None:
    where, params = tenant_sql(model.tenant_id)
    marks = ", ".join(["%s"] * len(days))
    for table in (USER_TABLE, ACCOUNT_TABLE, PRODUCT_TABLE):
        cursor.execute(
            f"DELETE FROM {table} WHERE {where} AND model_id = %s AND day IN ({marks})",  # noqa: S608
            [*params, model.pk, *(sql_date(day) for day in days)],
        )


def _users_per_day(cursor, model: ScoringModel, days: list[date]) -> dict[date, int]:
    where, params = tenant_sql(model.tenant_id)
    cursor.execute(
        f"SELECT day, COUNT(*) FROM {USER_TABLE} WHERE {where} AND model_id = %s "  # noqa: S608
        "AND day >= %s AND day <= %s GROUP BY day",
        [*params, model.pk, sql_date(days[0]), sql_date(days[-1])],
    )
    counts = {}
    for day, n in cursor.fetchall():
        counts[day if isinstance(day, date) else date.fromisoformat(day)] = n
    return counts


def compute_days(model: ScoringModel, days) -> list[DayResult]:
    """Replace the snapshots of every day of `days` under `model`, in one transaction, reading the
    rollup once for the range: the same rows compute_day writes for each day."""
    days = sorted(set(days))
    if not days:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        for day in days:  # ascending: two ranges that overlap wait for each other, never deadlock
            _lock_day(cursor, model.tenant_id, day)
        if connection.vendor == "postgresql":
            # The grid's sorts and the per-day ranking, in memory rather than in temporary files.
            mb = int(max(settings.SCORING_RANGE_WORK_MEM_MB, settings.SCORING_WORK_MEM_MB))
            cursor.execute(f"SET LOCAL work_mem = '{mb}MB'")
        _delete_days(cursor, model, days)
        if _per_day_users(model):
            for day in days:
                cursor.execute(*user_scores_sql(model, day))
        else:
            for span in _range_spans(model, days):
                cursor.execute(*user_range_sql(model, span))
        users = _users_per_day(cursor, model, days)
        results = []
        for day in days:
            cursor.execute(*account_scores_sql(model, day))
            accounts = cursor.rowcount
            cursor.execute(*product_score_sql(model, day))
            results.append(DayResult(day=day, users=users.get(day, 0), accounts=accounts))
        run_day_hooks(model, days)
    return results
