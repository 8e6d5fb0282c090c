"""Reads shared by the scoring pages, the read API and later the dashboard.

Latest snapshots are those of the published version on its latest computed
day; history series take, for every day, the row of the newest version that
scored that day (so a chart shows where the version changed).
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Floor, Least

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import as_uuid, sql_date, trait_sql
from events.models import CustomerAccount, DailyActivityCount, EndUser

from . import engine
from .models import (
    AccountScore,
    ModelStatus,
    ProductScore,
    RunStatus,
    ScoringModel,
    ScoringRun,
    Tier,
    UserScore,
)

HISTORY_DAYS = 90
TIER_ORDER = [Tier.HIGH, Tier.MEDIUM, Tier.LOW, Tier.NEW, Tier.DORMANT]
# The ladder for "fell a tier": "new" is outside it (no history to fall from).
TIER_RANK = {Tier.HIGH.value: 3, Tier.MEDIUM.value: 2, Tier.LOW.value: 1, Tier.DORMANT.value: 0}
USER_ORDERS = {
    "points": "points",
    "-points": "-points",
    "percentile": "percentile",
    "-percentile": "-percentile",
    "breadth": "breadth",
    "-breadth": "-breadth",
    "active_days": "active_days",
    "-active_days": "-active_days",
}
ACCOUNT_ORDERS = {
    "points": "points",
    "-points": "-points",
    "percentile": "percentile",
    "-percentile": "-percentile",
    "active_users": "active_users",
    "-active_users": "-active_users",
}




def tier_rank_sql(column: str) -> str:
    """TIER_RANK as a SQL CASE on a tier column (NULL for "new")."""
    whens = " ".join(f"WHEN '{tier}' THEN {rank}" for tier, rank in TIER_RANK.items())
    return f"CASE {column} {whens} END"


# --- Subjects by their tracking id ----------------------------------------------------


def _storable_id(value: str) -> bool:
    # What ingestion can have stored (events.wire): at most 255 characters, no NUL.
    # Anything else cannot exist, and a NUL would make PostgreSQL refuse the query.
    return 0 < len(value) <= 255 and "\x00" not in value


def end_user_by_user_id(tenant: Tenant, user_id: str) -> EndUser | None:
    """The end user with this userId, exactly as sent to the tracking API, or None."""
    if not _storable_id(user_id):
        return None
    return EndUser.objects.for_tenant(tenant).filter(user_id=user_id).select_related("account").first()


def account_by_group_id(tenant: Tenant, group_id: str) -> CustomerAccount | None:
    """The customer account with this groupId, exactly as sent to the tracking API, or None."""
    if not _storable_id(group_id):
        return None
    return CustomerAccount.objects.for_tenant(tenant).filter(group_id=group_id).first()


# --- Models and runs -------------------------------------------------------------------


def published_model(tenant: Tenant) -> ScoringModel | None:
    return ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()


def model_versions(tenant: Tenant) -> QuerySet[ScoringModel]:
    return ScoringModel.objects.for_tenant(tenant).annotate(weight_count=Count("weights")).order_by("-version")


def model_weights(model: ScoringModel) -> list[dict[str, Any]]:
    """Every catalog activity with its points in `model` (0 when absent), for the editor."""
    from events.models import Activity

    points = dict(model.weights.values_list("activity_id", "points"))
    return [
        {"activity": a, "points": points.get(a.pk, 0)}
        # A test-only activity (docs/ingestion.md) is offered once it has points or is kept.
        for a in Activity.objects.for_tenant(model.tenant).order_by("name")
        if not a.test_only or a.pk in points
    ]


def runs_of(tenant: Tenant, limit: int = 50) -> list[ScoringRun]:
    runs = list(ScoringRun.objects.for_tenant(tenant).select_related("model", "requested_by")[:limit])
    for run in runs:
        run.stall_note = stall_note(run)
    return runs


def run_as_dict(run: ScoringRun) -> dict[str, Any]:
    return {
        "id": str(run.public_id),
        "status": run.status,
        "kind": run.kind,
        "version": run.model.version,
        "first_day": run.first_day.isoformat(),
        "last_day": run.last_day.isoformat(),
        "days_total": run.days_total,
        "days_done": run.days_done,
        "progress": run.progress,
        "rows_written": run.rows_written,
        "duration_seconds": round(run.duration.total_seconds(), 1) if run.duration else None,
        "error": run.error,
        "active": run.is_active,
        "stalled": run.is_stalled,
        "stall_note": stall_note(run),
    }


def stall_note(run: ScoringRun) -> str:
    """What the runs page says about a stalled run (empty when it is not)."""
    if not run.is_stalled:
        return ""
    minutes = f"{settings.SCORING_STALL_MINUTES:g}"
    return (
        f"Stalled: no day finished for over {minutes} min, its worker probably stopped. "
        f"The missing days are re-enqueued automatically (resumed {run.resumes} of "
        f"{settings.SCORING_STALL_MAX_RESUMES} times so far)."
    )


def has_active_runs(tenant: Tenant) -> bool:
    return ScoringRun.objects.for_tenant(tenant).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()


# --- Latest snapshots --------------------------------------------------------------------


def latest_day(tenant: Tenant, model: ScoringModel | None) -> date | None:
    if model is None:
        return None
    return ProductScore.objects.for_tenant(tenant).filter(model=model).aggregate(d=Max("day"))["d"]


def user_snapshots(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    tier: str | None = None,
    account: CustomerAccount | None = None,
    order: str = "-points",
) -> QuerySet[UserScore]:
    """The published version's user snapshots of its latest day (or `day`), filtered and ordered."""
    model = model or published_model(tenant)
    day = day or latest_day(tenant, model)
    if model is None or day is None:
        return UserScore.objects.none()
    rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day)
    if tier:
        rows = rows.filter(tier=tier)
    if account is not None:
        rows = rows.filter(end_user__account=account)
    return rows.select_related("end_user", "end_user__account", "model").order_by(USER_ORDERS[order], "end_user_id")


