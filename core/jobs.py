"""The one job record: what a background job's row says about where it is.

`events.CsvImport` and `scoring.ScoringRun` both inherit `Job`: the same status
words, times, error and progress, and one progress partial
(`templates/core/_job_progress.html`) that pages refresh with htmx. The columns
are the ones both tables had before (no schema change); each job only says how
far it got (`progress_counts`).

Jobs update their rows with `QuerySet.update()` (a worker and the stall sweeper
may race on a row), so the helpers return the field values of a transition
rather than saving: `Model.objects.filter(...).update(**Job.failed_fields(msg))`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone

# The longest error message a job row keeps (a traceback's last line, a task's message).
MAX_ERROR_CHARS = 2000


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class Job(models.Model):
    """Abstract: status, error, created/started/finished times and progress of a background job.

    A subclass may widen `status` with states of its own (CsvImport's scan) as long
    as it keeps these four words.
    """

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def progress_counts(self) -> tuple[int, int]:
        """(done, total) in the job's own unit: rows, days... (each concrete job defines it)."""
        raise NotImplementedError(f"{type(self).__name__} must define progress_counts()")

    @property
    def progress(self) -> int:
        """Percent done, rounded down: a bar shows 100 only when everything is done."""
        done, total = self.progress_counts()
        if not total:
            return 100 if self.status == JobStatus.SUCCEEDED else 0
        return min(100, done * 100 // total)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # --- Transitions, as field values for QuerySet.update() or setattr + save ----------

    @staticmethod
    def running_fields(started_at: datetime | None = None) -> dict[str, Any]:
        """Running; a resumed job keeps the time it first started."""
        return {"status": JobStatus.RUNNING, "started_at": started_at or timezone.now()}

    @staticmethod
    def succeeded_fields() -> dict[str, Any]:
        return {"status": JobStatus.SUCCEEDED, "finished_at": timezone.now(), "error": ""}

    @staticmethod
    def failed_fields(message: str) -> dict[str, Any]:
        return {"status": JobStatus.FAILED, "finished_at": timezone.now(), "error": message[:MAX_ERROR_CHARS]}

    def apply(self, fields: dict[str, Any]) -> list[str]:
        """Set a transition's fields on this instance; returns their names for save(update_fields=...)."""
        for name, value in fields.items():
            setattr(self, name, value)
        return list(fields)
