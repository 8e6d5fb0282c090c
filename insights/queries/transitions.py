# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Tier transitions: how many subjects moved from each tier on one day to each tier on another."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all, sql_date
from scoring.models import ScoringModel
from scoring.selectors import TIER_RANK, published_model

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
    """How many subjects moved from each tier on `day_from` to each tier on `day_to` (published version)."""
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
    for a, b, n in fetch_all(sql, params):
        result.matrix.setdefault(a, {})[b] = int(n)
    result.rows = [t for t in TIERS if t in result.matrix] + ([NOT_SEEN] if NOT_SEEN in result.matrix else [])
    return result