def account_snapshots(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    tier: str | None = None,
    order: str = "-points",
) -> QuerySet[AccountScore]:
    model = model or published_model(tenant)
    day = day or latest_day(tenant, model)
    if model is None or day is None:
        return AccountScore.objects.none()
    rows = AccountScore.objects.for_tenant(tenant).filter(model=model, day=day)
    if tier:
        rows = rows.filter(tier=tier)
    return rows.select_related("account", "model").order_by(ACCOUNT_ORDERS[order], "account_id")


def tier_counts(rows: QuerySet) -> dict[str, int]:
    counts = dict(rows.order_by().values_list("tier").annotate(n=Count("id")))
    return {tier.value: counts.get(tier.value, 0) for tier in TIER_ORDER}


# --- Lists of end users and accounts -----------------------------------------------------------
#
# The users and accounts pages (and their CSV) read one day's snapshots with the change against
# the snapshots 7 and 30 days earlier and the last day seen in the rollup. The SQL is written out
# (like the engine's) because those are joins of the snapshot table with itself, which the ORM
# would turn into one correlated subquery per row; it runs unchanged on SQLite and PostgreSQL.
# A page query sorts and limits snapshot ids first and joins the rest only for the rows shown.

LIST_SORTS = ("points", "change_7", "change_30", "percentile", "last_seen")
USER_LIST_SORTS = (*LIST_SORTS, "breadth", "active_days")
ACCOUNT_LIST_SORTS = (*LIST_SORTS, "active_users", "renewal_date")
# The last-seen sort probes the rollup once per listed end user (its end-user index) while they are at
# most this share of the day's end users (an account counts its seats); past that it aggregates the
# tenant's rollup once: ~30 ms at 2,000 end users, ~1 s at 100,000, so there a descending sort first
# tries only the rollup's recent days (see `_SnapshotList.page`).
LAST_SEEN_PROBE_SHARE = 0.05
LAST_SEEN_RECENT_DAYS = 7
# A trait or search filter matching at least this share of the day's end users is "broad" (see `_scan`).
BROAD_SHARE = 0.05


@dataclass(frozen=True)
class ListDays:
    """The list's day and the scored days its changes compare with (None: not scored that far back)."""

    day: date | None
    day_7: date | None = None
    day_30: date | None = None
    users: int | None = None  # end users scored on `day` (the product row's tier counts)


def list_days(tenant: Tenant, model: ScoringModel | None) -> ListDays:
    """The model's latest scored day and the latest scored days on or before 7 and 30 days earlier."""
    if model is None:
        return ListDays(None)
    rows = list(
        ProductScore.objects.for_tenant(tenant)
        .filter(model=model)
        .order_by("-day")
        .values_list("day", F("high_users") + F("medium_users") + F("low_users") + F("new_users") + F("dormant_users"))[
            :400
        ]
    )
    if not rows:
        return ListDays(None)
    days = [day for day, _ in rows]

    def on_or_before(wanted: date) -> date | None:
        return next((d for d in days if d <= wanted), None)

    latest = days[0]
    return ListDays(
        latest, on_or_before(latest - timedelta(days=7)), on_or_before(latest - timedelta(days=30)), users=rows[0][1]
    )


@dataclass(frozen=True)
class ListFilter:
    """What the lists filter on. Text comparisons ignore case; `search` matches a part of the text."""

    tier: str | None = None
    plan: str | None = None
    trait: tuple[str, str] | None = None
    search: str | None = None
    account: CustomerAccount | None = None  # users only
    end_user: EndUser | None = None  # users only: one row, for the detail page
    owner_id: int | None = None  # accounts only: a member's user id, or 0 for "no owner"
    renews_by: date | None = None  # accounts only: renewal date on or before


@dataclass
class ListRow:
    public_id: uuid.UUID
    points: float
    percentile: float | None
    tier: str
    points_7: float | None
    points_30: float | None
    last_seen: date | None
    change_7: float | None = None
    change_30: float | None = None

    def set_changes(self, days: ListDays) -> None:
        # No snapshot of the subject on the compared day (not seen yet then): it had 0 points.
        if days.day_7 is not None:
            self.change_7 = round(self.points - (self.points_7 or 0), 4)
        if days.day_30 is not None:
            self.change_30 = round(self.points - (self.points_30 or 0), 4)


