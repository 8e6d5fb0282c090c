# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""What the dashboard shows next to the product series: risers and fallers, accounts at risk,
power users, the tier change and the last scoring run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import as_uuid, fetch_all, is_postgresql, sql_date
from scoring.engine import COMPARED
from scoring.models import AccountScore, ProductScore, ScoringModel, ScoringRun, Tier, UserScore
from scoring.selectors import published_model

from .common import SUBJECTS, percent


@dataclass
class Mover:
    subject_id: int
    public_id: Any
    name: str
    points: float
    points_before: float
    tier: str
    tier_before: str | None

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 2)

    @property
    def change_share(self) -> float | None:
        return percent(self.points - self.points_before, self.points_before) if self.points_before else None


def _user_label_sql(alias: str) -> str:
    """What people call an end user: their `name` trait, else the user id, else the anonymous id."""
    if is_postgresql():
        name = f"({alias}.traits ->> 'name')"
    else:
        name = f"CAST(json_extract({alias}.traits, '$.name') AS TEXT)"
    return f"COALESCE(NULLIF({name}, ''), {alias}.user_id, {alias}.anonymous_id)"


def _name_sql(subject: str) -> str:
    if subject == "accounts":
        return "CASE WHEN e.name <> '' THEN e.name ELSE e.group_id END"
    return _user_label_sql("e")


def movers(
    tenant: Tenant, *, subject: str = "users", day: date, days_back: int = 7, limit: int = 10,
    model: ScoringModel | None = None, not_rising: set[int] | None = None, owner_id: int | None = None,
) -> dict[str, list[Mover]]:
    """The biggest risers and fallers in points between `day - days_back` and `day`.

    `owner_id`: only the subjects this member owns (the digest).
    `not_rising`: subjects never listed as risers (accounts at risk: a few busy seats
    can lift the points of an account whose other seats went silent)."""
    not_rising = not_rising or set()
    model = model or published_model(tenant)
    out: dict[str, list[Mover]] = {"risers": [], "fallers": []}
    if model is None:
        return out
    table, column, subject_table = SUBJECTS[subject]
    scope, scope_params = tenant_sql(tenant, "b")
    if _stored_change(tenant, subject, model, day, days_back):
        return _movers_from_stored(tenant, subject, model, day, days_back, limit, not_rising, owner_id)
    base = f"""SELECT '{{kind}}', e.id, e.public_id, {_name_sql(subject)}, b.points, COALESCE(a.points, 0),
            b.tier, a.tier
        FROM {table} b JOIN {subject_table} e ON e.id = b.{column}
        LEFT JOIN {table} a ON a.{column} = b.{column} AND a.model_id = b.model_id AND a.day = %s
        WHERE {scope} AND b.model_id = %s AND b.day = %s AND b.points {{cmp}} COALESCE(a.points, 0)
          {"AND e.owner_id = %s" if owner_id is not None else ""}
        ORDER BY b.points - COALESCE(a.points, 0) {{order}}, e.id LIMIT %s"""
    params = [sql_date(day - timedelta(days=days_back)), *scope_params, model.pk, sql_date(day)]
    params += [owner_id] if owner_id is not None else []
    sql = (f"SELECT * FROM ({base.format(kind='r', cmp='>', order='DESC')}) up UNION ALL "
           f"SELECT * FROM ({base.format(kind='f', cmp='<', order='ASC')}) down")
    rows = fetch_all(sql, [*params, limit + len(not_rising), *params, limit])
    return _split_movers(rows, limit, not_rising)


def _stored_change(tenant, subject, model, day, days_back) -> bool:
    """Whether the snapshots of `day` carry the engine's change over `days_back` days (change_7,
    change_30): rows written by the engine do; rows from before those columns existed do not. The
    engine writes a day's rows in one statement, so one row tells for the day."""
    if str(days_back) not in COMPARED:
        return False
    snapshots = (UserScore if subject == "users" else AccountScore).objects.for_tenant(tenant)
    one = snapshots.filter(model=model, day=day).values_list(f"change_{days_back}", flat=True)[:1]
    return bool(one) and one[0] is not None


def _movers_from_stored(tenant, subject, model, day, days_back, limit, not_rising, owner_id):
    """Risers and fallers by the change the engine stored with each snapshot: one ordered read of the
    day's rows instead of joining the whole day with the day `days_back` before (seconds at 100,000
    end users). The earlier tier is looked up for the few rows kept. The engine's points `days_back`
    days before are the earlier day's own points under the same version (docs/scoring.md)."""
    table, column, subject_table = SUBJECTS[subject]
    scope, scope_params = tenant_sql(tenant, "b")
    change = f"b.change_{days_back}"
    earlier_scope, earlier_params = tenant_sql(tenant, "a")
    # The day's rows are ordered and cut on the snapshot table alone; the subject's name and the
    # earlier tier are read for the rows kept (joining first makes PostgreSQL name every row).
    owner = (f"AND EXISTS (SELECT 1 FROM {subject_table} o WHERE o.id = b.{column} AND o.owner_id = %s)"
             if owner_id is not None else "")
    inner = f"""SELECT '{{kind}}' AS kind, b.{column} AS id, b.points AS points, b.points - {change} AS before,
            b.tier AS tier, {change} AS change
        FROM {table} b
        WHERE {scope} AND b.model_id = %s AND b.day = %s AND {change} {{cmp}} 0 {owner}
        ORDER BY {change} {{order}}, b.{column} LIMIT %s"""
    outer = f"""SELECT m.kind, m.id, e.public_id, {_name_sql(subject)}, m.points, m.before, m.tier,
            (SELECT a.tier FROM {table} a WHERE {earlier_scope} AND a.{column} = m.id AND a.model_id = %s
               AND a.day = %s)
        FROM ({{inner}}) m JOIN {subject_table} e ON e.id = m.id"""
    params = [*scope_params, model.pk, sql_date(day)] + ([owner_id] if owner_id is not None else [])
    earlier = sql_date(day - timedelta(days=days_back))
    up = outer.format(inner=inner.format(kind="r", cmp=">", order="DESC"))
    down = outer.format(inner=inner.format(kind="f", cmp="<", order="ASC"))
    rows = fetch_all(f"SELECT * FROM ({up}) up UNION ALL SELECT * FROM ({down}) down",
                     [*earlier_params, model.pk, earlier, *params, limit + len(not_rising),
                      *earlier_params, model.pk, earlier, *params, limit])
    return _split_movers(rows, limit, not_rising)


