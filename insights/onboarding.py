"""The onboarding checklist of a new tenant, read from real state in one query.

Steps: run the team survey -> create a write key (and install the snippet) ->
first event received -> publish weights -> first scores computed. The surveys
app is optional: its model is looked up lazily so insights never imports it.

Whether the checklist shows is remembered per tenant in the member's session:
it hides itself once every step is done and can be reopened (or dismissed early).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db.models import Exists, OuterRef
from django.urls import reverse

from accounts.models import ApiKey, ApiKeyKind, Tenant
from events.models import Event
from scoring.models import ModelStatus, ProductScore, ScoringModel

SESSION_KEY = "onboarding:{tenant_id}"
SHOWN, HIDDEN = "shown", "hidden"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    help: str
    url: str
    done: bool


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def next_step(self) -> Step | None:
        return next((step for step in self.steps if not step.done), None)

    def as_dict(self) -> dict:
        return {"complete": self.complete, "steps": {step.key: step.done for step in self.steps}}


def _survey_model():
    try:
        return apps.get_model("surveys", "Survey")
    except LookupError:
        return None


def checklist_state(tenant: Tenant) -> dict[str, bool]:
    """Which steps are done, from one query of EXISTS subqueries."""
    checks = {
        "write_key": ApiKey.objects.filter(tenant=OuterRef("pk"), kind=ApiKeyKind.WRITE, revoked_at=None),
        "first_event": Event.objects.filter(tenant=OuterRef("pk")),
        "published": ScoringModel.objects.filter(tenant=OuterRef("pk"), status=ModelStatus.PUBLISHED),
        "scores": ProductScore.objects.filter(
            tenant=OuterRef("pk"), model__status=ModelStatus.PUBLISHED, active_users__gt=0
        ),
    }
    survey = _survey_model()
    if survey is not None:
        # "Run" means at least one teammate answered, not just a draft survey.
        checks["survey"] = survey.objects.filter(tenant=OuterRef("pk"), responses__isnull=False)
    # "has_" prefix: bare names like "survey" clash with the reverse relations of Tenant.
    annotations = {f"has_{key}": Exists(qs) for key, qs in checks.items()}
    row = Tenant.objects.filter(pk=tenant.pk).annotate(**annotations).values(*annotations).get()
    return {key.removeprefix("has_"): bool(value) for key, value in row.items()}


def checklist(tenant: Tenant) -> Checklist:
    state = checklist_state(tenant)
    slug = tenant.slug
    steps = []
    if "survey" in state:
        steps.append(Step(
            "survey", "Run the team survey",
            "Ask everyone “an engaged user of our product does…”; the answers become your activities.",
            reverse("surveys:list", args=[slug]), state["survey"],
        ))
    steps += [
        Step("write_key", "Create a write key and install the snippet",
             "Point a Segment SDK (or plain HTTP) at this server with a write key.",
             reverse("events:setup", args=[slug]), state["write_key"]),
        Step("first_event", "Receive your first event",
             "Send one event; this step ticks itself as soon as it arrives.",
             reverse("events:debugger", args=[slug]), state["first_event"]),
        Step("published", "Publish weights",
             "Open the draft (the survey's proposal, else the starting model), preview it on real data and publish it.",
             _publish_url(tenant, state), state["published"]),
        Step("scores", "See the first scores",
             "Scores are computed after publishing; the users list fills up.",
             reverse("scoring:users", args=[slug]), state["scores"]),
    ]
    return Checklist(steps)


def _publish_url(tenant: Tenant, state: dict[str, bool]) -> str:
    """Straight to the draft to preview and publish (survey -> proposal -> draft -> preview -> publish)."""
    slug = tenant.slug
    if not state["published"]:
        draft = ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.DRAFT).order_by("-version").first()
        if draft is not None:
            return reverse("scoring:edit_model", args=[slug, draft.public_id])
        survey = _survey_model()
        answered = survey and survey.objects.for_tenant(tenant).filter(responses__isnull=False).first()
        if answered:
            return reverse("surveys:propose_weights", args=[slug, answered.public_id])
    return reverse("scoring:models", args=[slug])


def is_visible(session, tenant: Tenant, checklist: Checklist) -> bool:
    """Shown until complete, unless the member hid it; reopened on request even when complete."""
    choice = session.get(SESSION_KEY.format(tenant_id=tenant.pk))
    if choice == SHOWN:
        return True
    if choice == HIDDEN:
        return False
    return not checklist.complete


def set_visible(session, tenant: Tenant, visible: bool) -> None:
    session[SESSION_KEY.format(tenant_id=tenant.pk)] = SHOWN if visible else HIDDEN