@dataclass
class UserRow(ListRow):
    user_id: str | None = None
    anonymous_id: str | None = None
    name: str | None = None
    email: str | None = None
    plan: str | None = None
    breadth: int = 0
    active_days: int = 0
    account_public_id: uuid.UUID | None = None
    account_group_id: str | None = None
    account_name: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.user_id or f"anonymous {self.anonymous_id}"

    @property
    def account_label(self) -> str:
        return self.account_name or self.account_group_id or ""


@dataclass
class AccountRow(ListRow):
    group_id: str = ""
    name: str = ""
    plan: str | None = None
    active_users: int = 0
    seats: int = 0
    owner_id: int | None = None
    renewal_date: date | None = None

    @property
    def label(self) -> str:
        return self.name or self.group_id


def _contains(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching `text` anywhere, lower case."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _as_date(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


LIKE = "LIKE %s ESCAPE '\\'"


def _scan(condition: str, broad: bool) -> str:
    """A condition on traits or text, which no index serves, in the form that steers PostgreSQL's plan.

    Without statistics on an expression the planner guesses that 0.5 % of the rows pass `x = 'v'` or
    a LIKE, so it reads the matching end users first and looks each one's snapshot up by index: right
    for a narrow search, ~300 ms at 100,000 end users when a third of them are on the plan. Written as
    `CASE ... > 0` its guess is a third, so it hash-joins the day's snapshots (COUNT) or walks the
    points index until a page is full (page). The page query picks the form from the COUNT it follows.
    """
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END) > 0" if broad else condition