def _split_movers(rows, limit: int, not_rising: set[int]) -> dict[str, list[Mover]]:
    out: dict[str, list[Mover]] = {"risers": [], "fallers": []}
    for kind, pk, public_id, name, points, before, tier, tier_before in rows:
        if kind == "r" and (pk in not_rising or len(out["risers"]) >= limit):
            continue
        mover = Mover(pk, as_uuid(public_id), name or "", float(points), float(before), tier, tier_before)
        out["risers" if kind == "r" else "fallers"].append(mover)
    out["risers"].sort(key=lambda m: -m.change)
    out["fallers"].sort(key=lambda m: m.change)
    return out


@dataclass
class AtRisk:
    day: date | None
    compared_with: date | None
    drop_share: float
    accounts: list[Mover]  # RiskItem rows: Movers with their `reasons`
    count: int
    risk: Any = None  # the full risk.Risk (every account at risk, its settings)


def at_risk_accounts(
    tenant: Tenant, *, day: date | None, days_back: int | None = None, limit: int = 20,
    model: ScoringModel | None = None,
) -> AtRisk:
    """The accounts at risk (insights/queries/risk.py, the workspace's rule), the first `limit` of them.

    Kept as the one adapter callers use (the dashboard, alert triggers); `days_back`
    overrides the workspace's comparison span.
    """
    from . import risk as risk_rule  # risk builds on this module's Mover

    settings = risk_rule.RiskSettings.of(tenant)
    if days_back is not None:
        settings = replace(settings, days=days_back)
    found = risk_rule.at_risk(tenant, day=day, model=model, settings=settings)
    return AtRisk(day=day, compared_with=found.compared_with, drop_share=settings.points_drop / 100,
                  accounts=found.items[:limit], count=found.count, risk=found)


@dataclass
class PowerUsers:
    users: list[dict]
    count: int
    threshold: float | None


def power_users(tenant: Tenant, *, day: date | None, limit: int = 25, model: ScoringModel | None = None) -> PowerUsers:
    """The top 1% of end users by points on `day` (percentile above 99)."""
    model = model or published_model(tenant)
    if model is None or day is None:
        return PowerUsers([], 0, None)
    scope, params = tenant_sql(tenant, "x")
    sql = f"""WITH top AS (
        SELECT x.end_user_id AS id, x.points AS points, x.breadth AS breadth, x.active_days AS active_days,
               x.percentile AS percentile
        FROM scoring_userscore x WHERE {scope} AND x.model_id = %s AND x.day = %s
          AND x.points > 0 AND x.percentile > 99
    )
    SELECT e.public_id, {_user_label_sql("e")}, top.points, top.breadth, top.active_days,
           top.percentile, a.public_id, a.name, a.group_id, (SELECT COUNT(*) FROM top), (SELECT MIN(points) FROM top)
    FROM top JOIN events_enduser e ON e.id = top.id LEFT JOIN events_customeraccount a ON a.id = e.account_id
    ORDER BY top.points DESC, top.id LIMIT %s"""
    rows = fetch_all(sql, [*params, model.pk, sql_date(day), limit])
    users = [
        {"public_id": as_uuid(pid), "name": name, "points": p, "breadth": br, "active_days": ad, "percentile": pc,
         "account_id": as_uuid(aid), "account": an or ag}
        for pid, name, p, br, ad, pc, aid, an, ag, _c, _m in rows
    ]
    return PowerUsers(users, int(rows[0][-2]) if rows else 0, float(rows[0][-1]) if rows else None)


def last_run(tenant: Tenant) -> ScoringRun | None:
    return ScoringRun.objects.for_tenant(tenant).select_related("model").order_by("-created_at").first()


def tier_change(latest: ProductScore | None, earlier: ProductScore | None) -> list[dict]:
    """Tier counts on the latest day next to 30 days earlier, from the product rows (no extra query)."""
    fields = {"high": "high_users", "medium": "medium_users", "low": "low_users", "new": "new_users",
              "dormant": "dormant_users"}
    out = []
    for tier, name in fields.items():
        now = getattr(latest, name) if latest else 0
        then = getattr(earlier, name) if earlier else None
        out.append({"tier": tier, "label": Tier(tier).label, "now": now, "then": then,
                    "change": None if then is None else now - then})
    return out
