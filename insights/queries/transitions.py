# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Tier transitions: how many subjects moved from each tier on one day to each tier on another."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all, sql_date
from events.models import CustomerAccount, EndUser
from scoring.models import ScoringModel
from scoring.selectors import TIER_RANK, published_model

from ..models import AggregatedDay, TransitionCount
from .common import SUBJECTS, TIERS


@dataclass
class Transitions:
    subject: str
    day_from: date | None
    day_to: date | None
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(cols.values()) for cols in self.matrix.values())

    def table(self) -> list[dict[str, Any]]:
        out = []
        for tier in self.rows:
            cells = [self.matrix.get(tier, {}).get(t, 0) for t in TIERS]
            out.append({"tier": tier, "cells": cells, "total": sum(cells)})
        return out

    @property
    def moved_up(self) -> int:
        return self._moved(1)

    @property
    def moved_down(self) -> int:
        return self._moved(-1)

    def _moved(self, sign: int) -> int:
        total = 0
        for a, cols in self.matrix.items():
            for b, n in cols.items():
                if a in TIER_RANK and b in TIER_RANK and (TIER_RANK[b] - TIER_RANK[a]) * sign > 0:
                    total += n
        return total


NOT_SEEN = "not seen yet"


def tier_transitions(
    tenant: Tenant, *, day_from: date, day_to: date, subject: str = "users", model: ScoringModel | None = None
) -> Transitions:
    """How many subjects moved from each tier on `day_from` to each tier on `day_to` (published version).

    The page's default pair (the latest day and the scored day 30 days before it) is read from
    the aggregates the scoring job wrote; any other pair is computed from the two days' snapshots.
    """
    model = model or published_model(tenant)
    result = Transitions(subject=subject, day_from=day_from, day_to=day_to)
    if model is None:
        return result
    written = AggregatedDay.objects.for_tenant(tenant).filter(model=model, day=day_to, transitions_from=day_from)
    if not written.exists():
        return tier_transitions_live(tenant, day_from=day_from, day_to=day_to, subject=subject, model=model)
    found = TransitionCount.objects.for_tenant(tenant).filter(model=model, day=day_to, day_from=day_from,
                                                              subject=subject)
    return _matrix(result, found.values_list("tier_from", "tier_to", "subjects"))


def tier_transitions_live(
    tenant: Tenant, *, day_from: date, day_to: date, subject: str = "users", model: ScoringModel | None = None
) -> Transitions:
    """tier_transitions from the two days' snapshots (the aggregates' oracle, and any other pair of days)."""
    model = model or published_model(tenant)
    result = Transitions(subject=subject, day_from=day_from, day_to=day_to)
    if model is None:
        return result
    table, column, _ = SUBJECTS[subject]
    from_scope, from_params = tenant_sql(tenant, "a")
    to_scope, to_params = tenant_sql(tenant, "b")
    sql = f"""SELECT a.tier, b.tier, COUNT(*) FROM {table} a
        JOIN {table} b ON b.{column} = a.{column} AND b.model_id = a.model_id AND b.day = %s
        WHERE {from_scope} AND a.model_id = %s AND a.day = %s GROUP BY a.tier, b.tier
    UNION ALL
    SELECT '{NOT_SEEN}', b.tier, COUNT(*) FROM {table} b
        WHERE {to_scope} AND b.model_id = %s AND b.day = %s AND NOT EXISTS (
            SELECT 1 FROM {table} a WHERE a.{column} = b.{column} AND a.model_id = b.model_id AND a.day = %s)
        GROUP BY b.tier"""
    params = [sql_date(day_to), *from_params, model.pk, sql_date(day_from),
              *to_params, model.pk, sql_date(day_to), sql_date(day_from)]
    return _matrix(result, fetch_all(sql, params))


def _matrix(result: Transitions, counts) -> Transitions:
    for a, b, n in counts:
        result.matrix.setdefault(a, {})[b] = int(n)
    result.rows = [t for t in TIERS if t in result.matrix] + ([NOT_SEEN] if NOT_SEEN in result.matrix else [])
    return result


@dataclass
class Mover:
    """One subject behind a cell of the matrix: its tier and points on both days."""

    subject: Any  # an EndUser or a CustomerAccount
    tier_from: str
    tier_to: str
    points_from: float | None
    points_to: float


@dataclass
class CellMembers:
    subject: str
    day_from: date
    day_to: date
    tier_from: str
    tier_to: str
    total: int
    rows: list[Mover]

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


def transition_members(
    tenant: Tenant, *, day_from: date, day_to: date, tier_from: str, tier_to: str, subject: str = "users",
    model: ScoringModel | None = None, limit: int | None = None,
) -> CellMembers:
    """Who moved from `tier_from` on `day_from` to `tier_to` on `day_to` (a cell of `tier_transitions`),
    highest points first. `tier_from` NOT_SEEN: scored on `day_to` with no snapshot on `day_from`.

    One statement for the ids, the points and the cell's total (a window count, so a page can show the
    first `limit` of many), then one ORM query for the subjects themselves.
    """
    model = model or published_model(tenant)
    result = CellMembers(subject=subject, day_from=day_from, day_to=day_to, tier_from=tier_from, tier_to=tier_to,
                         total=0, rows=[])
    if model is None:
        return result
    table, column, _ = SUBJECTS[subject]
    scope, scope_params = tenant_sql(tenant, "b")
    moved = "a.id IS NULL" if tier_from == NOT_SEEN else "a.tier = %s"
    sql = f"""SELECT b.{column}, a.points, b.points, COUNT(*) OVER () FROM {table} b
        LEFT JOIN {table} a ON a.{column} = b.{column} AND a.model_id = b.model_id AND a.tenant_id = b.tenant_id
            AND a.day = %s
        WHERE {scope} AND b.model_id = %s AND b.day = %s AND b.tier = %s AND {moved}
        ORDER BY b.points DESC, b.{column}""" + (" LIMIT %s" if limit else "")
    params = [sql_date(day_from), *scope_params, model.pk, sql_date(day_to), tier_to,
              *([] if tier_from == NOT_SEEN else [tier_from]), *([limit] if limit else [])]
    found = fetch_all(sql, params)
    if not found:
        return result
    result.total = int(found[0][3])
    kind = EndUser if subject == "users" else CustomerAccount
    query = kind.objects.for_tenant(tenant).filter(pk__in=[r[0] for r in found])
    subjects = {s.pk: s for s in (query.select_related("account") if subject == "users" else query)}
    result.rows = [Mover(subject=subjects[pk], tier_from=tier_from, tier_to=tier_to,
                         points_from=None if before is None else float(before), points_to=float(after))
                   for pk, before, after, _n in found if pk in subjects]
    return result