class _SnapshotList(ABC):
    """One day's snapshots filtered and sorted, read like a sequence: what `Paginator` pages.

    `count()` is one COUNT query; a slice is one page query; iterating streams every row (CSV).
    """

    subject = ""
    table = ""
    column = ""
    sorts: tuple[str, ...] = ()

    def __init__(self, tenant: Tenant, model: ScoringModel | None, days: ListDays, where: ListFilter, order: str):
        if order.lstrip("-") not in self.sorts:
            raise ValueError(f"Unknown order {order!r}.")
        self.tenant, self.model, self.days, self.filter = tenant, model, days, where
        self.sort, self.descending = order.lstrip("-"), order.startswith("-")
        self._count: int | None = None
        self._seats = 0  # end users behind the listed rows: the cost of probing their last day seen

    @property
    def empty(self) -> bool:
        return self.model is None or self.days.day is None

    # Subclasses: the filter's joins and conditions, the sort keys and the selected columns.
    @abstractmethod
    def _filter_sql(self, broad: bool) -> tuple[str, list[str], list]:
        ...

    @abstractmethod
    def _select_sql(self) -> tuple[str, str, list]:
        ...

    @abstractmethod
    def _row(self, values) -> ListRow:
        ...

    @abstractmethod
    def _last_seen_probe(self) -> str:
        ...

    @abstractmethod
    def _last_seen_table(self) -> str:
        ...

    def _broad(self) -> bool:
        """Whether the filter keeps a large share of the day's rows (unknown total: assume so)."""
        if not (self.filter.plan or self.filter.trait or self.filter.search):
            return True  # no condition it would change
        total = self.days.users if self.subject == "users" else None
        return total is None or self.count() >= BROAD_SHARE * total

    def _base(self, broad: bool = True) -> tuple[str, str, list]:
        joins, conditions, params = self._filter_sql(broad)
        tenant_where, tenant_params = tenant_sql(self.tenant, "s")
        where = " AND ".join([tenant_where, "s.model_id = %s", "s.day = %s", *conditions])
        return joins, where, [*tenant_params, self.model.pk, sql_date(self.days.day), *params]

    def count(self) -> int:
        if self._count is None:
            if self.empty:
                self._count = 0
            else:
                joins, where, params = self._base()
                seats = "COUNT(*)" if self.subject == "users" else "SUM(s.seats)"
                sql = f"SELECT COUNT(*), {seats} FROM {self.table} s {joins} WHERE {where}"  # noqa: S608
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    count, seats = cursor.fetchone()
                    self._count, self._seats = int(count), int(seats or 0)
        return self._count

    def __len__(self) -> int:
        return self.count()

    def _compare_join(self, alias: str, day: date | None) -> tuple[str, list]:
        if day is None:
            return "", []
        return (
            f"LEFT JOIN {self.table} {alias} ON {alias}.{self.column} = s.{self.column} "
            f"AND {alias}.model_id = s.model_id AND {alias}.day = %s",
            [sql_date(day)],
        )

    def _sort_key(self, last_seen: str) -> tuple[str, str, list, bool]:
        """(key expression, extra joins, their params, key may be NULL)."""
        if self.sort in ("change_7", "change_30"):
            day = self.days.day_7 if self.sort == "change_7" else self.days.day_30
            if day is None:  # nothing scored that far back: every change is unknown, sort by points
                return "s.points", "", [], False
            join, params = self._compare_join("k", day)
            return "s.points - COALESCE(k.points, 0)", join, params, False
        if self.sort == "last_seen":
            if last_seen == "probe":
                return self._last_seen_probe(), "", [], True
            join, params = self._last_seen_join("ls", recent=last_seen == "recent")
            return "ls.last_seen", join, params, True
        return f"s.{self.sort}", "", [], self.sort == "percentile"

    def _order_by(self, key: str, nullable: bool) -> str:
        direction = "DESC" if self.descending else "ASC"
        nulls = f"({key} IS NULL), " if nullable else ""  # unknown last, in both directions and databases
        return f"{nulls}{key} {direction}, s.{self.column} {direction}"

    def _last_seen_join(self, alias: str, recent: bool) -> tuple[str, list]:
        """A join to the rollup aggregated once: each subject's last day seen (only recent days: inner join)."""
        params = [self.tenant.pk]
        if recent:
            params.append(sql_date(self.days.day - timedelta(days=LAST_SEEN_RECENT_DAYS - 1)))
        table = self._last_seen_table().format(recent="AND r.day >= %s" if recent else "")
        kind = "JOIN" if recent else "LEFT JOIN"
        return f"{kind} ({table}) {alias} ON {alias}.subject_id = s.{self.column}", params

    def _sql(self, last_seen: str, limit: int | None, offset: int) -> tuple[str, list]:
        """The page query: sort and limit snapshot ids first, then join the columns for those rows only."""
        joins, where, params = self._base(broad=self._broad())
        key, key_join, key_params, nullable = self._sort_key(last_seen)
        select, outer_joins, select_params = self._select_sql()
        if self.sort == "last_seen":
            select = select.replace(self._last_seen_probe(), "p.sort_key")
        join_7, params_7 = self._compare_join("b7", self.days.day_7)
        join_30, params_30 = self._compare_join("b30", self.days.day_30)
        sql = f"""WITH page AS (
            SELECT s.id AS id, {key} AS sort_key FROM {self.table} s {joins} {key_join}
            WHERE {where} ORDER BY {self._order_by(key, nullable)} LIMIT {int(limit)} OFFSET {int(offset)}
        )
        SELECT {select}, {"b7.points" if join_7 else "NULL"}, {"b30.points" if join_30 else "NULL"}
        FROM page p JOIN {self.table} s ON s.id = p.id {outer_joins} {join_7} {join_30}
        ORDER BY {self._order_by("p.sort_key", nullable)}"""  # noqa: S608 - module constants only
        return sql, key_params + params + select_params + params_7 + params_30

    def _all_sql(self, last_seen: str) -> tuple[str, list]:
        """Every row in one flat query (the CSV): hash joins, and the rollup aggregated once when large."""
        _, where, params = self._base(broad=True)  # the columns' joins serve the filter as well
        key, key_join, key_params, nullable = self._sort_key(last_seen)
        select, outer_joins, select_params = self._select_sql()
        if self.sort == "last_seen":
            select = select.replace(self._last_seen_probe(), key)
        elif last_seen == "full":
            join, join_params = self._last_seen_join("lso", recent=False)
            select = select.replace(self._last_seen_probe(), "lso.last_seen")
            key_join, key_params = f"{key_join} {join}", [*key_params, *join_params]
        join_7, params_7 = self._compare_join("b7", self.days.day_7)
        join_30, params_30 = self._compare_join("b30", self.days.day_30)
        sql = f"""SELECT {select}, {"b7.points" if join_7 else "NULL"}, {"b30.points" if join_30 else "NULL"}
        FROM {self.table} s {outer_joins} {key_join} {join_7} {join_30}
        WHERE {where} ORDER BY {self._order_by(key, nullable)}"""  # noqa: S608 - module constants only
        return sql, select_params + key_params + params_7 + params_30 + params

    def _fetch(self, last_seen: str, limit: int | None, offset: int) -> list[ListRow]:
        sql, params = self._sql(last_seen, limit, offset)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [self._row(values) for values in cursor.fetchall()]

    def _last_seen_mode(self) -> str:
        self.count()
        return "probe" if self._seats <= LAST_SEEN_PROBE_SHARE * (self.days.users or 0) else "full"

    def page(self, offset: int, limit: int) -> list[ListRow]:
        if self.empty or limit <= 0:
            return []
        if self.sort != "last_seen":
            return self._fetch("", limit, offset)
        mode = self._last_seen_mode()
        if mode == "full" and self.descending:
            # Whoever was seen in the last days comes before everyone else, with the same last day
            # as over the whole rollup: a full page from the recent days alone is the true page.
            rows = self._fetch("recent", limit, offset)
            if len(rows) == limit:
                return rows
        return self._fetch(mode, limit, offset)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("Snapshot lists take slices.")
        start = key.start or 0
        stop = self.count() if key.stop is None else key.stop
        return self.page(start, stop - start)

    def __iter__(self):
        """Every row in order, read through a server-side cursor on PostgreSQL (the CSV export)."""
        if self.empty:
            return
        sql, params = self._all_sql(self._last_seen_mode())
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while chunk := cursor.fetchmany(2000):
                for values in chunk:
                    yield self._row(values)


