"""Score truth: does the score say who stays? (docs/scoring.md, "Score truth").

A score is a hypothesis about what value looks like in a product; the tenant's
own history tests it. Everything here reads the rollup (`events_dailyactivitycount`)
and, for a model version, its snapshots on past days:

- `retention_by_activity`: for each activity and frequency band, the share of
  users still active h days later among those who did it against those who did
  not, with Wilson intervals (one set-based query).
- `backtest`: the snapshots of any version (a draft too) on chosen past days,
  computed by the real engine inside a transaction that is always rolled back,
  and how well they separated stayers from leavers (AUC, retention by tier,
  tier order) with an honest `Verdict`.
- `fit_weights`: points per activity, per-day cap and half-life fitted on the
  history (a non-negative logistic regression), validated out of time: fitted
  on earlier snapshot days, judged on later ones it never saw.

Definitions shared by all of them: on a snapshot day D, the *population* is
every end user with any event in the model's window ending on D; a user
*stayed* when they have any event in the 7 days ending on D + h (as on the
Outcomes page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
from django.db import connection, transaction

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all as _fetch
from core.sql import sql_date as _d
from events.models import Activity
from scoring import engine
from scoring.models import AccountScore, ScoringModel, UserScore
from scoring.selectors import TIER_RANK

HORIZONS = (14, 30, 60, 90)
ACTIVE_SPAN = 7
SNAPSHOT_STEP = 7
MIN_HISTORY_DAYS = 60
MIN_EACH_CLASS = 20
MIN_ACCOUNTS_EACH = 10  # accounts are fewer: 10 that left and 10 that stayed before an account fit or verdict
MIN_TRAIN_DAYS = 2
MAX_EVAL_DAYS = 6
THIN = 30
# Verdict thresholds (docs/scoring.md): a coin is 0.5.
PREDICTIVE_AUC = 0.70
WEAK_AUC = 0.60
FADING_DROP = 0.5  # points fell by more than half in 30 days
ORDER_SLACK = 1.0  # percentage points


# --- The history, as arrays -------------------------------------------------------------------------


@dataclass
class History:
    """A tenant's rollup rows between two days, as numpy arrays (day as an offset from `first_day`)."""

    first_day: date
    last_day: date
    user: np.ndarray
    activity: np.ndarray
    day: np.ndarray
    count: np.ndarray
    users: np.ndarray  # distinct end user ids (row user = users[user_index])
    user_index: np.ndarray
    activities: list[int]
    activity_index: np.ndarray

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def offset(self, day: date) -> int:
        return (day - self.first_day).days

    def at(self, offset: int) -> date:
        return self.first_day + timedelta(days=offset)


def load_history(tenant: Tenant, *, first: date | None = None, last: date | None = None) -> History | None:
    """One read of the rollup rows of `tenant` between `first` and `last` (default: all up to yesterday)."""
    last = last or tenant.today() - timedelta(days=1)
    where, params = tenant_sql(tenant)
    bounds = _fetch(f"SELECT MIN(day) FROM events_dailyactivitycount WHERE {where}", params)  # noqa: S608
    earliest = bounds[0][0] if bounds and bounds[0][0] else None
    if earliest is None:
        return None
    if isinstance(earliest, str):
        earliest = date.fromisoformat(earliest)
    first = max(first or earliest, earliest)
    if first > last:
        return None
    if connection.vendor == "postgresql":
        user, activity, day, count = _rows_postgresql(tenant, first, last)
    else:
        user, activity, day, count = _rows_portable(tenant, first, last)
    if not len(user):
        return None
    users, user_index = np.unique(user, return_inverse=True)
    activities, activity_index = np.unique(activity, return_inverse=True)
    return History(first, last, user, activity, day, count, users, user_index, [int(a) for a in activities],
                   activity_index)


# One row of a binary COPY of (bigint, bigint, int4, int4): field count, then length + value of each field.
_COPY_ROW = np.dtype([("n", ">i2"), ("lu", ">i4"), ("u", ">i8"), ("la", ">i4"), ("a", ">i8"),
                      ("ld", ">i4"), ("d", ">i4"), ("lc", ">i4"), ("c", ">i4")])


def _rows_postgresql(tenant: Tenant, first: date, last: date):
    """The rollup rows as numpy columns from one binary COPY: no Python object per row.

    fetchall() of 5.9M rows (100,000 end users, 150 days) took 1.5 GB for its tuples;
    the COPY buffer is 42 bytes a row, read in place (bench/backtest.py: 520 MB peak).
    """
    scope, scope_params = tenant_sql(tenant)
    # The predicate is tenant_sql's constant text; every value is a parameter.
    select = 'SELECT end_user_id::bigint, activity_id::bigint, (day - %s::date)::int4, "count"::int4 '
    where = f'FROM events_dailyactivitycount WHERE {scope} AND day >= %s AND day <= %s AND "count" > 0'
    sql = f"COPY ({select}{where}) TO STDOUT (FORMAT binary)"
    buf = bytearray()
    params = [first, *scope_params, first, last]
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql, params) as copy:
        for block in copy:
            buf += block
    # Header: 11-byte signature, flags, extension length (then the extension); trailer: int16 -1.
    start = 19 + int.from_bytes(buf[15:19], "big")
    rows = np.frombuffer(buf, dtype=_COPY_ROW, offset=start, count=(len(buf) - start - 2) // _COPY_ROW.itemsize)
    return (rows["u"].astype(np.int64), rows["a"].astype(np.int64), rows["d"].astype(np.int32),
            rows["c"].astype(np.float64))


def _rows_portable(tenant: Tenant, first: date, last: date):
    where, params = tenant_sql(tenant)
    rows = _fetch(
        'SELECT end_user_id, activity_id, day, "count" FROM events_dailyactivitycount '  # noqa: S608
        f'WHERE {where} AND day >= %s AND day <= %s AND "count" > 0',
        [*params, _d(first), _d(last)],
    )
    user = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    activity = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    ordinal0 = first.toordinal()

    def ordinal(value) -> int:
        return (value if isinstance(value, date) else date.fromisoformat(value)).toordinal()

    day = np.fromiter((ordinal(r[2]) - ordinal0 for r in rows), dtype=np.int32, count=len(rows))
    count = np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))
    return user, activity, day, count


def _any_in(history: History, lo: int, hi: int) -> np.ndarray:
    """Per distinct user: any event with day offset in [lo, hi]."""
    mask = (history.day >= lo) & (history.day <= hi)
    flags = np.zeros(len(history.users), dtype=bool)
    flags[history.user_index[mask]] = True
    return flags


def window_features(history: History, offset: int, *, window: int, cap: int | None = None,
                    half_life: float | None = None, columns: np.ndarray | None = None,
                    log: bool = False) -> np.ndarray:
    """users x activities: sum over the window ending on `offset` of min(count, cap) x 0.5 ** (age / half-life).

    Exactly the engine's per-activity `times x factor` (scoring/engine.py), before the points.
    `columns` (indices into history.activities) keeps only those activities, so the matrix stays
    users x a few dozen however many event names arrive (anyone with the public write key can
    send a thousand).
    """
    mask = (history.day > offset - window) & (history.day <= offset)
    act = history.activity_index[mask]
    n_act = len(history.activities)
    if columns is not None:
        lookup = np.full(n_act, -1, dtype=np.int64)
        lookup[columns] = np.arange(len(columns))
        act = lookup[act]
        keep = act >= 0
        mask = np.flatnonzero(mask)[keep]
        act = act[keep]
        n_act = len(columns)
    counts = history.count[mask]
    if cap:
        counts = np.minimum(counts, cap)
    if log:  # diminishing returns: log(1 + count) a day instead of a cap (compared by the fit, not publishable)
        counts = np.log1p(counts)
    if half_life:
        counts = counts * 0.5 ** ((offset - history.day[mask]) / half_life)
    cells = history.user_index[mask] * n_act + act
    flat = np.bincount(cells, weights=counts, minlength=len(history.users) * n_act)
    return flat.reshape(len(history.users), n_act)


@dataclass
class Snapshot:
    """The population and outcome of one snapshot day."""

    day: date
    offset: int
    members: np.ndarray  # indices into history.users
    stayed: np.ndarray  # bool per member

    def rows(self, features: np.ndarray) -> np.ndarray:
        """The members' rows of a users x activities matrix."""
        return features[self.members]


