"""The dashboard's risers and fallers read the change the engine stored with each snapshot; on an
engine-scored world they equal the join of the day with the day before it (the previous query, the oracle)."""

from datetime import timedelta

import pytest

from insights.queries import movers as movers_module
from scoring.models import ProductScore
from scoring.selectors import published_model

pytestmark = pytest.mark.django_db


def joined(monkeypatch, tenant, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(movers_module, "_stored_change", lambda *args: False)
        return movers_module.movers(tenant, **kwargs)


def names(result):
    return {k: [(m.subject_id, m.change, m.tier, m.tier_before) for m in v] for k, v in result.items()}


@pytest.mark.parametrize("subject", ["users", "accounts"])
@pytest.mark.parametrize("days_back", [7, 30])
def test_stored_changes_give_the_joined_movers(scored_tenant, monkeypatch, subject, days_back):
    model = published_model(scored_tenant)
    day = ProductScore.objects.for_tenant(scored_tenant).filter(model=model).latest("day").day
    assert movers_module._stored_change(scored_tenant, subject, model, day, days_back)
    stored = movers_module.movers(scored_tenant, subject=subject, day=day, model=model, days_back=days_back)
    assert stored["risers"] and stored["fallers"]  # the demo world has both
    assert names(stored) == names(joined(monkeypatch, scored_tenant, subject=subject, day=day, model=model,
                                         days_back=days_back))
    # Accounts at risk are never listed as risers, on either path.
    if subject == "accounts":
        hidden = {stored["risers"][0].subject_id}
        kept = movers_module.movers(scored_tenant, subject=subject, day=day, model=model, days_back=days_back,
                                    not_rising=hidden)
        assert hidden.isdisjoint(m.subject_id for m in kept["risers"])
        assert names(kept) == names(joined(monkeypatch, scored_tenant, subject=subject, day=day, model=model,
                                           days_back=days_back, not_rising=hidden))


def test_other_spans_and_days_without_stored_changes_use_the_join(scored_tenant):
    model = published_model(scored_tenant)
    day = ProductScore.objects.for_tenant(scored_tenant).filter(model=model).latest("day").day
    assert not movers_module._stored_change(scored_tenant, "users", model, day, 14)  # no change_14 column
    assert not movers_module._stored_change(scored_tenant, "users", model, day + timedelta(days=1), 7)  # no rows