class UserList(_SnapshotList):
    subject, table, column, sorts = "users", engine.USER_TABLE, "end_user_id", USER_LIST_SORTS

    def _filter_sql(self, broad: bool) -> tuple[str, list[str], list]:
        f = self.filter
        conditions, params, needs_user, needs_account = [], [], False, False
        if f.tier:
            conditions.append("s.tier = %s")
            params.append(f.tier)
        if f.end_user is not None:
            conditions.append("s.end_user_id = %s")
            params.append(f.end_user.pk)
        if f.account is not None:
            conditions.append("e.account_id = %s")
            params.append(f.account.pk)
            needs_user = True
        if f.plan:
            user_plan, p1 = trait_sql("e", "plan")
            account_plan, p2 = trait_sql("a", "plan")
            conditions.append(_scan(f"LOWER(COALESCE({user_plan}, {account_plan})) = %s", broad))
            params += [*p1, *p2, f.plan.lower()]
            needs_user = needs_account = True
        if f.trait:
            trait, p = trait_sql("e", f.trait[0])
            conditions.append(_scan(f"LOWER({trait}) = %s", broad))
            params += [*p, f.trait[1].lower()]
            needs_user = True
        if f.search:
            email, p1 = trait_sql("e", "email")
            name, p2 = trait_sql("e", "name")
            pattern = _contains(f.search)
            text = f"(LOWER(e.user_id) {LIKE} OR LOWER({email}) {LIKE} OR LOWER({name}) {LIKE})"
            conditions.append(_scan(text, broad))
            params += [pattern, *p1, pattern, *p2, pattern]
            needs_user = True
        joins = "JOIN events_enduser e ON e.id = s.end_user_id" if needs_user else ""
        if needs_account:
            joins += " LEFT JOIN events_customeraccount a ON a.id = e.account_id"
        return joins, conditions, params

    def _last_seen_probe(self) -> str:
        # No tenant filter: the end user pins it, and the rollup's end-user index serves it.
        return "(SELECT MAX(r.day) FROM events_dailyactivitycount r WHERE r.end_user_id = s.end_user_id)"

    def _last_seen_table(self) -> str:
        return """SELECT r.end_user_id AS subject_id, MAX(r.day) AS last_seen FROM events_dailyactivitycount r
            WHERE r.tenant_id = %s {recent} GROUP BY r.end_user_id"""

    def _select_sql(self) -> tuple[str, str, list]:
        name, p1 = trait_sql("e", "name")
        email, p2 = trait_sql("e", "email")
        user_plan, p3 = trait_sql("e", "plan")
        account_plan, p4 = trait_sql("a", "plan")
        select = f"""e.public_id, s.points, s.percentile, s.tier, {self._last_seen_probe()},
            e.user_id, e.anonymous_id, {name}, {email}, COALESCE({user_plan}, {account_plan}),
            s.breadth, s.active_days, a.public_id, a.group_id, a.name"""
        joins = (
            "JOIN events_enduser e ON e.id = s.end_user_id LEFT JOIN events_customeraccount a ON a.id = e.account_id"
        )
        return select, joins, [*p1, *p2, *p3, *p4]

    def _row(self, v) -> UserRow:
        row = UserRow(
            public_id=as_uuid(v[0]),
            points=float(v[1]),
            percentile=v[2],
            tier=v[3],
            last_seen=_as_date(v[4]),
            user_id=v[5],
            anonymous_id=v[6],
            name=v[7],
            email=v[8],
            plan=v[9],
            breadth=v[10],
            active_days=v[11],
            account_public_id=as_uuid(v[12]),
            account_group_id=v[13],
            account_name=v[14],
            points_7=v[15],
            points_30=v[16],
        )
        row.set_changes(self.days)
        return row


