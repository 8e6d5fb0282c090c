"""End users, customer accounts, the activity catalog, events and their daily rollup.

The rollup (`DailyActivityCount`) is maintained in the same transaction that
inserts events, from the rows the insert actually stored (duplicates skipped),
so for every (end user, activity, day) its count equals the stored events.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Tenant, TenantOwned
from core.jobs import Job


class CustomerAccount(TenantOwned):
    """A company among the tenant's customers (Segment's `group`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    group_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    # When each trait was last set (its message's timestamp, `TRAIT_TIME_FORMAT`): a replayed
    # older group call never overwrites a newer value of the same key.
    trait_times = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Who looks after the account (a member of the workspace): set by hand or mapped from an
    # owner trait (e.g. `csm_email`); alerts email them and digests list their accounts.
    owner = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_accounts"
    )
    # The contract's renewal date, read from a trait the workspace names.
    renewal_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "group_id"], name="account_unique_group_id")]
        ordering = ["name", "group_id"]

    def __str__(self):
        return self.name or self.group_id

    @property
    def plan(self) -> str | None:
        return self.traits.get("plan")


class EndUser(TenantOwned):
    """A user of the tenant's product, known by `userId` and/or anonymous ids."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user_id = models.CharField(max_length=255, null=True, blank=True)
    # The anonymous id that created an anonymous end user; makes that creation idempotent.
    anonymous_id = models.CharField(max_length=255, null=True, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    # When each trait was last set (see CustomerAccount.trait_times).
    trait_times = models.JSONField(default=dict, blank=True)
    account = models.ForeignKey(CustomerAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="users")
    owner = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_end_users"
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user_id"], condition=Q(user_id__isnull=False), name="enduser_unique_user_id"
            ),
            models.UniqueConstraint(
                fields=["tenant", "anonymous_id"],
                condition=Q(anonymous_id__isnull=False),
                name="enduser_unique_anonymous_id",
            ),
        ]
        ordering = ["user_id"]

    def __str__(self):
        return self.user_id or f"anonymous {self.anonymous_id}"

    @property
    def display_name(self) -> str:
        return self.traits.get("name") or self.traits.get("email") or self.user_id or f"anonymous {self.anonymous_id}"


class AccountMembership(TenantOwned):
    """An end user's membership of a customer account, with its history.

    An end user belongs to every account that grouped them (a group call, or a
    context.groupId on any message), from `started_at`; a membership ends only
    on an explicit group call with `context.membership = "ended"` (see
    docs/scoring.md). Ended rows stay: the account roll-up of a day reads the
    memberships as they stood when that day ended, so recomputing an old day
    later gives the same rows. `EndUser.account` is the primary account shown in
    lists: the most recently grouped open membership.
    """

    id = models.BigAutoField(primary_key=True)
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(CustomerAccount, on_delete=models.CASCADE, related_name="memberships")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open membership per pair: a second group call changes nothing.
            models.UniqueConstraint(
                fields=["end_user", "account"], condition=Q(ended_at__isnull=True), name="membership_unique_open"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="membership_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "account", "started_at"], name="membership_tenant_account")]

    def __str__(self):
        return f"{self.end_user} in {self.account}"


class Identity(TenantOwned):
    """An anonymous id and the end user it belongs to (set by identify/alias or a message with both ids)."""

    anonymous_id = models.CharField(max_length=255)
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="identities")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "anonymous_id"], name="identity_unique_anonymous_id")]


class Activity(TenantOwned):
    """An event name in the tenant's catalog; proposed ones are not tracked until events arrive."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    # Null until the first event arrives: such an activity is "not tracked yet" (tracking plan).
    first_seen_at = models.DateTimeField(null=True, blank=True)
    # Only test events (context.testEvent: true, as the setup snippets send) carried this name:
    # kept out of the catalog, surveys and scoring models until a real event arrives or the
    # team keeps it (docs/ingestion.md).
    test_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="activity_unique_name")]
        ordering = ["name"]
        verbose_name_plural = "activities"

    def __str__(self):
        return self.display_name or self.name

    @property
    def is_tracked(self) -> bool:
        return self.first_seen_at is not None


