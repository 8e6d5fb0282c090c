"""Store the Outcomes headline once a scoring run has succeeded (on commit, in a task)."""

from django.db import transaction


def on_run_succeeded(sender, run_id: int, **kwargs) -> None:
    from .tasks import refresh_published_verdict

    # robust: a broker outage must not fail the scoring transaction that just succeeded; the page
    # then enqueues the verdict itself when it finds none.
    transaction.on_commit(lambda: refresh_published_verdict.delay(run_id=run_id), robust=True)