class AccountList(_SnapshotList):
    subject, table, column, sorts = "accounts", engine.ACCOUNT_TABLE, "account_id", ACCOUNT_LIST_SORTS

    def _filter_sql(self, broad: bool) -> tuple[str, list[str], list]:
        f = self.filter
        conditions, params = [], []
        if f.tier:
            conditions.append("s.tier = %s")
            params.append(f.tier)
        if f.plan:
            plan, p = trait_sql("a", "plan")
            conditions.append(_scan(f"LOWER({plan}) = %s", broad))
            params += [*p, f.plan.lower()]
        if f.trait:
            trait, p = trait_sql("a", f.trait[0])
            conditions.append(_scan(f"LOWER({trait}) = %s", broad))
            params += [*p, f.trait[1].lower()]
        if f.search:
            pattern = _contains(f.search)
            conditions.append(_scan(f"(LOWER(a.group_id) {LIKE} OR LOWER(a.name) {LIKE})", broad))
            params += [pattern, pattern]
        if f.owner_id is not None:
            conditions.append("a.owner_id = %s" if f.owner_id else "a.owner_id IS NULL")
            params += [f.owner_id] if f.owner_id else []
        if f.renews_by is not None:
            conditions.append("a.renewal_date <= %s")
            params.append(sql_date(f.renews_by))
        narrowed = f.plan or f.trait or f.search or f.owner_id is not None or f.renews_by
        joins = "JOIN events_customeraccount a ON a.id = s.account_id" if narrowed else ""
        return joins, conditions, params

    def _sort_key(self, last_seen: str) -> tuple[str, str, list, bool]:
        if self.sort == "renewal_date":
            return "ra.renewal_date", "JOIN events_customeraccount ra ON ra.id = s.account_id", [], True
        return super()._sort_key(last_seen)

    def _last_seen_probe(self) -> str:
        return """(SELECT MAX(r.day) FROM events_dailyactivitycount r JOIN events_enduser u ON u.id = r.end_user_id
            WHERE u.account_id = s.account_id)"""

    def _last_seen_table(self) -> str:
        return """SELECT u.account_id AS subject_id, MAX(r.day) AS last_seen FROM events_dailyactivitycount r
            JOIN events_enduser u ON u.id = r.end_user_id
            WHERE r.tenant_id = %s {recent} AND u.account_id IS NOT NULL GROUP BY u.account_id"""

    def _select_sql(self) -> tuple[str, str, list]:
        plan, p = trait_sql("a", "plan")
        select = f"""a.public_id, s.points, s.percentile, s.tier, {self._last_seen_probe()},
            a.group_id, a.name, {plan}, s.active_users, s.seats, a.owner_id, a.renewal_date"""
        return select, "JOIN events_customeraccount a ON a.id = s.account_id", p

    def _row(self, v) -> AccountRow:
        row = AccountRow(
            public_id=as_uuid(v[0]),
            points=float(v[1]),
            percentile=v[2],
            tier=v[3],
            last_seen=_as_date(v[4]),
            group_id=v[5],
            name=v[6],
            plan=v[7],
            active_users=v[8],
            seats=v[9],
            owner_id=v[10],
            renewal_date=_as_date(v[11]),
            points_7=v[12],
            points_30=v[13],
        )
        row.set_changes(self.days)
        return row


def user_list(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    days: ListDays | None = None,
    where: ListFilter | None = None,
    order: str = "-points",
) -> UserList:
    """The published version's end users on its latest scored day, filtered and sorted (see `UserList`)."""
    model = model or published_model(tenant)
    days = days or list_days(tenant, model)
    return UserList(tenant, model, days, where or ListFilter(), order)


def user_row(
    tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None, days: ListDays | None = None
) -> UserRow | None:
    """The end user's row of the users list (changes, last seen), or None when not scored that day."""
    rows = user_list(tenant, model=model, days=days, where=ListFilter(end_user=end_user))[0:1]
    return rows[0] if rows else None


def account_list(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    days: ListDays | None = None,
    where: ListFilter | None = None,
    order: str = "-points",
) -> AccountList:
    model = model or published_model(tenant)
    days = days or list_days(tenant, model)
    return AccountList(tenant, model, days, where or ListFilter(), order)


# --- Detail pages: traits, seats, recent events -------------------------------------------------

RECENT_EVENTS = 50


def traits_of(subject: EndUser | CustomerAccount) -> list[tuple[str, str]]:
    """Top-level traits as (name, text) sorted by name; nested values as compact JSON."""
    traits = subject.traits if isinstance(subject.traits, dict) else {}
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":")))
        for k, v in sorted(traits.items())
    ]


@dataclass(frozen=True)
class SeatEngagement:
    seats: int
    active: int
    engaged: int
    tiers: dict[str, int]

    @property
    def active_share(self) -> float | None:
        return round(100.0 * self.active / self.seats, 1) if self.seats else None

    @property
    def engaged_share(self) -> float | None:
        return round(100.0 * self.engaged / self.seats, 1) if self.seats else None


def seat_engagement(tenant: Tenant, snapshot: AccountScore) -> SeatEngagement:
    """The account's users by tier on its snapshot's day: engaged = tier high or medium, of its seats."""
    tiers = tier_counts(
        UserScore.objects.for_tenant(tenant).filter(
            model=snapshot.model_id, day=snapshot.day, end_user__account=snapshot.account_id
        )
    )
    return SeatEngagement(
        seats=snapshot.seats,
        active=snapshot.active_users,
        engaged=tiers[Tier.HIGH] + tiers[Tier.MEDIUM],
        tiers=tiers,
    )


@dataclass(frozen=True)
class TimelineEvent:
    time: datetime
    type: str
    activity: str
    summary: str
    end_user: EndUser | None = None


def _summary(properties: Any, limit: int = 160) -> str:
    """`name: value · ...` of an event's properties by name, cut to `limit` characters."""
    if not isinstance(properties, dict) or not properties:
        return ""
    parts = []
    for key, value in sorted(properties.items()):  # PostgreSQL's jsonb keeps no key order: sort for all
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"{key}: {text[:40] + '…' if len(text) > 40 else text}")
    summary = " · ".join(parts)
    return summary[: limit - 1] + "…" if len(summary) > limit else summary