def snapshot_days(history: History, *, window: int, horizon: int, step: int = SNAPSHOT_STEP) -> list[date]:
    """Past days whose full window lies in the history and whose outcome h days later is known."""
    first = window - 1
    last = history.days - 1 - horizon
    if last < first:
        return []
    offsets = list(range(last, first - 1, -step))[::-1]
    return [history.at(o) for o in offsets]


def snapshot(history: History, day: date, *, window: int, horizon: int) -> Snapshot:
    t = history.offset(day)
    active = _any_in(history, t - window + 1, t)
    later = _any_in(history, t + horizon - ACTIVE_SPAN + 1, t + horizon)
    members = np.flatnonzero(active)
    return Snapshot(day=day, offset=t, members=members, stayed=later[members])


def auc(scores, labels) -> float | None:
    """ROC AUC: the chance that a random stayer scores above a random leaver (ties count half).

    None when everyone stayed or everyone left. Computed from average ranks
    (Mann-Whitney U, scipy's rankdata): the same number as scikit-learn's
    roc_auc_score (a test compares them) without importing scikit-learn into
    every web worker (~2 s here).
    """
    from scipy.stats import rankdata

    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# --- Thin data -----------------------------------------------------------------------------------------


@dataclass
class Readiness:
    days: int
    users: int
    left: int  # distinct users who left after at least one snapshot day
    stayed: int  # distinct users who stayed after at least one snapshot day
    horizon: int
    needed: int = MIN_HISTORY_DAYS
    subject: str = "users"  # what `users`, `left` and `stayed` count: users or accounts

    @property
    def min_each(self) -> int:
        return MIN_EACH_CLASS if self.subject == "users" else MIN_ACCOUNTS_EACH

    @property
    def ok(self) -> bool:
        return self.days >= self.needed and self.left >= self.min_each and self.stayed >= self.min_each

    @property
    def message(self) -> str:
        return (f"Not enough history to fit or judge: {self.days} days of events ({self.needed} needed for "
                f"{self.horizon}-day outcomes), {self.users} {self.subject}, {self.left} left within "
                f"{self.horizon} days and {self.stayed} stayed (at least {self.min_each} of each are needed).")


def needed_days(window: int, horizon: int, *, fit: bool) -> int:
    """A window before the first snapshot day and its outcome; a fit needs a second outcome period
    for the days it is judged on (see split_days) and a week more for a second training day."""
    days = window + horizon + (horizon + SNAPSHOT_STEP * (MIN_TRAIN_DAYS - 1) if fit else 0)
    return max(MIN_HISTORY_DAYS, days)


def readiness(history: History | None, snapshots: list[Snapshot], horizon: int, *, window: int = 30,
              fit: bool = False, subject: str = "users") -> Readiness:
    needed = needed_days(window, horizon, fit=fit)
    if history is None:
        return Readiness(days=0, users=0, left=0, stayed=0, horizon=horizon, needed=needed, subject=subject)
    members = [s.members for s in snapshots]
    users = len(np.unique(np.concatenate(members))) if members else (len(history.users) if subject == "users" else 0)
    stayed = len(np.unique(np.concatenate([s.members[s.stayed] for s in snapshots]))) if snapshots else 0
    left = len(np.unique(np.concatenate([s.members[~s.stayed] for s in snapshots]))) if snapshots else 0
    return Readiness(days=history.days, users=users, left=left, stayed=stayed, horizon=horizon, needed=needed,
                     subject=subject)


def best_horizon(history: History | None, window: int) -> int:
    """The longest horizon the history can fit and judge (longer says more about staying)."""
    if history is None:
        return HORIZONS[0]
    for h in reversed(HORIZONS):
        train, judged = split_days(snapshot_days(history, window=window, horizon=h), h)
        if len(judged) >= 2:
            return h
    return HORIZONS[0]


# --- Interval helpers ------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a share, in percent."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(100 * max(0.0, centre - half), 1), round(100 * min(1.0, centre + half), 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


# --- Retention by activity -------------------------------------------------------------------------------

DAY_BANDS = [(1, 3), (4, 9), (10, 19), (20, None)]
HEAVY_PER_DAY = 5


@dataclass
class Cohort:
    label: str
    n: int
    stayed: int

    @property
    def share(self) -> float | None:
        return _pct(self.stayed, self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.stayed, self.n)

    @property
    def thin(self) -> bool:
        return self.n < THIN


@dataclass
class ActivityRetention:
    activity: Activity
    did: Cohort
    did_not: Cohort
    bands: list[Cohort] = field(default_factory=list)
    heavy: Cohort | None = None  # >= HEAVY_PER_DAY times a day on the days used

    @property
    def difference(self) -> float | None:
        if self.did.share is None or self.did_not.share is None:
            return None
        return round(self.did.share - self.did_not.share, 1)

    @property
    def difference_interval(self) -> tuple[float, float] | None:
        """95% interval of the difference of two shares (normal approximation), in points."""
        a, b = self.did, self.did_not
        if not a.n or not b.n:
            return None
        p1, p2 = a.stayed / a.n, b.stayed / b.n
        se = math.sqrt(p1 * (1 - p1) / a.n + p2 * (1 - p2) / b.n)
        d = p1 - p2
        return round(100 * (d - 1.96 * se), 1), round(100 * (d + 1.96 * se), 1)

    @property
    def thin(self) -> bool:
        return self.did.thin or self.did_not.thin


@dataclass
class RetentionByActivity:
    day: date | None
    horizon: int
    window: int
    population: Cohort | None
    rows: list[ActivityRetention] = field(default_factory=list)
    subject: str = "users"


def _band_label(lo: int, hi: int | None, window: int) -> str:
    return f"on {lo}+ of the last {window} days" if hi is None else f"on {lo}-{hi} of the last {window} days"


SUBJECTS = ("users", "accounts")


def _subject_sql(tenant: Tenant, subject: str, as_of: date) -> tuple[str, str, list]:
    """(subject column, join, its parameters) over the rollup alias r; accounts through the memberships
    as they stood when `as_of` ended (a user in two accounts counts in both)."""
    if subject == "users":
        return "r.end_user_id", "", []
    scope, params = tenant_sql(tenant, "m")
    end = connection.ops.adapt_datetimefield_value(
        datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=tenant.tzinfo))
    join = (f"JOIN events_accountmembership m ON m.end_user_id = r.end_user_id AND {scope} "
            "AND m.started_at < %s AND (m.ended_at IS NULL OR m.ended_at >= %s)")
    return "m.account_id", join, [*params, end, end]


