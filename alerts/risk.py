"""The ONE adapter between alerts and the at-risk rule.

Today the rule is the dashboard's (`insights.queries.movers.at_risk_accounts`:
fell a tier, or lost more than AT_RISK_DROP_SHARE of its points in 14 days).
When the richer risk module lands (insights/queries/risk.py, with its reasons
and per-workspace settings) only this function changes.
"""

from __future__ import annotations

from datetime import date

from accounts.models import Tenant
from scoring.models import ScoringModel

# The dashboard lists 20; an alert must see every account at risk.
ALL = 100_000


def at_risk_reasons(tenant: Tenant, day: date, model: ScoringModel) -> dict[int, str]:
    """{account id: the reason in words} for every account at risk on `day`."""
    from insights.queries.movers import at_risk_accounts

    result = at_risk_accounts(tenant, day=day, model=model, limit=ALL)
    days = (day - result.compared_with).days if result.compared_with else 0
    reasons = {}
    for mover in result.accounts:
        if mover.tier_before and mover.tier != mover.tier_before:
            reasons[mover.subject_id] = f"fell from {mover.tier_before} to {mover.tier} in {days} days"
        else:
            share = mover.change_share
            reasons[mover.subject_id] = f"points fell {abs(share or 0):.0f}% in {days} days"
    return reasons