class Event(TenantOwned):
    """One stored message. `day` is the event's date in the tenant's time zone (the partition key on PostgreSQL)."""

    id = models.BigAutoField(primary_key=True)
    # Every index and foreign-key check is paid on each insert, the ingestion hot path, so:
    # no single-column indexes on tenant and end_user (the composite ones below lead with
    # them), and no database constraints. Tenant, activity and account ids come from rows read
    # in the same request; their deletes cascade (or set null) in Django's collector, which
    # needs no constraint. End users are merged and deleted while batches arrive: the store
    # statement locks them as the key check would (see services.STORE_SQL). Measured: 1.4 ms
    # less PostgreSQL CPU per batch of 100 without the tenant, activity and account checks and
    # indexes, 0.6 ms without the per-row end-user check.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    message_id = models.CharField(max_length=100)
    type = models.CharField(max_length=10)
    end_user = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    activity = models.ForeignKey(
        Activity, null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    account = models.ForeignKey(
        CustomerAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    day = models.DateField()
    payload = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "message_id"], name="event_unique_message_id")]
        # On PostgreSQL the table is partitioned by month (events/partitions.py): the unique
        # constraint is not there (the dedupe is events_messageid's), and the primary key
        # (tenant_id, id, day) stands in for event_tenant_id.
        indexes = [
            # The live debugger's feed: a tenant's events by id, newest first.
            models.Index(fields=["tenant", "id"], name="event_tenant_id"),
            models.Index(fields=["end_user", "-timestamp"], name="event_user_timestamp"),
        ]

    def __str__(self):
        return f"{self.type} {self.message_id}"


class MessageId(TenantOwned):
    """Every message id a tenant's events were stored under: the dedupe of `(tenant, messageId)`.

    On PostgreSQL `events_event` is partitioned by month (events/partitions.py), and a
    unique index of a partitioned table must hold the partition key, which would let the
    same message id be stored once per month. The store statements insert here first
    (`ON CONFLICT DO NOTHING RETURNING`) and store only the events whose id was new, in the
    same statement. Rows outlive the events: a month dropped by retention keeps its ids,
    so a replay of those messages is still a duplicate and never counts twice in the
    rollup, which keeps the month's history.
    """

    pk = models.CompositePrimaryKey("tenant_id", "message_id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    message_id = models.CharField(max_length=100)

    def __str__(self):
        return self.message_id


class DailyActivityCount(TenantOwned):
    """How many times an end user did an activity on a tenant day (the scoring input)."""

    id = models.BigAutoField(primary_key=True)
    # Covered by (tenant, day) and by the unique (end_user, activity, day): see Event.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+", db_index=False)
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "activity", "day"], name="rollup_unique_user_activity_day")
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="rollup_tenant_day")]


class RejectedMessage(TenantOwned):
    """A message refused inside an accepted batch, kept with its reason for the debugger."""

    id = models.BigAutoField(primary_key=True)
    message_id = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=500)
    field = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(null=True)
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, default="api")

    class Meta:
        indexes = [models.Index(fields=["tenant", "-received_at"], name="rejected_tenant_received")]
        ordering = ["-received_at"]


def csv_upload_to(instance: "CsvImport", filename: str) -> str:
    """imports/<tenant id>/<uuid>.csv: never the user's file name."""
    return f"imports/{instance.tenant_id}/{uuid.uuid4()}.csv"


class CsvImport(TenantOwned, Job):
    """A CSV backfill: the uploaded file on disk, its preview and the import job's progress.

    scanning (the preview is being read) -> uploaded (preview ready) -> queued -> running
    -> succeeded or failed. Both reads of the file run in Celery tasks: a big file
    takes longer than an HTTP request may.

    Rows are counted as "records" (blank lines skipped); `processed_rows` is the
    checkpoint the task resumes from, written in the same transaction as the
    chunk's events, so a retried task neither skips nor double-counts a chunk.
    """

    class Status(models.TextChoices):
        SCANNING = "scanning", "Checking the file"
        UPLOADED = "uploaded", "Ready to import"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    original_name = models.CharField(max_length=255)
    # In the default storage (MEDIA_ROOT/imports/... on disk, or a bucket): web and workers share no disk.
    # Deleted once imported (or when the file cannot be read); the name stays as a record.
    file = models.FileField(upload_to=csv_upload_to, max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    # Job's four words plus the scan's two (same column as Job.status).
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCANNING)
    # The preview scan: first rows, listed errors (capped), and counts over the whole file.
    preview = models.JSONField(default=dict, blank=True)
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    # Progress of the import job.
    processed_rows = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "CSV import"

    def __str__(self):
        return f"CSV import {self.original_name} ({self.status})"

    def progress_counts(self) -> tuple[int, int]:
        return self.processed_rows, self.total_rows

    @property
    def percent(self) -> int:
        """The status endpoint's name for Job.progress."""
        return self.progress
