"""Alerts test helpers: a real HTTP receiver on 127.0.0.1 (a thread), scored data, rules."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import services
from alerts.models import ActionKind, Subject, Trigger
from events.models import CustomerAccount
from scoring.models import AccountScore, ScoringModel, Tier, UserScore
from tests.factories import ScoringModelFactory
from tests.noise import _noise_module, noise_tenant  # noqa: F401 - autouse: another tenant with data in every test
from tests.scoring.conftest import LONG_AGO, make_account, make_users  # noqa: F401


class Receiver:
    """Answers POSTs with the scripted statuses (then 200), keeping every request it got."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = json.dumps({"ok": status < 300, "n": len(receiver.requests)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/engagement"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def alerts_settings(settings):
    settings.ALERTS_ALLOW_LOCAL_TARGETS = True
    settings.ALERTS_RETRY_DELAYS = [0, 0, 0]
    settings.SITE_URL = "https://engagement.example.com"


@pytest.fixture(autouse=True)
def celery_eager():
    from engagement_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous




def snapshot_model(tenant) -> ScoringModel:
    """A published model whose snapshots the tests write directly (as the engine would)."""
    from scoring.models import ModelStatus

    return ScoringModelFactory(tenant=tenant, version=1, status=ModelStatus.PUBLISHED)


def account_scores(tenant, model, day, rows):
    """rows: (account, points, tier) on `day`."""
    AccountScore.objects.bulk_create(
        AccountScore(tenant=tenant, model=model, day=day, account=a, points=p, active_users=1, seats=1,
                     percentile=50, tier=t)
        for a, p, t in rows
    )


def user_scores(tenant, model, day, rows):
    """rows: (end_user, points, tier, percentile) on `day`."""
    UserScore.objects.bulk_create(
        UserScore(tenant=tenant, model=model, day=day, end_user=u, points=p, breadth=1, active_days=1,
                  percentile=pct, tier=t)
        for u, p, t, pct in rows
    )


def falling_accounts(tenant, owner=None):
    """Two accounts on the last two days: "Falling Co" drops medium -> low, "Steady Co" stays high."""
    model = snapshot_model(tenant)
    today = tenant.today()
    falling = CustomerAccount.objects.create(tenant=tenant, group_id="falling", name="Falling Co", owner=owner,
                                             traits={"plan": "paid"}, first_seen_at=LONG_AGO)
    steady = CustomerAccount.objects.create(tenant=tenant, group_id="steady", name="Steady Co",
                                            traits={"plan": "free"}, first_seen_at=LONG_AGO)
    account_scores(tenant, model, today - timedelta(days=14), [(falling, 100, Tier.MEDIUM), (steady, 300, Tier.HIGH)])
    account_scores(tenant, model, today - timedelta(days=1), [(falling, 90, Tier.MEDIUM), (steady, 300, Tier.HIGH)])
    account_scores(tenant, model, today, [(falling, 20, Tier.LOW), (steady, 310, Tier.HIGH)])
    return model, falling, steady


def endpoint_for(tenant, url, owner=None):
    endpoint, secret = services.endpoint_create(tenant=tenant, name="CRM", url=url, owner=owner)
    return endpoint, secret


def webhook_rule(tenant, endpoint, **fields):
    fields.setdefault("name", "Tier dropped to low")
    fields.setdefault("subject", Subject.ACCOUNTS)
    fields.setdefault("trigger", Trigger.TIER_CHANGED)
    fields.setdefault("tier_to", "low")
    return services.rule_save(tenant=tenant, actions=[{"kind": ActionKind.WEBHOOK, "endpoint": endpoint}], **fields)
