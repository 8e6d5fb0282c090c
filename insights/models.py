"""Daily insight aggregates, written by the scoring job with each day's snapshots (insights/aggregates.py).

Every row is a pure function of the rollup and the published version's
snapshots up to its day, so a recompute of the day writes the same rows. The
pages read these instead of aggregating the whole rollup per request
(docs/insights.md, "Aggregates").
"""

from django.db import models

from accounts.models import TenantOwned

SUBJECT_CHOICES = [("users", "End users"), ("accounts", "Accounts")]
# One FK shape for every aggregate: the rows go with their model version (and tenant).
_FK = {"on_delete": models.CASCADE, "db_index": False, "related_name": "+"}


class AggregatedDay(TenantOwned):
    """The day's aggregates were written (a page never takes a missing day for a zero).

    `transitions_from`: the day the tier transitions of this day compare with (the page's
    default, the latest scored day 30 days earlier, as it was when written).
    """

    model = models.ForeignKey("scoring.ScoringModel", **_FK)
    day = models.DateField()
    transitions_from = models.DateField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "day"], name="aggregatedday_unique_model_day")]


class GrowthCount(TenantOwned):
    """Growth accounting of the week or month holding `day`, as it stood on `day` (the period so far)."""

    model = models.ForeignKey("scoring.ScoringModel", **_FK)
    day = models.DateField()
    period = models.CharField(max_length=5, choices=[("week", "Week"), ("month", "Month")])
    subject = models.CharField(max_length=8, choices=SUBJECT_CHOICES)
    measure = models.CharField(max_length=7, choices=[("active", "Active"), ("engaged", "Engaged")])
    active = models.PositiveIntegerField()
    new = models.PositiveIntegerField()
    retained = models.PositiveIntegerField()
    resurrected = models.PositiveIntegerField()
    churned = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "period", "subject", "measure", "day"],
                                               name="growthcount_unique_key")]


WEEK_TO_DATE = 0  # AdoptionCount.window: since the Monday of `day`'s week (the adoption trend)


class AdoptionCount(TenantOwned):
    """End users and accounts that did `activity` (None: any activity) in the `window` days ending `day`."""

    model = models.ForeignKey("scoring.ScoringModel", **_FK)
    day = models.DateField()
    activity = models.ForeignKey("events.Activity", null=True, **_FK)
    window = models.PositiveSmallIntegerField()
    users = models.PositiveIntegerField()
    accounts = models.PositiveIntegerField(null=True)  # not kept for WEEK_TO_DATE

    class Meta:
        indexes = [models.Index(fields=["model", "window", "day"], name="adoptioncount_model_window_day")]


class TransitionCount(TenantOwned):
    """How many subjects went from `tier_from` on `day_from` to `tier_to` on `day`."""

    model = models.ForeignKey("scoring.ScoringModel", **_FK)
    day = models.DateField()
    day_from = models.DateField()
    subject = models.CharField(max_length=8, choices=SUBJECT_CHOICES)
    tier_from = models.CharField(max_length=20)  # a tier or "not seen yet"
    tier_to = models.CharField(max_length=10)
    subjects = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["model", "day", "subject"], name="transitioncount_model_day")]


class OutcomeCount(TenantOwned):
    """Outcomes of the snapshots of `day` per tier or score decile.

    horizon 0: the group's subjects (and, for accounts, churn and MRR traits); horizon 30 or 60:
    how many of them were active in the 7 days ending `day + horizon`, written once that day is
    scored (a row exists only for an observable horizon).
    """

    model = models.ForeignKey("scoring.ScoringModel", **_FK)
    day = models.DateField()
    subject = models.CharField(max_length=8, choices=SUBJECT_CHOICES)
    horizon = models.PositiveSmallIntegerField()
    grouping = models.CharField(max_length=6, choices=[("tier", "Tier"), ("decile", "Decile")])
    group = models.CharField(max_length=10)  # a tier, or the decile 0-10 (0: no points)
    subjects = models.PositiveIntegerField()
    active = models.PositiveIntegerField()
    with_churn_trait = models.PositiveIntegerField(null=True)
    churned = models.PositiveIntegerField(null=True)
    mrr = models.FloatField(null=True)

    class Meta:
        indexes = [models.Index(fields=["model", "day", "subject"], name="outcomecount_model_day")]


class PublishedVerdict(TenantOwned):
    """The headline of the Outcomes page: `model`'s backtest over past days (truth.published_backtest).

    Written after a scoring run succeeds (insights/verdicts.py), read by the page: the backtest
    itself is seconds to a minute on a large workspace. One row per version: publishing another
    version leaves this one unread. `as_of`: the tenant's day it was computed on. `payload`: what
    the template shows (verdict level, headline and warnings, horizon, each day's AUC).
    """

    model = models.OneToOneField("scoring.ScoringModel", on_delete=models.CASCADE, related_name="+")
    as_of = models.DateField()
    computed_at = models.DateTimeField()
    payload = models.JSONField()
