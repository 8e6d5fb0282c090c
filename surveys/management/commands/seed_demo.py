"""Create (or refresh) the demo tenant and its demo login. Safe to run again.

It lives in surveys, the app at the top of the dependency graph, because it
uses every app. One step after another, each printed with its time (the first
start shows where it is): the tenant and its team, a write key, events
(through the real ingestion path), the team survey, whose weights proposal
(rarity from those events) becomes the draft that is published, then 90 days of
scores. Another app's demo setup is one more function called as a step here.
"""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import rls
from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo_tenant, seed_demo_write_key
from alerts.demo import assign_demo_owners, seed_demo_alerts
from events.demo import USERS, seed_demo_events
from scoring.demo import seed_demo_scoring
from scoring.selectors import published_model
from surveys.demo import DEMO_SURVEY_TITLE, seed_demo_survey
from surveys.models import Survey
from surveys.services import survey_create_draft_model


class Command(BaseCommand):
    help = "Create the demo tenant and a demo login with 90 days of events, a survey and scores, idempotently."

    def add_arguments(self, parser):
        parser.add_argument(
            "--users", type=int, default=USERS, help=f"end users to generate (default {USERS}; fewer is faster)"
        )

    def handle(self, *args, **opts):
        self._started = time.monotonic()
        with transaction.atomic():
            tenant, created = seed_demo_tenant()
        verb = "Created" if created else "Refreshed"
        self.stdout.write(f"{verb} demo tenant “{tenant.name}” (slug: {tenant.slug}).")
        self._step(seed_demo_write_key(tenant))
        # Row-level security: the rest is the demo tenant's (session-level, reset at the end).
        with rls.session_tenant(tenant):
            self._step("Demo events: sending 90 days of events through the ingestion path…")
            stored = seed_demo_events(tenant, users=opts["users"], progress=self._progress)
            self._step(f"Demo events: {stored:,} stored." if stored else "Demo events: already there.")
            self._step(seed_demo_survey(tenant))
            self._step("Scoring: publishing the survey's weights and computing 90 days…")
            self._step(seed_demo_scoring(tenant, draft=self._survey_draft(tenant)))
            self._step(assign_demo_owners(tenant))
            self._step("Alerts: two rules and their first deliveries…")
            self._step(seed_demo_alerts(tenant))
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")

    def _step(self, line: str) -> None:
        self.stdout.write(f"  [{time.monotonic() - self._started:5.1f} s] {line}")
        self.stdout.flush()

    def _survey_draft(self, tenant):
        """The draft the demo survey proposes, the first time only (later runs keep the published model)."""
        if published_model(tenant) is not None:
            return None
        survey = Survey.objects.for_tenant(tenant).filter(title=DEMO_SURVEY_TITLE).first()
        if survey is None:
            return None
        if survey.scoring_model is not None:
            return survey.scoring_model if survey.scoring_model.is_draft else None
        return survey_create_draft_model(survey=survey)

    def _progress(self, stored: int) -> None:
        # A line every 25,000 events: the first seed sends ~170,000.
        if stored and stored % 25_000 < 1_000:
            self._step(f"Demo events: {stored:,} stored so far…")