def retention_by_activity(tenant: Tenant, *, day: date, horizon: int, window: int = 30,
                          subject: str = "users") -> RetentionByActivity:
    """Per activity (and band of use), who was still active `horizon` days after `day`: one query.

    For accounts, an account "did" an activity when any of its members on `day` did, on as many
    days as any of them did it, and stayed when any of its members on `day + horizon` was active
    then (the memberships' history, as the engine's account roll-up reads it; see AccountSnapshot).
    """
    if subject not in SUBJECTS:
        raise ValueError(f"subject: one of {SUBJECTS}")
    window_start = day - timedelta(days=window - 1)
    later_start, later_end = day + timedelta(days=horizon - ACTIVE_SPAN + 1), day + timedelta(days=horizon)
    column, join, join_params = _subject_sql(tenant, subject, day)
    # The later users first, then their accounts: joined the other way round, SQLite read the week's
    # rollup once per membership (5.4 s against 0.3 s for users on the demo tenant).
    _, later_join, later_join_params = _subject_sql(tenant, subject, later_end)
    band_case = " ".join(
        f"WHEN w.days >= {lo} " + (f"AND w.days <= {hi} " if hi else "") + f"THEN {i}"
        for i, (lo, hi) in enumerate(DAY_BANDS)
    )
    scope, scope_params = tenant_sql(tenant, "r")
    # An account whose dated churn falls by the outcome day left, whatever its members did (as account_days).
    gone_ids = [a for a, d in churned_accounts(tenant).items() if d <= later_end] if subject == "accounts" else []
    gone = f"OR pop.u IN ({', '.join(['%s'] * len(gone_ids))})" if gone_ids else ""
    sql = f"""WITH w AS (
        SELECT {column} AS u, r.activity_id AS a, COUNT(DISTINCT r.day) AS days, SUM(r."count") AS total
        FROM events_dailyactivitycount r {join}
        WHERE {scope} AND r.day >= %s AND r.day <= %s AND r."count" > 0
        GROUP BY {column}, r.activity_id
    ),
    pop AS (SELECT DISTINCT u FROM w),
    later AS (
        SELECT DISTINCT {column} AS u FROM (
            SELECT DISTINCT r.end_user_id FROM events_dailyactivitycount r
            WHERE {scope} AND r.day >= %s AND r.day <= %s AND r."count" > 0
        ) r {later_join}
    ),
    base AS (SELECT pop.u AS u, CASE WHEN later.u IS NULL {gone} THEN 0 ELSE 1 END AS stayed
             FROM pop LEFT JOIN later ON later.u = pop.u)
    SELECT w.a, CASE {band_case} END AS band,
           CASE WHEN w.total >= {HEAVY_PER_DAY} * w.days THEN 1 ELSE 0 END AS heavy,
           COUNT(*), SUM(b.stayed)
    FROM w JOIN base b ON b.u = w.u
    GROUP BY w.a, CASE {band_case} END, CASE WHEN w.total >= {HEAVY_PER_DAY} * w.days THEN 1 ELSE 0 END
    UNION ALL
    SELECT NULL, NULL, NULL, COUNT(*), SUM(stayed) FROM base"""  # noqa: S608 - constants only
    params = [*join_params, *scope_params, _d(window_start), _d(day),
              *scope_params, _d(later_start), _d(later_end), *later_join_params, *gone_ids]
    per_activity: dict[int, dict] = {}
    population = None
    for activity_id, band, heavy, n, stayed in _fetch(sql, params):
        n, stayed = int(n or 0), int(stayed or 0)
        if activity_id is None:
            population = Cohort(f"every {subject[:-1]}", n, stayed)
            continue
        cell = per_activity.setdefault(activity_id, {"bands": [[0, 0] for _ in DAY_BANDS], "heavy": [0, 0]})
        cell["bands"][int(band)][0] += n
        cell["bands"][int(band)][1] += stayed
        if heavy:
            cell["heavy"][0] += n
            cell["heavy"][1] += stayed
    result = RetentionByActivity(day=day, horizon=horizon, window=window, population=population, subject=subject)
    if not population or not population.n:
        return result
    names = {a.pk: a for a in Activity.objects.for_tenant(tenant).filter(pk__in=list(per_activity))}
    for activity_id, cell in per_activity.items():
        did_n = sum(b[0] for b in cell["bands"])
        did_s = sum(b[1] for b in cell["bands"])
        activity = names.get(activity_id)
        if activity is None:
            continue
        row = ActivityRetention(
            activity=activity,
            did=Cohort("did it", did_n, did_s),
            did_not=Cohort("did not", population.n - did_n, population.stayed - did_s),
            bands=[Cohort(_band_label(lo, hi, window), n, s)
                   for (lo, hi), (n, s) in zip(DAY_BANDS, cell["bands"], strict=True)],
            heavy=Cohort(f"{HEAVY_PER_DAY}+ times a day", *cell["heavy"]) if cell["heavy"][0] else None,
        )
        result.rows.append(row)
    result.rows.sort(key=lambda r: (-(r.difference if r.difference is not None else -999), r.activity.name))
    return result


# --- Backtest: any version's snapshots on past days, never stored ----------------------------------------


class _Discard(Exception):
    pass


class TierOutcome(Cohort):
    """A tier's users on the judged days and how many stayed (a Cohort labelled by its tier)."""

    @property
    def tier(self) -> str:
        return self.label


@dataclass
class DayAuc:
    day: date
    users: int
    stayed: int
    auc: float | None
    tier_auc: float | None


@dataclass
class Verdict:
    level: str  # predictive | weak | not | thin
    headline: str
    warnings: list[str]


def _account_scores(model: ScoringModel, days: list[date]) -> dict[date, dict[int, tuple[float, str]]]:
    rows = AccountScore.objects.for_tenant(model.tenant).filter(model=model, day__in=days)
    out: dict[date, dict[int, tuple[float, str]]] = {}
    for day, account_id, points, tier in rows.values_list("day", "account_id", "points", "tier"):
        out.setdefault(day, {})[account_id] = (float(points), tier)
    return out


@dataclass
class AccountHistory:
    """The memberships of a tenant (events.AccountMembership) as arrays, and the accounts a churn trait
    marks as gone. A user in two accounts counts in both, and an old day reads the memberships as they
    stood when it ended, as the engine's account roll-up does (scoring.engine.account_members_cte)."""

    account: np.ndarray  # account id per membership
    member: np.ndarray  # index into history.users per membership
    started: np.ndarray  # POSIX seconds
    ended: np.ndarray  # POSIX seconds; inf while open
    churned: dict[int, date]  # account id -> its `churned_at` trait
    tzinfo: object = None

    def members_on(self, day: date) -> tuple[np.ndarray, np.ndarray]:
        """(account ids, user indices) of the memberships started before `day` ended and not ended by then."""
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.tzinfo).timestamp()
        keep = (self.started < end) & (self.ended >= end)
        return self.account[keep], self.member[keep]

    def left(self, account_ids: np.ndarray, by: date) -> np.ndarray:
        """Per account: a dated churn on or before `by`."""
        return np.array([a in self.churned and self.churned[a] <= by for a in account_ids.tolist()], dtype=bool)


def account_history(tenant: Tenant, history: History) -> AccountHistory:
    from events.models import AccountMembership

    rows = list(AccountMembership.objects.for_tenant(tenant)
                .values_list("account_id", "end_user_id", "started_at", "ended_at"))
    users = np.array([r[1] for r in rows], dtype=np.int64)
    index = np.searchsorted(history.users, users)
    index = np.minimum(index, max(len(history.users) - 1, 0))
    # Members without a rollup row did nothing in the history: they can make no account active.
    known = (history.users[index] == users) if len(history.users) else np.zeros(len(rows), dtype=bool)
    started = np.array([r[2].timestamp() for r in rows], dtype=float)
    ended = np.array([r[3].timestamp() if r[3] is not None else np.inf for r in rows], dtype=float)
    account = np.array([r[0] for r in rows], dtype=np.int64)
    return AccountHistory(account=account[known], member=index[known], started=started[known],
                          ended=ended[known], churned=churned_accounts(tenant), tzinfo=tenant.tzinfo)


def churned_accounts(tenant: Tenant) -> dict[int, date]:
    """Account id -> its `churned_at` trait. Only a dated churn counts on past days: an undated
    `status: cancelled` set today says nothing about whether the account had left h days after a
    snapshot months ago."""
    from events.models import CustomerAccount

    churned: dict[int, date] = {}
    for account_id, traits in CustomerAccount.objects.for_tenant(tenant).values_list("pk", "traits"):
        value = (traits or {}).get("churned_at")
        if isinstance(value, str) and value:
            try:
                churned[account_id] = date.fromisoformat(value[:10])
            except ValueError:
                continue
    return churned


@dataclass
class AccountSnapshot(Snapshot):
    """Accounts with a member active in the window ending on `day` (membership as of that day); an account
    stayed when a member as of D + h was active in the 7 days ending then and no `churned_at` trait falls
    on or before D + h. `members` holds account ids; rows() sums the window features of the members."""

    member_row: np.ndarray = None  # per counted membership: the row of its account in `members`
    member_user: np.ndarray = None  # per counted membership: its user index
    users: int = 0  # len(history.users)

    def rows(self, features: np.ndarray) -> np.ndarray:
        from scipy.sparse import csr_matrix

        # accounts x users, 1 where the user was a member on the day: its product sums each account's members.
        matrix = csr_matrix((np.ones(len(self.member_row)), (self.member_row, self.member_user)),
                            shape=(len(self.members), self.users))
        return np.asarray(matrix @ features)


def account_snapshot(history: History, accounts: AccountHistory, day: date, *, window: int,
                     horizon: int) -> AccountSnapshot:
    t = history.offset(day)
    active = _any_in(history, t - window + 1, t)
    later = _any_in(history, t + horizon - ACTIVE_SPAN + 1, t + horizon)
    acc, user = accounts.members_on(day)
    counted = active[user]
    ids = np.unique(acc[counted])
    later_day = day + timedelta(days=horizon)
    # Membership as of D + h for the outcome: a seat passed from one member to another is an account
    # that stayed; a member who moved to another account keeps neither account alive alone.
    later_acc, later_user = accounts.members_on(later_day)
    stayed = np.isin(ids, later_acc[later[later_user]]) & ~accounts.left(ids, later_day)
    return AccountSnapshot(day=day, offset=t, members=ids, stayed=stayed,
                           member_row=np.searchsorted(ids, acc[counted]), member_user=user[counted],
                           users=len(history.users))


