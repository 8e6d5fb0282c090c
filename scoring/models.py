"""Scoring models (versioned weights), daily score snapshots and scoring runs.

A snapshot is a pure function of the rollup (`events.DailyActivityCount`), the
model version and the day; the engine (`scoring.engine`) replaces a day's rows
for one version inside one transaction, so a unique (subject, day, model) row
never exists twice and never half.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Tenant, TenantOwned
from core.jobs import Job, JobStatus
from events.models import Activity, CustomerAccount, EndUser


class ModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class TierMethod(models.TextChoices):
    PERCENTILE = "percentile", "By percentile"
    POINTS = "points", "By points thresholds"


class AccountRollup(models.TextChoices):
    SUM = "sum", "Sum of user points"
    MEAN = "mean", "Mean per active user"
    SEATS = "seats", "Share of seats engaged (%)"


class Tier(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    NEW = "new", "New"
    DORMANT = "dormant", "Dormant"


class ScoringModel(TenantOwned):
    """One version of a tenant's scoring model. Published and retired versions are frozen."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.DRAFT)
    name = models.CharField(max_length=100, blank=True)
    window_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1), MaxValueValidator(365)])
    daily_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="How many times one activity counts for one end user per day. Empty: no cap.",
    )
    half_life_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Points of an activity done this many days ago count half. Empty: no decay.",
    )
    tier_method = models.CharField(max_length=10, choices=TierMethod.choices, default=TierMethod.PERCENTILE)
    tier_high = models.FloatField(default=80, validators=[MinValueValidator(0)])
    tier_medium = models.FloatField(default=40, validators=[MinValueValidator(0)])
    grace_days = models.PositiveIntegerField(default=14, validators=[MaxValueValidator(365)])
    account_rollup = models.CharField(max_length=10, choices=AccountRollup.choices, default=AccountRollup.SUM)
    # The "falling" flag (docs/scoring.md): points now at least `falling_drop_pct` % below the points
    # `trend_days` days earlier. No percentage: nobody is flagged.
    trend_days = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(7), MaxValueValidator(90)],
        help_text="Falling compares the points with the points this many days earlier (7-90).",
    )
    falling_drop_pct = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=50,
        validators=[MinValueValidator(10), MaxValueValidator(100)],
        help_text="Falling: points at least this % below then (10-100; 100 = fell to none). Empty: no flag.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="scoringmodel_unique_version"),
            # Exactly one published version per tenant, guaranteed by the database.
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(status="published"), name="scoringmodel_one_published"
            ),
        ]

    def __str__(self):
        return f"v{self.version}" + (f" {self.name}" if self.name else "")

    @property
    def is_draft(self) -> bool:
        return self.status == ModelStatus.DRAFT

    def clean(self):
        super().clean()
        if self.tier_method == TierMethod.PERCENTILE and (self.tier_high > 100 or self.tier_medium > 100):
            raise ValidationError({"tier_high": "Percentile thresholds are between 0 and 100."})
        if self.tier_high <= self.tier_medium:
            raise ValidationError({"tier_high": "The high threshold must be above the medium threshold."})


class ActivityWeight(TenantOwned):
    """Points per activity in one model version (0-1000; 0 or absent does not count)."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="weights")
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="+")
    points = models.PositiveIntegerField(validators=[MaxValueValidator(1000)])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "activity"], name="weight_unique_activity")]


# Snapshot rows are derived data written only by the engine, which takes every id
# from a join with its table. Their foreign keys therefore carry no database
# constraint (deferred FK checks of ~10k rows a day doubled the commit time) and
# no index where a composite index already leads with the column; deletes still
# cascade through the ORM.
SNAPSHOT_FK = {"on_delete": models.CASCADE, "related_name": "+", "db_constraint": False}


class UserScore(TenantOwned):
    """An end user's score for one tenant day under one model version."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, db_index=False, **SNAPSHOT_FK)
    model = models.ForeignKey(ScoringModel, db_index=False, **SNAPSHOT_FK)
    day = models.DateField()
    end_user = models.ForeignKey(EndUser, db_index=False, **SNAPSHOT_FK)
    points = models.FloatField()
    breadth = models.PositiveIntegerField()
    active_days = models.PositiveIntegerField()
    percentile = models.FloatField(null=True)
    tier = models.CharField(max_length=10, choices=Tier.choices)
    # Stored at scoring time for the lists, from the rollup like the rest (so a recompute gives the
    # same rows): the change against the points 7 and 30 days earlier and the last day with activity.
    # Null only on rows written before these columns existed.
    change_7 = models.FloatField(null=True)
    change_30 = models.FloatField(null=True)
    last_seen = models.DateField(null=True)
    # The points `model.trend_days` earlier, and whether today's are a fall from them (the model's
    # falling rule). Stored like the changes, from the rollup.
    trend_points = models.FloatField(null=True)
    falling = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "day", "model"], name="userscore_unique_subject_day_model")
        ]
        indexes = [
            models.Index(fields=["model", "day", "tier"], name="userscore_model_day_tier"),
            # The users list sorted by points (its default): the first page reads 50 index entries
            # instead of sorting the day's 100,000 rows.
            models.Index(fields=["model", "day", "points"], name="userscore_model_day_points"),
        ]