def recent_events(
    tenant: Tenant,
    *,
    end_user: EndUser | None = None,
    account: CustomerAccount | None = None,
    limit: int = RECENT_EVENTS,
) -> list[TimelineEvent]:
    """The latest events of an end user, or of an account's end users, newest first, in the tenant's time zone.

    Only the payload's properties are read (a KeyTransform), not the whole message.
    """
    from events.models import Event

    rows = Event.objects.for_tenant(tenant)
    if end_user is not None:
        rows = rows.filter(end_user=end_user)
    elif account is not None:
        rows = rows.filter(end_user__account=account).select_related("end_user")
    else:
        raise ValueError("recent_events needs an end user or an account.")
    rows = (
        rows.select_related("activity")
        .annotate(properties=KeyTransform("properties", "payload"), page_name=KeyTransform("name", "payload"))
        .only("timestamp", "type", "activity", "end_user")
        .order_by("-timestamp")[:limit]
    )
    zone = tenant.tzinfo
    return [
        TimelineEvent(
            time=e.timestamp.astimezone(zone),
            type=e.type,
            activity=str(e.activity) if e.activity else " ".join(filter(None, [e.type, e.page_name or ""])),
            summary=_summary(e.properties),
            end_user=e.end_user if account is not None else None,
        )
        for e in rows
    ]


# --- History series ------------------------------------------------------------------------


def _newest_version_per_day(rows) -> list:
    """Keep, for each day, the row of the newest model version (rows ordered by day, -version)."""
    series, seen = [], set()
    for row in rows:
        if row.day not in seen:
            seen.add(row.day)
            series.append(row)
    return series


def _since(tenant: Tenant, days: int) -> date:
    return tenant.today() - timedelta(days=days - 1)