def account_days(history: History, accounts: AccountHistory, snap_days: list[date], window: int, horizon: int,
                 scores: dict[date, dict[int, tuple[float, str]]]) -> list[DayAuc]:
    """Per day: the account snapshot (see AccountSnapshot) and the AUC of the account points and tier
    (an account without a row that day counts as 0 points, dormant; new accounts are left out of the tier's)."""
    out = []
    for day in snap_days:
        snap = account_snapshot(history, accounts, day, window=window, horizon=horizon)
        if not len(snap.members):
            continue
        rows = [scores.get(day, {}).get(int(a), (0.0, "dormant")) for a in snap.members]
        value = auc([p for p, _ in rows], snap.stayed)
        ranked = [(TIER_RANK[t], s) for (_, t), s in zip(rows, snap.stayed, strict=True) if t in TIER_RANK]
        tier_value = auc([r for r, _ in ranked], [s for _, s in ranked]) if ranked else None
        out.append(DayAuc(day, len(snap.members), int(snap.stayed.sum()),
                          round(value, 3) if value is not None else None,
                          round(tier_value, 3) if tier_value is not None else None))
    return out


@dataclass
class Backtest:
    model: ScoringModel
    horizon: int
    days: list[DayAuc]
    tiers: list[TierOutcome]
    in_order: bool | None
    verdict: Verdict
    readiness: Readiness
    scores: dict[date, dict[int, tuple[float, str]]] = field(default_factory=dict, repr=False)
    accounts: list[DayAuc] = field(default_factory=list)
    falling: dict[date, set[int]] = field(default_factory=dict, repr=False)  # the snapshots' falling flags
    falling_check: FallingCheck | None = None  # the flag judged on the held-out days (score_truth)

    def drop_rows(self) -> None:
        """Keep the summary only: the page needs no user's points (and the cache stays small)."""
        self.scores, self.falling = {}, {}

    @property
    def account_mean_auc(self) -> float | None:
        values = [d.auc for d in self.accounts if d.auc is not None]
        return round(sum(values) / len(values), 3) if values else None

    @property
    def account_mean_tier_auc(self) -> float | None:
        values = [d.tier_auc for d in self.accounts if d.tier_auc is not None]
        return round(sum(values) / len(values), 3) if values else None

    @property
    def mean_auc(self) -> float | None:
        values = [d.auc for d in self.days if d.auc is not None]
        return round(sum(values) / len(values), 3) if values else None

    @property
    def mean_tier_auc(self) -> float | None:
        values = [d.tier_auc for d in self.days if d.tier_auc is not None]
        return round(sum(values) / len(values), 3) if values else None


def _read_scores(model: ScoringModel, day: date) -> dict[int, tuple[float, str]]:
    rows = UserScore.objects.for_tenant(model.tenant).filter(model=model, day=day)
    return {u: (float(p), t) for u, p, t in rows.values_list("end_user_id", "points", "tier")}


def _read_falling(model: ScoringModel, days: list[date]) -> dict[date, set[int]]:
    """{day: end user ids} the engine flagged falling (UserScore.falling) in `model`'s snapshots of `days`."""
    rows = UserScore.objects.for_tenant(model.tenant).filter(model=model, day__in=days, falling=True)
    out: dict[date, set[int]] = {d: set() for d in days}
    for day, end_user_id in rows.values_list("day", "end_user_id"):
        out[day].add(end_user_id)
    return out


def model_snapshots(model: ScoringModel, days: list[date], *, account_scores: dict | None = None,
                    falling: dict | None = None) -> dict[date, dict[int, tuple[float, str]]]:
    """{day: {end_user_id: (points, tier)}} of `model` on `days`, written by the engine and rolled back.

    Days a run already stored for this version are read as they are; any other
    day is computed inside a transaction that is always rolled back, so the
    backtest stores nothing and uses exactly the engine's formulas. `falling`,
    when given, is filled with the snapshots' own falling flags ({day: end user ids}).
    """
    result: dict[date, dict[int, tuple[float, str]]] = {}
    rows = UserScore.objects.for_tenant(model.tenant).filter(model=model, day__in=days)
    for day, end_user_id, points, tier in rows.values_list("day", "end_user_id", "points", "tier"):
        result.setdefault(day, {})[end_user_id] = (float(points), tier)
    missing = [d for d in days if d not in result]
    stored = [d for d in days if d not in missing]
    if account_scores is not None:
        account_scores.update(_account_scores(model, stored))
    if falling is not None:
        falling.update(_read_falling(model, stored))
    if missing:
        try:
            with transaction.atomic():
                for day in missing:
                    engine.compute_day(model, day)
                    result[day] = _read_scores(model, day)
                if account_scores is not None:
                    account_scores.update(_account_scores(model, missing))
                if falling is not None:  # the engine writes the flag with the points: read before the rollback
                    falling.update(_read_falling(model, missing))
                raise _Discard
        except _Discard:
            pass
    return result


@dataclass
class Fading:
    """Snapshots (user-days) on the judged days whose points fell, how many of them left, and the others."""

    rule: str  # the fall, in words: "by at least 50% in 30 days (this version's falling flag)"
    n: int = 0
    left: int = 0
    others_n: int = 0
    others_left: int = 0
    stored: bool = False  # read from the snapshots' own falling flag, not recomputed here

    def add(self, fading: np.ndarray, stayed: np.ndarray) -> None:
        self.n += int(fading.sum())
        self.left += int((fading & ~stayed).sum())
        self.others_n += int((~fading).sum())
        self.others_left += int((~fading & ~stayed).sum())


def fading_rule(model: ScoringModel | None, *, stored: bool) -> str:
    if stored:
        return f"by at least {model.falling_drop_pct}% in {model.trend_days} days (this version's falling flag)"
    trend = model.trend_days if model is not None else 30
    return f"by more than {int(FADING_DROP * 100)}% in {trend} days"


def judge(model: ScoringModel, history: History, days: list[date], horizon: int,
          scores: dict[date, dict[int, tuple[float, str]]], points: dict[int, int],
          falling: dict[date, set[int]] | None = None) -> Backtest:
    """`falling`: the snapshots' own flags ({day: end user ids}, model_snapshots); the fading warning
    reads them when the version has a falling rule, and recomputes a fall from the rollup otherwise."""
    window = model.window_days
    snaps = [snapshot(history, d, window=window, horizon=horizon) for d in days]
    ready = readiness(history, snaps, horizon, window=window)
    columns = np.array([i for i, a in enumerate(history.activities) if points.get(a, 0) > 0], dtype=np.int64)
    weights = np.array([points[history.activities[i]] for i in columns], dtype=float)
    kw = {"window": window, "cap": model.daily_cap, "half_life": model.half_life_days, "columns": columns}
    day_aucs, tier_counts = [], {t: [0, 0] for t in TIER_RANK}
    stored = bool(model.falling_drop_pct) and falling is not None
    fading = Fading(fading_rule(model, stored=stored), stored=stored)
    trend = model.trend_days
    for snap in snaps:
        by_user = scores.get(snap.day, {})
        ids = history.users[snap.members]
        points_now = np.array([by_user.get(int(u), (0.0, "dormant"))[0] for u in ids])
        tiers = [by_user.get(int(u), (0.0, "dormant"))[1] for u in ids]
        ranked = [(TIER_RANK[t], s) for t, s in zip(tiers, snap.stayed, strict=True) if t in TIER_RANK]
        for t, s in zip(tiers, snap.stayed, strict=True):
            if t in tier_counts:
                tier_counts[t][0] += 1
                tier_counts[t][1] += int(s)
        tier_auc = auc([r for r, _ in ranked], [s for _, s in ranked]) if ranked else None
        score_auc = auc(points_now, snap.stayed)
        day_aucs.append(DayAuc(snap.day, len(ids), int(snap.stayed.sum()),
                               round(score_auc, 3) if score_auc is not None else None,
                               round(tier_auc, 3) if tier_auc is not None else None))
        if stored:  # the flag the engine stored with these snapshots (or wrote before the rollback)
            flagged = falling.get(snap.day, set())
            fading.add(np.fromiter((int(u) in flagged for u in ids), dtype=bool, count=len(ids)), snap.stayed)
        elif snap.offset - trend >= window - 1:
            # No falling rule in this version: its points `trend_days` earlier (same formula, from the
            # rollup) more than halved.
            prev = (window_features(history, snap.offset - trend, **kw) @ weights)[snap.members]
            now = (window_features(history, snap.offset, **kw) @ weights)[snap.members]
            fading.add((prev > 0) & (now < (1 - FADING_DROP) * prev), snap.stayed)
    tiers = [TierOutcome(t, n, s) for t, (n, s) in tier_counts.items() if n]
    bt = Backtest(model=model, horizon=horizon, days=day_aucs, tiers=tiers, in_order=_in_order(tiers),
                  verdict=Verdict("thin", ready.message, []), readiness=ready, scores=scores)
    bt.verdict = verdict(bt, fading=fading)
    return bt


