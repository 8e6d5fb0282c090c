"""The Outcomes headline is stored after scoring runs and read by the page (insights/verdicts.py)."""

from datetime import timedelta

import pytest
from django.core.cache import cache

from insights import tasks, truth, verdicts
from insights.models import PublishedVerdict
from scoring import services as scoring_services
from scoring.models import RunKind

from .test_truth import planted, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(settings):
    """The embedded default: tasks run in this process (PG runs have a broker: nothing may wait there)."""
    from engagement_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager = previous


def publish(tenant, django_capture_on_commit_callbacks, seed=3):
    """A published version over a planted history, its backfill (today) run as the worker would."""
    _, acts, _ = world(tenant, planted(seed=seed, users=80), history_days=150)
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=draft, points={acts["Exported report"].pk: 50,
                                                               acts["Logged in"].pk: 1})
    with django_capture_on_commit_callbacks(execute=False):  # the backfill's enqueue: run below instead
        run = scoring_services.scoring_model_publish(model=draft, backfill_days=1)
    run_succeeded(run, django_capture_on_commit_callbacks)
    return draft


def run_succeeded(run, django_capture_on_commit_callbacks):
    # execute=True: the run's on_commit signal, and the verdict task it enqueues (eager), run here.
    with django_capture_on_commit_callbacks(execute=True):
        run = scoring_services.run_in_foreground(run)
    assert run.status == "succeeded"
    return run


def mark(model, headline):
    """Change the stored row the way only the page's reading of it would show."""
    row = PublishedVerdict.objects.unscoped().get(model=model)
    row.payload["verdict"]["headline"] = headline
    row.save(update_fields=["payload"])
    return row


def outcomes_page(client, tenant):
    return client.get(f"/t/{tenant.slug}/insights/outcomes/").content.decode()


def test_a_succeeded_run_stores_the_verdict_the_page_shows(client, tenant, owner, eager,
                                                           django_capture_on_commit_callbacks,
                                                           django_assert_max_num_queries):
    model = publish(tenant, django_capture_on_commit_callbacks)

    row = PublishedVerdict.objects.for_tenant(tenant).get(model=model)
    computed = truth.published_backtest(tenant)
    assert row.as_of == tenant.today()
    assert row.payload == verdicts.payload(computed)
    assert len(row.payload["days"]) == len(computed.days) > 0
    client.force_login(owner)
    page = outcomes_page(client, tenant)
    assert computed.verdict.headline in page
    assert f"Judged on the users of {len(computed.days)} past days" in page

    # The page reads the row: what is stored is what it shows, in a bounded number of queries.
    mark(model, "Stored headline, not computed")
    with django_assert_max_num_queries(16):
        page = outcomes_page(client, tenant)
    assert "Stored headline, not computed" in page and computed.verdict.headline not in page


