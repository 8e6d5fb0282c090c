"""Sample scoring objects of a tenant for the URL sweep (tests/isolation_ids.py)."""

from datetime import date


def scoring_isolation_ids(tenant) -> dict:
    from events.models import CustomerAccount, EndUser
    from scoring import services
    from scoring.models import RunKind

    model = services.scoring_model_create_draft(tenant=tenant)
    run = services.run_create(
        model=model, kind=RunKind.RECOMPUTE, first_day=date(2026, 1, 1), last_day=date(2026, 1, 1)
    )
    account = CustomerAccount.objects.create(
        tenant=tenant, group_id="scoring-sweep-account", name="Scoring sweep account"
    )
    end_user = EndUser.objects.create(tenant=tenant, user_id="scoring-sweep-user", account=account)
    return {
        "model_id": model.public_id,
        "run_id": run.public_id,
        "account_id": account.public_id,
        "end_user_id": end_user.public_id,
    }