def _in_order(tiers: list[TierOutcome]) -> bool | None:
    shares = {t.tier: t.share for t in tiers if not t.thin and t.share is not None}
    ordered = [shares[t] for t in ("high", "medium", "low") if t in shares]
    if len(ordered) < 2:
        return None
    # A lower tier keeping more users than the one above it (by more than a point: equal shares,
    # such as 100% and 100%, are not disorder) puts the tiers out of order.
    return all(a >= b - ORDER_SLACK for a, b in zip(ordered, ordered[1:], strict=False))


def verdict(bt: Backtest, *, fading: Fading | None = None) -> Verdict:
    """Plain words; never "predictive" when the AUC or the tier order says otherwise."""
    warnings = []
    shares = {t.tier: t for t in bt.tiers}
    high, dormant = shares.get("high"), shares.get("dormant")
    if high and dormant and not high.thin and not dormant.thin and dormant.share > high.share:
        warnings.append(f"Dormant users stayed more than high-tier ones ({dormant.share}% against {high.share}%): "
                        "the score misses what keeps people.")
    if bt.in_order is False:
        order = ", ".join(f"{t.tier} {t.share}%" for t in bt.tiers if t.tier in ("high", "medium", "low"))
        warnings.append(f"The tiers are out of order: {order} still active {bt.horizon} days later.")
    if fading is not None and fading.n >= THIN // 3 and fading.left * 2 > fading.n:
        warnings.append(f"Fading users: {fading.n} had their points fall {fading.rule} and "
                        f"{_pct(fading.left, fading.n)}% of them left (against "
                        f"{_pct(fading.others_left, fading.others_n)}% of the others).")
    if not bt.readiness.ok:
        return Verdict("thin", bt.readiness.message, warnings)
    value = bt.mean_auc
    spread = [d.auc for d in bt.days if d.auc is not None]
    if value is None:
        return Verdict("thin", bt.readiness.message, warnings)
    days = f"{len(spread)} past days"
    dormant_warned = any(w.startswith("Dormant users stayed more") for w in warnings)
    if value >= PREDICTIVE_AUC and bt.in_order is not False and not dormant_warned:
        order = "the tiers are in order" if bt.in_order else \
            f"tier order not judged (fewer than {THIN} users in a tier)"
        return Verdict("predictive", f"Predictive: over {days} the score ranked a user who stayed above one who "
                                     f"left {round(value * 100)}% of the time (AUC {value:.2f}; a coin is 0.50); "
                                     f"{order}.", warnings)
    if value >= WEAK_AUC and bt.in_order is not False:
        return Verdict("weak", f"Weakly predictive: AUC {value:.2f} over {days} (a coin is 0.50). Look at retention "
                               "by activity and the fitted weights.", warnings)
    if bt.in_order is False and value >= WEAK_AUC:
        why = "the tiers are out of order"
    elif value < 1 - WEAK_AUC:
        why = f"AUC {value:.2f} over {days}, below a coin (0.50): it ranks users who left above users who stayed"
    else:
        why = f"AUC {value:.2f} over {days}, close to a coin (0.50)"
    return Verdict("not", f"Not predictive: {why}. The score does not tell who stays.", warnings)


# --- The falling flag: does it tell more than the points? ---------------------------------------------

FLAG_GAIN = 0.01  # AUC the flag must add on the judged days before the page says it adds anything
FLAG_MIN = THIN // 3  # falling snapshots needed on the weighed days and on the judged days
MAX_FLAG_TRAIN_DAYS = 3  # the latest fitted days: each is an engine day more for a version without stored ones


@dataclass
class FlagDay:
    """One snapshot day's population: the version's points, its falling flag and who stayed."""

    day: date
    points: np.ndarray
    falling: np.ndarray  # bool
    stayed: np.ndarray  # bool


@dataclass
class FallingCheck:
    """The version's falling flag judged on days it was never weighed on.

    The flag's weight next to the points (a logistic regression of "stayed" on log(1 + points) and
    the flag) is fitted on earlier days whose outcome was known by the first judged day, as the
    fitted weights are; every figure is from the judged days.
    """

    trend_days: int
    drop_pct: int | None
    train_days: list[date]
    eval_days: list[date]
    level: str = "off"  # adds | nothing | reversed | thin | off
    headline: str = ""
    falling: Cohort | None = None  # the judged days' falling snapshots (user-days), and how many stayed
    steady: Cohort | None = None  # the other snapshots of the judged days
    score_auc: float | None = None  # the points alone (mean over the judged days)
    demoted_auc: float | None = None  # every falling user ranked below every other one
    combined_auc: float | None = None  # the points and the flag, weighed on the train days
    flag_weight: float | None = None  # log-odds of staying the flag adds at the same points (< 0: goes with leaving)
    days_better: int = 0  # judged days on which the points with the flag beat the points alone
    train_falling: int = 0

    @property
    def gain(self) -> float | None:
        if self.combined_auc is None or self.score_auc is None:
            return None
        return round(self.combined_auc - self.score_auc, 3)

    @property
    def rule(self) -> str:
        return f"points down at least {self.drop_pct}% on {self.trend_days} days earlier"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def compare_falling(train: list[FlagDay], judged: list[FlagDay], *, horizon: int, trend_days: int,
                    drop_pct: int | None) -> FallingCheck:
    """Does the flag add to the points on the judged days? (see FallingCheck). Refuses a training day
    whose outcome falls after the first judged day: the flag is never weighed on what it is judged on."""
    if judged and any(t.day + timedelta(days=horizon) > min(j.day for j in judged) for t in train):
        raise ValueError("the falling flag is weighed only on days whose outcome was known by the first judged day")
    check = FallingCheck(trend_days=trend_days, drop_pct=drop_pct, train_days=[t.day for t in train],
                         eval_days=[j.day for j in judged])
    if not drop_pct:
        check.headline = "This version has no falling flag (its “points down by” setting is empty)."
        return check
    flagged = np.concatenate([j.falling for j in judged]) if judged else np.zeros(0, dtype=bool)
    stayed = np.concatenate([j.stayed for j in judged]) if judged else np.zeros(0, dtype=bool)
    check.falling = Cohort("falling", int(flagged.sum()), int((flagged & stayed).sum()))
    check.steady = Cohort("not falling", int((~flagged).sum()), int((~flagged & stayed).sum()))
    check.score_auc = _mean(auc(j.points, j.stayed) for j in judged)
    # Every falling user below every other one, the points ordering each group: what a "falling first" list does.
    check.demoted_auc = _mean(auc(j.points + (~j.falling) * (j.points.max(initial=0) + 1), j.stayed) for j in judged)
    check.train_falling = int(sum(t.falling.sum() for t in train))
    y = np.concatenate([t.stayed for t in train]) if train else np.zeros(0, dtype=bool)
    if check.falling.n < FLAG_MIN or check.steady.n < FLAG_MIN or check.train_falling < FLAG_MIN \
            or y.all() or not y.any():
        check.level = "thin"
        check.headline = (f"Too few falling users to judge the flag: {check.falling.n} falling snapshots on the "
                          f"judged days and {check.train_falling} on the days it is weighed on (at least "
                          f"{FLAG_MIN} of each, and both stayers and leavers, are needed).")
        return check

    def features(d: FlagDay) -> np.ndarray:
        return np.column_stack([np.log1p(d.points), d.falling.astype(float)])

    w = nonnegative_logistic(np.vstack([features(t) for t in train]), y, signed=True)
    check.flag_weight = round(float(w[1]), 2)
    combined = [auc(features(j) @ w, j.stayed) for j in judged]
    alone = [auc(j.points, j.stayed) for j in judged]
    check.combined_auc = _mean(combined)
    check.days_better = sum(1 for c, a in zip(combined, alone, strict=True) if None not in (c, a) and c > a)
    shares = (f"{check.falling.share}% of falling users stayed {horizon} days later (95% interval "
              f"{check.falling.interval[0]}–{check.falling.interval[1]}%) against {check.steady.share}% of the "
              f"others ({check.steady.interval[0]}–{check.steady.interval[1]}%)")
    aucs = (f"the points with the flag rank who stays at AUC {check.combined_auc:.3f} against "
            f"{check.score_auc:.3f} for the points alone ({check.gain:+.3f}")
    if check.gain >= FLAG_GAIN and check.flag_weight < 0:
        check.level = "adds"
        check.headline = (f"The falling flag adds to the points: on {len(judged)} days it was never weighed on, "
                          f"{shares}, and {aucs}; better on {check.days_better} of {len(judged)} days).")
    elif check.gain >= FLAG_GAIN:
        check.level = "reversed"
        check.headline = (f"The falling flag tells something, but not decline: at the same points, falling users "
                          f"stayed more than the others; {shares}, and {aucs}).")
    else:
        if check.gain <= -FLAG_GAIN:
            why = "weighed on earlier days, it ranks the judged days worse than the points alone"
        elif check.falling.share < check.steady.share:
            why = "the points already rank falling users low"
        else:
            why = "falling users did not leave more than the others"
        check.level = "nothing"
        check.headline = (f"The falling flag adds nothing that counts beyond the points ({why}): {shares}, and "
                          f"{aucs}, under the {FLAG_GAIN} this page counts as adding).")
    return check