def product_series(tenant: Tenant, days: int = HISTORY_DAYS) -> list[ProductScore]:
    rows = (
        ProductScore.objects.for_tenant(tenant)
        .filter(day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def user_history(tenant: Tenant, end_user: EndUser, days: int = HISTORY_DAYS) -> list[UserScore]:
    rows = (
        UserScore.objects.for_tenant(tenant)
        .filter(end_user=end_user, day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def account_history(tenant: Tenant, account: CustomerAccount, days: int = HISTORY_DAYS) -> list[AccountScore]:
    rows = (
        AccountScore.objects.for_tenant(tenant)
        .filter(account=account, day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def version_changes(series: list) -> list[tuple[date, int]]:
    """(day, version) where the version differs from the day before: the marks on charts."""
    marks, previous = [], None
    for row in series:
        if row.model.version != previous:
            marks.append((row.day, row.model.version))
            previous = row.model.version
    return marks


def latest_user_snapshot(tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None) -> UserScore | None:
    model = model or published_model(tenant)
    if model is None:
        return None
    return (
        UserScore.objects.for_tenant(tenant)
        .filter(model=model, end_user=end_user)
        .select_related("model")
        .order_by("-day")
        .first()
    )


def latest_account_snapshot(
    tenant: Tenant, account: CustomerAccount, *, model: ScoringModel | None = None
) -> AccountScore | None:
    model = model or published_model(tenant)
    if model is None:
        return None
    return (
        AccountScore.objects.for_tenant(tenant)
        .filter(model=model, account=account)
        .select_related("model")
        .order_by("-day")
        .first()
    )


# --- Explain ------------------------------------------------------------------------------------


@dataclass
class ActivityExplanation:
    activity: str
    weight: int
    times: int
    points: float
    times_before: int
    points_before: float

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 4)


@dataclass
class Explanation:
    day: date
    compared_with: date
    model: ScoringModel
    activities: list[ActivityExplanation] = field(default_factory=list)

    @property
    def points(self) -> float:
        return round(sum(a.points for a in self.activities), 4)

    @property
    def points_before(self) -> float:
        return round(sum(a.points_before for a in self.activities), 4)

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 4)

    @property
    def movers(self) -> list[ActivityExplanation]:
        """Activities whose points changed, biggest change first: what moved the score."""
        return sorted((a for a in self.activities if a.change), key=lambda a: -abs(a.change))


def _points_per_activity(model, day: date, subject_sql: str, subject_params: list, weights: list) -> dict:
    ctes, params = engine.contrib_ctes(model, day, subject_sql, subject_params, weights=weights)
    sql = f"""WITH {", ".join(ctes)}
    SELECT c.activity_id, SUM(c.times), ROUND(CAST(SUM(c.pts) AS NUMERIC), 4)
    FROM contrib c GROUP BY c.activity_id"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {activity_id: (int(times), float(points)) for activity_id, times, points in cursor.fetchall()}


def _explain(model: ScoringModel, day: date, subject_sql: str, subject_params: list, days_back: int) -> Explanation:
    before_day = day - timedelta(days=days_back)
    weights = {w.activity_id: w for w in model.weights.select_related("activity").filter(points__gt=0)}
    pairs = sorted((activity_id, w.points) for activity_id, w in weights.items())
    now = _points_per_activity(model, day, subject_sql, subject_params, pairs)
    before = _points_per_activity(model, before_day, subject_sql, subject_params, pairs)
    explanation = Explanation(day=day, compared_with=before_day, model=model)
    for activity_id, weight in weights.items():
        times, points = now.get(activity_id, (0, 0.0))
        times_before, points_before = before.get(activity_id, (0, 0.0))
        explanation.activities.append(
            ActivityExplanation(str(weight.activity), weight.points, times, points, times_before, points_before)
        )
    explanation.activities.sort(key=lambda a: (-a.points, a.activity))
    return explanation


def explain_user(
    tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None, day: date | None = None, days_back=7
) -> Explanation | None:
    """Points per activity in the window on `day`, and the change per activity against `days_back` earlier."""
    model = model or published_model(tenant)
    if model is None:
        return None
    day = day or latest_day(tenant, model) or tenant.today()
    return _explain(model, day, "AND r.end_user_id = %s", [end_user.pk], days_back)


def explain_account(
    tenant: Tenant,
    account: CustomerAccount,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    days_back=7,
) -> Explanation | None:
    """The same for an account: its users' points per activity, summed."""
    model = model or published_model(tenant)
    if model is None:
        return None
    day = day or latest_day(tenant, model) or tenant.today()
    subject = "AND r.end_user_id IN (SELECT id FROM events_enduser WHERE tenant_id = %s AND account_id = %s)"
    return _explain(model, day, subject, [tenant.pk, account.pk], days_back)


# --- Preview of a draft ------------------------------------------------------------------------


class _Discard(Exception):
    """Raised to roll back the preview's scratch rows."""


@dataclass
class Preview:
    day: date
    model: ScoringModel
    published: ScoringModel | None
    product: dict
    tiers: dict[str, int]
    published_tiers: dict[str, int] | None
    distribution: list[dict]
    top: list[dict]
    changes: list[dict]
    change_count: int


def preview_day(tenant: Tenant) -> date:
    """The latest day with activity (up to today): preview scores real data, not an empty today."""
    today = tenant.today()
    latest = DailyActivityCount.objects.for_tenant(tenant).filter(day__lte=today).aggregate(d=Max("day"))["d"]
    return latest or today


def _distribution(rows: QuerySet, buckets: int = 10) -> list[dict]:
    scored = rows.filter(points__gt=0)
    top = scored.aggregate(m=Max("points"))["m"]
    if not top:
        return []
    width = top / buckets
    counts = dict(
        scored.order_by()
        .annotate(bucket=Least(Cast(Floor(F("points") / width), IntegerField()), Value(buckets - 1)))
        .values_list("bucket")
        .annotate(n=Count("id"))
    )
    return [
        {"low": round(i * width, 1), "high": round((i + 1) * width, 1), "users": counts.get(i, 0)}
        for i in range(buckets)
    ]


def preview_draft(model: ScoringModel, *, changes_limit: int | None = 50) -> Preview:
    """Score the latest day under `model` without keeping anything.

    The engine writes its rows inside a transaction that is always rolled back,
    so the preview uses exactly the published formulas and costs one day. The
    page lists the first `changes_limit` tier changes; its CSV asks for all.
    """
    tenant = model.tenant
    day = preview_day(tenant)
    published = published_model(tenant)
    result: Preview | None = None
    try:
        with transaction.atomic():
            engine.compute_day(model, day)
            if published is not None and published.pk != model.pk:
                # Compare with what the published version shows for that day; score it
                # here only when no run has yet.
                if not ProductScore.objects.for_tenant(tenant).filter(model=published, day=day).exists():
                    engine.compute_day(published, day)
            rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day)
            product = ProductScore.objects.for_tenant(tenant).get(model=model, day=day)
            top = [
                {"user": r.end_user, "points": r.points, "breadth": r.breadth, "tier": r.tier}
                for r in rows.filter(points__gt=0).select_related("end_user").order_by("-points", "end_user_id")[:20]
            ]
            changes_qs, change_count, published_tiers = [], 0, None
            if published is not None and published.pk != model.pk:
                old = UserScore.objects.for_tenant(tenant).filter(
                    model=published, day=day, end_user=OuterRef("end_user")
                )
                changed = rows.annotate(
                    old_tier=Subquery(old.values("tier")[:1]), old_points=Subquery(old.values("points")[:1])
                ).exclude(old_tier=F("tier"))
                change_count = changed.count()
                changes_qs = [
                    {
                        "user": r.end_user,
                        "old_tier": r.old_tier,
                        "tier": r.tier,
                        "old_points": r.old_points,
                        "points": r.points,
                    }
                    for r in changed.select_related("end_user").order_by("-points", "end_user_id")[:changes_limit]
                ]
                published_tiers = tier_counts(UserScore.objects.for_tenant(tenant).filter(model=published, day=day))
            result = Preview(
                day=day,
                model=model,
                published=published if published and published.pk != model.pk else None,
                product={
                    "total_points": product.total_points,
                    "mean_points": product.mean_points,
                    "median_points": product.median_points,
                    "active_users": product.active_users,
                    "engaged_users": product.engaged_users,
                },
                tiers=tier_counts(rows),
                published_tiers=published_tiers,
                distribution=_distribution(rows),
                top=top,
                changes=changes_qs,
                change_count=change_count,
            )
            raise _Discard
    except _Discard:
        pass
    assert result is not None
    return result