class AccountScore(TenantOwned):
    """A customer account's score for one tenant day under one model version."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, db_index=False, **SNAPSHOT_FK)
    model = models.ForeignKey(ScoringModel, db_index=False, **SNAPSHOT_FK)
    day = models.DateField()
    account = models.ForeignKey(CustomerAccount, db_index=False, **SNAPSHOT_FK)
    points = models.FloatField()
    active_users = models.PositiveIntegerField()
    seats = models.PositiveIntegerField()
    percentile = models.FloatField(null=True)
    tier = models.CharField(max_length=10, choices=Tier.choices)
    # Stored at scoring time for the lists, from the rollup like the rest (so a recompute gives the
    # same rows): the change against the points 7 and 30 days earlier and the last day with activity.
    # Null only on rows written before these columns existed.
    change_7 = models.FloatField(null=True)
    change_30 = models.FloatField(null=True)
    last_seen = models.DateField(null=True)
    # The points `model.trend_days` earlier, and whether today's are a fall from them (the model's
    # falling rule). Stored like the changes, from the rollup.
    trend_points = models.FloatField(null=True)
    falling = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "model"], name="accountscore_unique_subject_day_model")
        ]
        indexes = [models.Index(fields=["model", "day", "tier"], name="accountscore_model_day_tier")]


class ProductScore(TenantOwned):
    """The product's score for one tenant day under one model version."""

    tenant = models.ForeignKey(Tenant, db_index=False, **SNAPSHOT_FK)
    model = models.ForeignKey(ScoringModel, **SNAPSHOT_FK)
    day = models.DateField()
    total_points = models.FloatField()
    mean_points = models.FloatField()
    median_points = models.FloatField()
    active_users = models.PositiveIntegerField()
    engaged_users = models.PositiveIntegerField()
    high_users = models.PositiveIntegerField()
    medium_users = models.PositiveIntegerField()
    low_users = models.PositiveIntegerField()
    new_users = models.PositiveIntegerField()
    dormant_users = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day", "model"], name="productscore_unique_day_model")]


# A scoring run has exactly the job's four states.
RunStatus = JobStatus


class RunKind(models.TextChoices):
    REFRESH = "refresh", "Refresh today"
    FINALIZE = "finalize", "Finalize yesterday"
    BACKFILL = "backfill", "Backfill after publishing"
    RECOMPUTE = "recompute", "Recompute"
    COMMAND = "command", "manage.py score"


class ScoringRun(TenantOwned, Job):
    """One scoring job: which days, how far it got, and how it ended."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    first_day = models.DateField()
    last_day = models.DateField()
    # {"YYYY-MM-DD": rows written}: a redelivered chunk overwrites its own days, never counts twice.
    day_rows = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When a running run last moved (claimed, a day recorded, resumed): the stall sweeper's clock.
    progressed_at = models.DateTimeField(null=True, blank=True)
    # Times the stall sweeper re-enqueued the missing days (capped: SCORING_STALL_MAX_RESUMES).
    resumes = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="scoringrun_tenant_created"),
            # The stall sweeper's scan (every few minutes, across tenants) reads only running runs.
            models.Index(fields=["progressed_at"], condition=Q(status="running"), name="scoringrun_running_progress"),
        ]

    def __str__(self):
        return f"{self.kind} {self.first_day}..{self.last_day} ({self.status})"

    @property
    def days_total(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def days_done(self) -> int:
        return len(self.day_rows)

    def progress_counts(self) -> tuple[int, int]:
        return self.days_done, self.days_total

    @property
    def rows_written(self) -> int:
        return sum(self.day_rows.values())

    @property
    def is_stalled(self) -> bool:
        """Running, but no day recorded for SCORING_STALL_MINUTES: its worker probably died."""
        if self.status != RunStatus.RUNNING:
            return False
        last = self.progressed_at or self.started_at or self.created_at
        return last < timezone.now() - timedelta(minutes=settings.SCORING_STALL_MINUTES)
