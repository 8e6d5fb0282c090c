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


def at_risk_rows(result):
    return [(i.subject_id, i.points, i.tier, sorted(str(r) for r in i.reasons)) for i in result.items]


def test_account_seats_from_stored_last_seen_give_the_rollups_answer(scored_tenant, monkeypatch):
    """Accounts at risk count live and silent seats from the members' stored last day seen; on an
    engine-scored world that is the rollup's answer (the previous query, the oracle), narrowed or not."""
    from insights.queries import risk

    model = published_model(scored_tenant)
    day = ProductScore.objects.for_tenant(scored_tenant).filter(model=model).latest("day").day
    assert risk._stored_last_seen(scored_tenant.pk, model, day)
    settings = risk.RiskSettings(**{**vars(risk.RiskSettings.of(scored_tenant)), "silent_share": 1})

    def both(**kwargs):
        stored = risk._at_risk(scored_tenant, day=day, model=model, subject="accounts", settings=settings,
                               owner_id=None, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(risk, "_stored_last_seen", lambda *args: False)
            rollup = risk._at_risk(scored_tenant, day=day, model=model, subject="accounts", settings=settings,
                                   owner_id=None, **kwargs)
        return at_risk_rows(stored), at_risk_rows(rollup)

    stored, rollup = both(ids=None)
    assert stored == rollup
    assert any("seat" in reason for *_, reasons in stored for reason in reasons)  # the seats rule fired
    # A detail page's narrowed read (`ids`) stays on the rollup and agrees with the stored whole.
    some = [row[0] for row in stored[:3]]
    assert both(ids=some)[1] == [row for row in stored if row[0] in some]
    assert risk._seat_sql(scored_tenant.pk, day, day, model, "", [], some)[1][-3:] == some  # narrowed by id
