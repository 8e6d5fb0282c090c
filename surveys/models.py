"""The team survey: "An engaged user of <product> does…".

Every row is tenant-owned (`TenantOwned`) so pages read them through
`objects.for_tenant(tenant)` / `get_tenant_object`. Links are never stored in
clear: a personal link's token is an HMAC of the invitee (so a reminder can
re-send the same link) and only its SHA-256 is kept for the lookup; the same
holds for share links, which are revoked by flagging the row (a revoked link
answers 410, not 404, so the visitor learns why).
"""

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import Department, Membership, TenantOwned
from events.models import Activity

PERSONAL_PREFIX = "p_"
SHARE_PREFIX = "s_"

# Importance ratings are 0-10; "not relevant" is stored as NULL.
IMPORTANCE_MIN, IMPORTANCE_MAX = 0, 10


def _derive_token(prefix: str, kind: str, public_id: uuid.UUID, salt: str) -> str:
    # HMAC with SECRET_KEY: a database leak alone does not reveal any link, yet
    # the server can re-create a link for a reminder without storing it.
    digest = salted_hmac(f"surveys.{kind}", f"{public_id}:{salt}", algorithm="sha256").hexdigest()
    return f"{prefix}{digest[:48]}"


def new_salt() -> str:
    return secrets.token_hex(16)


def default_question() -> str:
    return "An engaged user of our product does…"


class Survey(TenantOwned):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=200)
    question = models.TextField(max_length=1000, default=default_question)
    closes_at = models.DateTimeField(
        null=True, blank=True, help_text="Answers are refused from this moment on (optional)."
    )
    allow_proposals = models.BooleanField("respondents may propose new activities", default=True)
    anonymous = models.BooleanField(
        "answers are anonymous", default=False, help_text="Results then show departments, never names."
    )
    activities = models.ManyToManyField(Activity, through="SurveyActivity", related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The scoring model version the weights proposal produced; once published, that
    # version finds the survey it came from through `source_surveys`.
    scoring_model = models.ForeignKey(
        "scoring.ScoringModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="source_surveys"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    @property
    def is_closed(self) -> bool:
        if self.closed_at is not None:
            return True
        return self.closes_at is not None and self.closes_at <= timezone.now()

    @property
    def closed_since(self):
        """When the survey closed: an editor's close or the closing date, whichever came first (None if open)."""
        now = timezone.now()
        moments = [m for m in (self.closed_at, self.closes_at) if m is not None and m <= now]
        return min(moments) if moments else None

    @property
    def status(self) -> str:
        return "closed" if self.is_closed else "open"

    def candidate_activities(self):
        return (
            Activity.objects.for_tenant(self.tenant)
            .filter(survey_entries__survey=self)
            .order_by("survey_entries__position", "name")
        )


class SurveyActivity(TenantOwned):
    """A candidate activity respondents rate (taken from the catalog)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="entries")
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="survey_entries")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "activity"], name="survey_activity_unique")]
        ordering = ["position", "id"]
        verbose_name_plural = "survey activities"


class SurveyInvitee(TenantOwned):
    """One person invited with a personal link: a member or an email address."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitees")
    email = models.EmailField()
    membership = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Known from the membership at invitation time, or from the answer.
    department = models.CharField(max_length=20, choices=Department.choices, blank=True)
    token_salt = models.CharField(max_length=32, default=new_salt, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invited_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    reminder_count = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "email"], name="survey_invitee_unique_email")]
        ordering = ["email"]

    def __str__(self):
        return f"{self.email} for {self.survey}"

    def token(self) -> str:
        return _derive_token(PERSONAL_PREFIX, "invitee", self.public_id, self.token_salt)


class SurveyShareLink(TenantOwned):
    """A shareable public link; anyone with it may answer (rate-limited per IP)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="share_links")
    token_salt = models.CharField(max_length=32, default=new_salt, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def token(self) -> str:
        return _derive_token(SHARE_PREFIX, "share", self.public_id, self.token_salt)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SurveyResponse(TenantOwned):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    # One response per personal link; share-link responses have no invitee.
    invitee = models.OneToOneField(
        SurveyInvitee, null=True, blank=True, on_delete=models.SET_NULL, related_name="response"
    )
    share_link = models.ForeignKey(
        SurveyShareLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    respondent_name = models.CharField(max_length=150, blank=True)
    department = models.CharField(max_length=20, choices=Department.choices)
    answer = models.TextField(max_length=5000)
    comment = models.TextField(max_length=2000, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["submitted_at"]
        indexes = [models.Index(fields=["survey", "department"], name="response_survey_department")]

    def __str__(self):
        return f"Response to {self.survey} ({self.department})"

    @property
    def who(self) -> str:
        """A name for the results page; empty for anonymous surveys."""
        if self.survey.anonymous:
            return ""
        if self.invitee_id:
            membership = self.invitee.membership
            return membership.user.get_full_name() if membership else self.invitee.email
        return self.respondent_name


class ActivityRating(TenantOwned):
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="ratings")
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="+")
    # NULL = "not relevant": excluded from mean, median and spread, counted apart.
    importance = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(IMPORTANCE_MIN), MaxValueValidator(IMPORTANCE_MAX)]
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["response", "activity"], name="rating_unique_per_response")]


class ProposedActivity(TenantOwned):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="proposals")
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="proposals")
    name = models.CharField(max_length=100)
    # Case- and space-insensitive key: the same idea proposed twice is grouped.
    normalized_name = models.CharField(max_length=100, editable=False)
    description = models.CharField(max_length=500, blank=True)
    importance = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(IMPORTANCE_MIN), MaxValueValidator(IMPORTANCE_MAX)]
    )
    accepted_activity = models.ForeignKey(Activity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["normalized_name", "id"]
        verbose_name_plural = "proposed activities"

    def __str__(self):
        return self.name


def normalize_name(name: str) -> str:
    return " ".join(name.split()).casefold()