def flag_days(history: History, days: list[date], horizon: int, window: int,
              scores: dict[date, dict[int, tuple[float, str]]], falling: dict[date, set[int]]) -> list[FlagDay]:
    out = []
    for day in days:
        snap = snapshot(history, day, window=window, horizon=horizon)
        ids = history.users[snap.members].tolist()
        by_user, flagged = scores.get(day, {}), falling.get(day, set())
        out.append(FlagDay(day, np.array([by_user.get(u, (0.0, "dormant"))[0] for u in ids], dtype=float),
                           np.array([u in flagged for u in ids], dtype=bool), snap.stayed))
    return out


def falling_check(model: ScoringModel, history: History, horizon: int, train_days: list[date], train_scores,
                  train_falling, days: list[date], scores, falling) -> FallingCheck:
    """The version's stored (or rolled-back) snapshots of `train_days` and `days`, through compare_falling."""
    window = model.window_days
    return compare_falling(flag_days(history, train_days, horizon, window, train_scores, train_falling),
                           flag_days(history, days, horizon, window, scores, falling),
                           horizon=horizon, trend_days=model.trend_days, drop_pct=model.falling_drop_pct)


def default_days(history: History, window: int, horizon: int, count: int = MAX_EVAL_DAYS) -> list[date]:
    return snapshot_days(history, window=window, horizon=horizon)[-count:]


def backtest_horizon(history: History | None, window: int, stored: set[date] | None = None) -> int:
    """The longest horizon with a few observable snapshot days (all stored ones, when `stored` is given)."""
    if history is None:
        return HORIZONS[0]
    for h in reversed(HORIZONS):
        days = default_days(history, window, h)
        if len(days) >= 4 and (stored is None or set(days) <= stored):
            return h
    return HORIZONS[0]


def _thin_backtest(model, horizon, history) -> Backtest:
    ready = readiness(history, [], horizon, window=model.window_days if model else 30)
    return Backtest(model=model, horizon=horizon, days=[], tiers=[], in_order=None,
                    verdict=Verdict("thin", ready.message, []), readiness=ready)


def backtest(model: ScoringModel, *, horizon: int | None = None, days: list[date] | None = None,
             history: History | None = None, train_days: list[date] | None = None) -> Backtest:
    """How well `model` (published or draft) separated stayers from leavers on past days. Stores nothing.

    `train_days` (earlier days, outcome known by the first of `days`): weigh the falling flag on them
    and judge it on `days` (Backtest.falling_check)."""
    history = history or load_history(model.tenant)
    if horizon is None:
        horizon = backtest_horizon(history, model.window_days)
    if history is None:
        return _thin_backtest(model, horizon, history)
    if days is None:
        days = default_days(history, model.window_days, horizon)
    points = dict(model.weights.filter(points__gt=0).values_list("activity_id", "points"))
    account_scores: dict = {}
    falling: dict = {}
    scores = model_snapshots(model, days, account_scores=account_scores, falling=falling)
    bt = judge(model, history, days, horizon, scores, points, falling)
    bt.falling = falling
    bt.accounts = account_days(history, account_history(model.tenant, history), days, model.window_days, horizon,
                               account_scores)
    if train_days:
        train_falling: dict = {}
        train_scores = model_snapshots(model, train_days, falling=train_falling)
        bt.falling_check = falling_check(model, history, horizon, train_days, train_scores, train_falling,
                                         days, scores, falling)
    return bt


def backtest_points(tenant: Tenant, points: dict[int, int], *, settings_from: ScoringModel | None = None,
                    horizon: int | None = None, days: list[date] | None = None, history: History | None = None,
                    train_days: list[date] | None = None, **fields) -> Backtest:
    """Backtest weights that are not a saved version (the survey's proposal, a fit): a draft made and
    scored inside a transaction that is rolled back, so not even the draft remains. `train_days`:
    as backtest()'s, the falling flag weighed on them and judged on `days`."""
    from scoring import services

    history = history or load_history(tenant)
    window = fields.get("window_days") or (settings_from.window_days if settings_from else 30)
    if horizon is None:
        horizon = backtest_horizon(history, window)
    if history is None or not points:
        return _thin_backtest(None, horizon, history)
    if days is None:
        days = default_days(history, window, horizon)
    result = None
    try:
        with transaction.atomic():
            model = services.scoring_model_create_draft(tenant=tenant, source=settings_from)
            model = services.scoring_model_update(model=model, points=points, **fields)
            scores = {}
            for day in days:
                engine.compute_day(model, day)
                scores[day] = _read_scores(model, day)
            falling = _read_falling(model, days)
            result = judge(model, history, days, horizon, scores, points, falling)
            result.falling = falling
            result.accounts = account_days(history, account_history(tenant, history), days, model.window_days,
                                           horizon, _account_scores(model, days))
            if train_days:
                train_scores = {}
                for day in train_days:
                    engine.compute_day(model, day)
                    train_scores[day] = _read_scores(model, day)
                result.falling_check = falling_check(model, history, horizon, train_days, train_scores,
                                                     _read_falling(model, train_days), days, scores, falling)
            raise _Discard
    except _Discard:
        pass
    return result


# --- Fitting weights from outcomes -----------------------------------------------------------------------

CAPS = (1, 2, 3, 5, None)
HALF_LIVES = (None, 7, 14, 30)
MAX_POINTS = 100
MAX_FEATURES = 40
MIN_USERS_PER_ACTIVITY = 5
FOLDS = 3


@dataclass
class Candidate:
    daily_cap: int | None
    half_life_days: int | None
    validation_auc: float | None


@dataclass
class Fit:
    horizon: int
    window: int
    daily_cap: int | None
    half_life_days: int | None
    points: dict[int, int]  # activity id -> points
    train_days: list[date]
    eval_days: list[date]
    eval_auc: float | None
    eval_auc_by_day: list[tuple[date, float | None]]
    train_auc: float | None
    candidates: list[Candidate]
    readiness: Readiness
    activities: dict[int, Activity] = field(default_factory=dict)
    subject: str = "users"
    user_fit_auc: float | None = None  # accounts: the user-level fit judged on the same account days
    log_form: Candidate | None = None  # points x log(1 + count) a day, cross-validated like the caps

    @property
    def best_candidate(self) -> Candidate | None:
        return next((c for c in self.candidates if (c.daily_cap, c.half_life_days) ==
                     (self.daily_cap, self.half_life_days)), None)

    @property
    def log_form_better(self) -> bool | None:
        """Does the diminishing-returns form beat the chosen cap by more than 0.005 of cross-validated AUC?"""
        best = self.best_candidate
        if self.log_form is None or best is None or None in (self.log_form.validation_auc, best.validation_auc):
            return None
        return self.log_form.validation_auc > best.validation_auc + 0.005

    @property
    def ok(self) -> bool:
        return self.readiness.ok and bool(self.points)

    def ranked(self) -> list[tuple[Activity, int]]:
        return sorted(((self.activities[a], p) for a, p in self.points.items() if a in self.activities),
                      key=lambda ap: (-ap[1], ap[0].name))


