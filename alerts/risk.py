"""The ONE adapter between alerts and the at-risk rule (insights/queries/risk.py).

The rule and its thresholds are the workspace's (Settings → Accounts at risk, docs/insights.md);
an alert says the same reasons the dashboard shows next to the account.
"""

from __future__ import annotations

from datetime import date

from accounts.models import Tenant
from scoring.models import ScoringModel


def at_risk_reasons(tenant: Tenant, day: date, model: ScoringModel) -> dict[int, str]:
    """{account id: its reasons in words} for every account at risk on `day`."""
    from insights.queries.risk import at_risk

    risk = at_risk(tenant, day=day, model=model, subject="accounts")
    return {item.subject_id: "; ".join(r.text for r in item.reasons) for item in risk.items}
