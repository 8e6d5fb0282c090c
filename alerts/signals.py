"""Evaluate the alert rules once a scoring run has succeeded (on commit, in a task)."""

from django.db import transaction


def on_run_succeeded(sender, run_id: int, **kwargs) -> None:
    from .tasks import evaluate_run

    # robust: a broker outage must not fail the scoring transaction that just succeeded.
    transaction.on_commit(lambda: evaluate_run.delay(run_id), robust=True)