def _stack(history: History, snaps: list[Snapshot], *, window: int, cap, half_life,
           columns: np.ndarray, log: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (snapshot day, user) of the features, their labels and their users."""
    xs, ys, us = [], [], []
    for snap in snaps:
        features = window_features(history, snap.offset, window=window, cap=cap, half_life=half_life,
                                   columns=columns, log=log)
        xs.append(snap.rows(features).astype(np.float32))
        ys.append(snap.stayed)
        us.append(snap.members)
    if not xs:
        return np.zeros((0, len(columns)), dtype=np.float32), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(us)


def nonnegative_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, signed: bool = False) -> np.ndarray:
    """Weights >= 0 of a logistic regression of y on x (scipy's bounded L-BFGS-B).

    Points can't be negative in a scoring model, so an activity that goes with
    leaving gets 0 rather than a negative weight; features are scaled by their
    spread so the penalty treats every activity alike. `signed=True` lifts the
    bound (the falling check weighs a flag that may count against staying).
    """
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=float)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = x / scale
    sign = np.where(y, 1.0, -1.0)
    k = z.shape[1]

    def loss(theta):
        w, b = theta[:k], theta[k]
        margin = sign * (z @ w + b)
        # log(1 + exp(-m)) computed stably; its derivative is -sigmoid(-m).
        value = np.logaddexp(0, -margin).mean() + l2 * (w @ w)
        g = -sign * (1 / (1 + np.exp(margin)))
        grad = np.concatenate([z.T @ g / len(y) + 2 * l2 * w, [g.mean()]])
        return value, grad

    theta0 = np.zeros(k + 1)
    bounds = [(None if signed else 0, None)] * k + [(None, None)]
    # One BLAS thread: L-BFGS-B's small matrix products were 10x slower threaded on this 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:k] / scale


def _to_points(weights: np.ndarray) -> np.ndarray:
    top = weights.max() if len(weights) else 0
    if top <= 0:
        return np.zeros_like(weights, dtype=int)
    return np.floor(weights / top * MAX_POINTS + 0.5).astype(int)


def split_days(days: list[date], horizon: int) -> tuple[list[date], list[date]]:
    """Later days to judge on (up to MAX_EVAL_DAYS) and earlier days to fit on, with an embargo:
    a training day's outcome (D + h) must be known by the first judged day, so nothing the fit reads
    — features or labels — comes from the judged period. Prefers more judged days while at least
    MIN_TRAIN_DAYS remain to fit on; ([], []) when the history is too short."""
    for n_judged in range(min(MAX_EVAL_DAYS, len(days) - 1), 0, -1):
        judged = days[-n_judged:]
        train = [d for d in days if d + timedelta(days=horizon) <= judged[0]]
        if len(train) >= MIN_TRAIN_DAYS:
            return train, judged
    return [], []


def _choose_columns(history: History, snaps: list[Snapshot], window: int) -> np.ndarray:
    """The activities the fit weighs: done by at least MIN_USERS_PER_ACTIVITY users in the training
    windows, the MAX_FEATURES most widespread of them (junk event names stay out)."""
    users = np.zeros(len(history.activities))
    for snap in snaps:
        used = snap.rows(window_features(history, snap.offset, window=window, cap=1)) > 0
        users += used.sum(axis=0)
    order = np.argsort(-users, kind="stable")
    keep = [i for i in order[:MAX_FEATURES] if users[i] >= MIN_USERS_PER_ACTIVITY]
    return np.array(sorted(keep), dtype=np.int64)


def _grouped_cv_auc(x: np.ndarray, y: np.ndarray, users: np.ndarray) -> float | None:
    """AUC of a fit judged on users it was not fitted on (3 folds by user), inside the training days."""
    folds = users % FOLDS
    values = []
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        if y[train].all() or not y[train].any():
            continue
        w = nonnegative_logistic(x[train], y[train])
        value = auc(x[test] @ w, y[test])
        if value is not None:
            values.append(value)
    return round(float(np.mean(values)), 3) if values else None


def fit_weights(tenant: Tenant, *, horizon: int | None = None, window: int = 30,
                history: History | None = None, caps=CAPS, half_lives=HALF_LIVES, subject: str = "users",
                accounts: AccountHistory | None = None) -> Fit:
    """Fit points per activity, cap and half-life on earlier snapshot days; report the AUC on later ones.

    subject="accounts" fits the account-level counterpart: one row per (day, account) whose features
    are the sum of its members' (membership as of the day, as a "sum" account roll-up adds their
    points) and whose label is AccountSnapshot's "stayed" (a dated churn counts as leaving).
    """
    history = history or load_history(tenant)
    if horizon is None:
        horizon = best_horizon(history, window)
    empty = Fit(horizon, window, None, None, {}, [], [], None, [], None, [],
                readiness(history, [], horizon, window=window, fit=True, subject=subject), subject=subject)
    if history is None:
        return empty
    days = snapshot_days(history, window=window, horizon=horizon)
    train_days, eval_days = split_days(days, horizon)
    if subject == "accounts":
        accounts = accounts or account_history(tenant, history)
        snaps = {d: account_snapshot(history, accounts, d, window=window, horizon=horizon)
                 for d in train_days + eval_days}
    else:
        snaps = {d: snapshot(history, d, window=window, horizon=horizon) for d in train_days + eval_days}
    ready = readiness(history, list(snaps.values()), horizon, window=window, fit=True, subject=subject)
    empty.readiness = ready
    if not ready.ok or not train_days:
        return empty
    train = [snaps[d] for d in train_days]
    held_out = [snaps[d] for d in eval_days]
    columns = _choose_columns(history, train, window)
    if not len(columns):
        return empty
    # Cap and half-life are chosen by cross-validation over users within the training days: out of time
    # too, since the judged days come after the embargo.
    candidates = []
    for cap in caps:
        for half_life in half_lives:
            x, y, users = _stack(history, train, window=window, cap=cap, half_life=half_life, columns=columns)
            if len(y) == 0 or y.all() or not y.any():
                continue
            candidates.append(Candidate(cap, half_life, _grouped_cv_auc(x, y, users)))
    if not candidates:
        return empty
    best = max(candidates, key=lambda c: (c.validation_auc or 0, -(c.daily_cap or 1000), -(c.half_life_days or 0)))
    # Would points x log(1 + count) a day fit better than the best cap? Judged the same way, at the chosen
    # half-life; reported, not used (the engine's form is a cap).
    x, y, users = _stack(history, train, window=window, cap=None, half_life=best.half_life_days, columns=columns,
                         log=True)
    log_form = Candidate(None, best.half_life_days, _grouped_cv_auc(x, y, users))
    kw = {"window": window, "cap": best.daily_cap, "half_life": best.half_life_days, "columns": columns}
    x, y, _ = _stack(history, train, **kw)
    points = _to_points(nonnegative_logistic(x, y))
    by_day = day_aucs(history, held_out, points, kw)
    values = [v for _, v in by_day if v is not None]
    train_values = [v for _, v in day_aucs(history, train, points, kw) if v is not None]
    activity_ids = [history.activities[i] for i in columns]
    fitted = {activity_ids[i]: int(p) for i, p in enumerate(points) if p > 0}
    return Fit(
        horizon=horizon, window=window, daily_cap=best.daily_cap, half_life_days=best.half_life_days,
        points=fitted, train_days=train_days, eval_days=eval_days,
        eval_auc=round(float(np.mean(values)), 3) if values else None, eval_auc_by_day=by_day,
        train_auc=round(float(np.mean(train_values)), 3) if train_values else None, candidates=candidates,
        readiness=ready, log_form=log_form,
        activities={a.pk: a for a in Activity.objects.for_tenant(tenant).filter(pk__in=history.activities)},
        subject=subject,
    )


def day_aucs(history: History, snaps: list[Snapshot], points: np.ndarray, kw: dict) -> list[tuple[date, float | None]]:
    """The AUC on each snapshot of a points vector over `kw["columns"]` (window_features' settings)."""
    out = []
    for snap in snaps:
        value = auc(snap.rows(window_features(history, snap.offset, **kw)) @ points, snap.stayed)
        out.append((snap.day, round(value, 3) if value is not None else None))
    return out


def points_on_accounts(history: History, accounts: AccountHistory, fit: Fit, days: list[date]) -> float | None:
    """Mean AUC of `fit`'s points and form (cap, half-life) on the account snapshots of `days`: how
    the user-level fit ranks accounts, next to the account-level fit judged on the same days."""
    if not fit.points or not days:
        return None
    index = {a: i for i, a in enumerate(history.activities)}
    ids = [a for a in fit.points if a in index]
    kw = {"window": fit.window, "cap": fit.daily_cap, "half_life": fit.half_life_days,
          "columns": np.array([index[a] for a in ids], dtype=np.int64)}
    snaps = [account_snapshot(history, accounts, d, window=fit.window, horizon=fit.horizon) for d in days]
    values = [v for _, v in day_aucs(history, snaps, np.array([fit.points[a] for a in ids], dtype=float), kw)
              if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def blend(fit_points: dict[int, int], survey_points: dict[int, int], survey_share: float) -> dict[int, int]:
    """Points that mix the survey's view and the data's: each side scaled to a top of 100 first."""
    def scaled(points):
        top = max(points.values(), default=0)
        return {a: p * MAX_POINTS / top for a, p in points.items()} if top else {}

    share = min(1.0, max(0.0, survey_share))
    fit_s, survey_s = scaled(fit_points), scaled(survey_points)
    keys = set(fit_s) | set(survey_s)
    mixed = {a: (1 - share) * fit_s.get(a, 0) + share * survey_s.get(a, 0) for a in keys}
    return {a: int(math.floor(v + 0.5)) for a, v in mixed.items() if math.floor(v + 0.5) > 0}


# --- The report the Score truth page shows --------------------------------------------------------------


@dataclass
class SurveyView:
    """The latest survey with ratings: its proposal's points and each department's mean rating."""

    survey: object
    points: dict[int, int]
    ratings: dict[int, float]  # activity id -> mean importance (0-10)
    by_department: dict[int, dict[str, float]]  # activity id -> department -> mean
    departments: list[str]


@dataclass
class Disagreement:
    department: str
    text: str


@dataclass
class TruthReport:
    horizon: int
    readiness: Readiness
    published: Backtest | None
    survey: SurveyView | None
    survey_backtest: Backtest | None
    fit: Fit
    fit_backtest: Backtest | None
    retention: RetentionByActivity | None
    disagreements: list[Disagreement]
    account_retention: RetentionByActivity | None = None
    account_fit: Fit | None = None

    @property
    def columns(self) -> list[tuple[str, Backtest]]:
        out = []
        if self.published is not None:
            out.append((f"Published {self.published.model}", self.published))
        if self.survey_backtest is not None:
            out.append(("Survey proposal", self.survey_backtest))
        if self.fit_backtest is not None:
            out.append(("Fitted on outcomes", self.fit_backtest))
        return out


def latest_survey_view(tenant: Tenant) -> SurveyView | None:
    from surveys.models import Survey
    from surveys.selectors import activity_stats, departments_answered
    from surveys.services import survey_propose_weights

    for survey in Survey.objects.for_tenant(tenant).order_by("-created_at")[:5]:
        stats = [s for s in activity_stats(survey=survey) if s.mean is not None]
        if not stats:
            continue
        points = {w.activity.pk: w.points for w in survey_propose_weights(survey=survey) if w.points > 0}
        return SurveyView(
            survey=survey, points=points, ratings={s.activity.pk: s.mean for s in stats},
            by_department={s.activity.pk: {d: c.mean for d, c in s.by_department.items() if c.mean is not None}
                           for s in stats},
            departments=departments_answered(survey=survey),
        )
    return None


def _disagreements(fit: Fit, survey: SurveyView | None, retention: RetentionByActivity | None) -> list[Disagreement]:
    """Sentences that put a department's rating next to what the history says (at most one per department)."""
    from accounts.models import Department

    if survey is None or not fit.ok:
        return []
    labels = dict(Department.choices)
    rows = {r.activity.pk: r for r in (retention.rows if retention else [])}
    top = max(fit.points.values(), default=0) or 1
    out = []
    for department in survey.departments:
        rated = [(a, by[department]) for a, by in survey.by_department.items() if department in by]
        if not rated:
            continue
        # The activity this department rates highest that the data gives little; else the reverse.
        over = max(((a, r) for a, r in rated if fit.points.get(a, 0) <= 0.2 * top), key=lambda ar: ar[1],
                   default=None)
        name = labels.get(department, department)
        if over and over[1] >= 6:
            activity = fit.activities.get(over[0])
            row = rows.get(over[0])
            if activity is None:
                continue
            text = f"{name} rated {activity} {over[1]:.0f}/10; the data gives it {fit.points.get(over[0], 0)} points"
            if row is not None and row.heavy is not None and not row.heavy.thin and row.heavy.share is not None \
                    and row.did_not.share is not None and row.heavy.share < row.did_not.share:
                text += (f": users who did it {HEAVY_PER_DAY}+ times a day stayed less ({row.heavy.share}% "
                         f"against {row.did_not.share}% of those who did not do it at all)")
            elif row is not None and row.did.share is not None and row.did_not.share is not None \
                    and row.did.share > row.did_not.share:
                # Stayed more, yet no weight: what it says about staying is said by activities its users
                # also do (a fit with one weight per activity credits the stronger one).
                text += (f": {row.did.share}% of users who did it were still active {retention.horizon} days later "
                         f"against {row.did_not.share}% of those who did not, but the other activities of the "
                         "same users already tell that")
            elif row is not None and row.did.share is not None and row.did_not.share is not None:
                text += (f": {row.did.share}% of users who did it were still active {retention.horizon} days later, "
                         f"against {row.did_not.share}% of those who did not")
            out.append(Disagreement(department, text + "."))
            continue
        under = min(((a, r) for a, r in rated if fit.points.get(a, 0) >= 0.6 * top), key=lambda ar: ar[1],
                    default=None)
        if under and under[1] <= 5:
            activity = fit.activities.get(under[0])
            if activity is not None:
                out.append(Disagreement(department, f"{name} rated {activity} {under[1]:.0f}/10; the data gives "
                                                    f"it {fit.points[under[0]]} of {MAX_POINTS} points: it goes "
                                                    "with staying."))
    return out


def score_truth(tenant: Tenant, *, horizon: int | None = None) -> TruthReport:
    """Published version, survey proposal and fitted weights judged on the same past days."""
    from scoring.selectors import published_model

    history = load_history(tenant)
    published = published_model(tenant)
    window = published.window_days if published else 30
    if horizon is None:
        horizon = best_horizon(history, window)
    fit = fit_weights(tenant, horizon=horizon, window=window, history=history)
    survey = latest_survey_view(tenant)
    report = TruthReport(horizon=horizon, readiness=fit.readiness, published=None, survey=survey,
                         survey_backtest=None, fit=fit, fit_backtest=None, retention=None, disagreements=[])
    accounts = account_history(tenant, history) if history is not None else None
    report.account_fit = fit_weights(tenant, horizon=horizon, window=window, history=history, subject="accounts",
                                     accounts=accounts)
    if report.account_fit.ok and fit.ok:
        report.account_fit.user_fit_auc = points_on_accounts(history, accounts, fit, report.account_fit.eval_days)
    if history is None or not fit.readiness.ok:
        return report
    # Everything is judged on the fit's held-out days, so no column has seen them; the falling flag
    # of the published version and of the fit's draft is weighed on the fit's latest training days.
    days = fit.eval_days or default_days(history, window, horizon)
    flag_train = fit.train_days[-MAX_FLAG_TRAIN_DAYS:] if fit.eval_days else None
    if published is not None:
        report.published = backtest(published, horizon=horizon, days=days, history=history, train_days=flag_train)
    if survey is not None and survey.points:
        report.survey_backtest = backtest_points(tenant, survey.points, settings_from=published, horizon=horizon,
                                                 days=days, history=history)
    if fit.ok:
        report.fit_backtest = backtest_points(tenant, fit.points, settings_from=published, horizon=horizon, days=days,
                                              history=history, window_days=window, daily_cap=fit.daily_cap,
                                              half_life_days=fit.half_life_days, train_days=flag_train)
    report.retention = retention_by_activity(tenant, day=days[-1], horizon=horizon, window=window)
    report.account_retention = retention_by_activity(tenant, day=days[-1], horizon=horizon, window=window,
                                                     subject="accounts")
    report.disagreements = _disagreements(fit, survey, report.retention)
    for column in (report.published, report.survey_backtest, report.fit_backtest):
        if column is not None:
            column.drop_rows()
    return report


def published_backtest(tenant: Tenant) -> Backtest | None:
    """The published version's own backtest over several past days, on days it has stored snapshots
    for when it can (reading them is cheap; computing them is not)."""
    from scoring.selectors import published_model

    model = published_model(tenant)
    if model is None:
        return None
    history = load_history(tenant)
    stored = set(UserScore.objects.for_tenant(tenant).filter(model=model).values_list("day", flat=True).distinct())
    horizon = backtest_horizon(history, model.window_days, stored)
    bt = backtest(model, horizon=horizon, history=history)
    bt.drop_rows()
    return bt