def test_once_a_day_unless_past_days_were_recomputed(client, tenant, owner, eager,
                                                     django_capture_on_commit_callbacks):
    model = publish(tenant, django_capture_on_commit_callbacks)
    today = tenant.today()

    # The periodic refresh of today, again later the same day: the verdict of today stays.
    mark(model, "Kept from this morning")
    refresh = scoring_services.run_create(model=model, kind=RunKind.REFRESH, first_day=today, last_day=today)
    run_succeeded(refresh, django_capture_on_commit_callbacks)
    assert PublishedVerdict.objects.unscoped().get(model=model).payload["verdict"]["headline"] == \
        "Kept from this morning"

    # A recompute of past days always refreshes it.
    with django_capture_on_commit_callbacks(execute=False):
        recompute = scoring_services.recompute_request(tenant=tenant, days=2)
    run_succeeded(recompute, django_capture_on_commit_callbacks)
    assert PublishedVerdict.objects.unscoped().get(model=model).payload == verdicts.payload(
        truth.published_backtest(tenant))

    # Yesterday's verdict: shown with its day until the first run of today replaces it.
    row = mark(model, "Computed yesterday")
    PublishedVerdict.objects.unscoped().filter(pk=row.pk).update(as_of=today - timedelta(days=1))
    client.force_login(owner)
    page = outcomes_page(client, tenant)
    assert "Computed yesterday" in page and "As of" in page
    # The finalize of yesterday leaves it to the refresh of today that comes with it.
    finalize = scoring_services.run_create(model=model, kind=RunKind.FINALIZE, first_day=today - timedelta(days=1),
                                           last_day=today - timedelta(days=1))
    run_succeeded(finalize, django_capture_on_commit_callbacks)
    assert PublishedVerdict.objects.unscoped().get(model=model).as_of == today - timedelta(days=1)
    refresh = scoring_services.run_create(model=model, kind=RunKind.REFRESH, first_day=today, last_day=today)
    run_succeeded(refresh, django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.as_of == today and row.payload["verdict"]["headline"] != "Computed yesterday"
    assert "As of" not in outcomes_page(client, tenant)


def test_a_new_version_is_judged_on_its_own(client, tenant, owner, eager, django_capture_on_commit_callbacks):
    old = publish(tenant, django_capture_on_commit_callbacks)
    mark(old, "Verdict of the old version")
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=False):
        backfill = scoring_services.scoring_model_publish(model=draft, backfill_days=1)
    run_succeeded(backfill, django_capture_on_commit_callbacks)
    assert PublishedVerdict.objects.for_tenant(tenant).get(model=draft).payload == verdicts.payload(
        truth.published_backtest(tenant))

    # Not stored (a task lost with its broker): the embedded default (eager) computes it in the request.
    PublishedVerdict.objects.unscoped().filter(model=draft).delete()
    client.force_login(owner)
    page = outcomes_page(client, tenant)
    assert "Verdict of the old version" not in page
    assert truth.published_backtest(tenant).verdict.headline in page
    assert PublishedVerdict.objects.for_tenant(tenant).get(model=draft).as_of == tenant.today()


def test_each_workspace_reads_its_own_verdict(client, tenant, owner, other_tenant, eager,
                                              django_capture_on_commit_callbacks):
    mine = publish(tenant, django_capture_on_commit_callbacks)
    theirs = publish(other_tenant, django_capture_on_commit_callbacks, seed=9)
    mark(mine, "Verdict of Acme")
    mark(theirs, "Verdict of Globex")
    assert PublishedVerdict.objects.for_tenant(tenant).get().model == mine

    client.force_login(owner)
    page = outcomes_page(client, tenant)
    assert "Verdict of Acme" in page and "Verdict of Globex" not in page


def test_a_missing_verdict_is_computed_by_a_job_when_a_broker_runs_them(client, tenant, owner, settings, eager,
                                                                         django_capture_on_commit_callbacks,
                                                                         monkeypatch):
    """With a real broker the page never computes the backtest: it enqueues it once and says so."""
    model = publish(tenant, django_capture_on_commit_callbacks)
    PublishedVerdict.objects.unscoped().filter(model=model).delete()  # as if the run's task was lost
    settings.CELERY_TASK_ALWAYS_EAGER = False
    cache.clear()
    sent = []
    monkeypatch.setattr(tasks.refresh_published_verdict, "delay", lambda **kwargs: sent.append(kwargs))
    client.force_login(owner)

    for _ in range(2):
        page = outcomes_page(client, tenant)
        assert "The verdict over past days is being computed" in page
    assert sent == [{"tenant_id": tenant.pk}]
    assert not PublishedVerdict.objects.unscoped().filter(model=model).exists()

    tasks.refresh_published_verdict(**sent[0])  # the worker
    assert cache.get(verdicts.pending_key(tenant)) is None
    page = outcomes_page(client, tenant)
    assert truth.published_backtest(tenant).verdict.headline in page
    assert "being computed" not in page
