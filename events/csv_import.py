"""CSV backfill: check, preview and import a CSV file of historical track events.

The file is read from disk with the csv module one record at a time and never
held in memory whole, so a file of millions of rows imports in constant
memory. Each row becomes a Segment track message and takes the same path as
the HTTP API: `wire.normalize`, then `services.ingest(source="csv")`, one
transaction per chunk of rows. Rows without a `message_id` get one derived
from their content, so importing the same file twice stores nothing new.

Columns: `user_id`, `event`, `timestamp` (required), `account_id`,
`message_id` (optional) and any number of `properties.<name>` columns.
Line numbers are physical lines of the file (the header is line 1), so they
match what an editor shows even when a quoted cell spans several lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Tenant, User

from .models import CsvImport
from .services import ingest
from .wire import MAX_MESSAGE_BYTES, MAX_MESSAGE_ID_LEN, Message, Rejection, normalize, parse_timestamp

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user_id", "event", "timestamp")
OPTIONAL_COLUMNS = ("account_id", "message_id")
PROPERTY_PREFIX = "properties."
PREVIEW_ROWS = 20
# A file with a systematic mistake can have a million bad rows: list the first
# ones (enough to see the pattern) and count the rest.
MAX_LISTED_ERRORS = 1000
CHUNK_ROWS = 1000
SCAN_PROGRESS_ROWS = 20_000

# Wire field names -> the CSV column the user wrote, so reasons name their column.
_COLUMN_OF_FIELD = {
    "userId": "user_id",
    "messageId": "message_id",
    "event": "event",
    "timestamp": "timestamp",
    "context.groupId": "account_id",  # the CSV's account_id travels as context.groupId
}
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,3})?")

Status = CsvImport.Status


# --- Reading the file ---------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    columns: list[str]
    index: dict[str, int]  # fixed column name -> position
    properties: list[tuple[int, str]] = field(default_factory=list)  # (position, property name)


def parse_header(cells: list[str]) -> Header:
    """Check the header line: required columns present, nothing unknown or repeated."""
    columns = [cell.strip() for cell in cells]
    if not any(columns):
        raise ValidationError("The first line must name the columns: user_id, event, timestamp, ...")
    index: dict[str, int] = {}
    properties: list[tuple[int, str]] = []
    unknown, repeated = [], []
    for position, name in enumerate(columns):
        key = name.lower()
        if key in REQUIRED_COLUMNS or key in OPTIONAL_COLUMNS:
            if key in index:
                repeated.append(name)
            index[key] = position
        elif key.startswith(PROPERTY_PREFIX) and len(name) > len(PROPERTY_PREFIX):
            prop = name[len(PROPERTY_PREFIX) :]
            if any(prop == existing for _, existing in properties):
                repeated.append(name)
            properties.append((position, prop))
        else:
            unknown.append(name or f"(empty, column {position + 1})")
    problems = []
    missing = [name for name in REQUIRED_COLUMNS if name not in index]
    if missing:
        problems.append(f"Missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.")
    if unknown:
        problems.append(
            f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            "Name event properties properties.<name>."
        )
    if repeated:
        problems.append(f"Repeated column{'s' if len(repeated) > 1 else ''}: {', '.join(repeated)}.")
    if problems:
        raise ValidationError(" ".join(problems))
    return Header(columns=columns, index=index, properties=properties)


@contextmanager
def open_csv(name: str) -> Iterator[tuple[Header, Iterator[tuple[int, list[str]]]]]:
    """Open a CSV file of the default storage: its checked header and an iterator of (line number, cells).

    Through the storage API, so the web process that received the upload and the
    worker that reads it need no shared disk (S3-compatible storage by settings).
    Raises ValidationError for a file that is not UTF-8 text CSV at all; row-level
    problems are left to `row_to_message`.
    """
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with default_storage.open(name, "rb") as raw, io.TextIOWrapper(raw, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            first = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _file_error(reader, exc) from None
        if first is None:
            raise ValidationError("The file is empty.")
        yield parse_header(first), _records(reader)


def _records(reader) -> Iterator[tuple[int, list[str]]]:
    previous_end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _file_error(reader, exc) from None
        start, previous_end = previous_end + 1, reader.line_num
        if cells:  # a blank line is not a row
            yield start, cells


def _file_error(reader, exc: Exception) -> ValidationError:
    if isinstance(exc, UnicodeDecodeError):
        return ValidationError(f"The file is not UTF-8 text (near line {reader.line_num + 1}). Export it as CSV UTF-8.")
    return ValidationError(f"The file is not valid CSV at line {reader.line_num}: {exc}.")


# --- One row ------------------------------------------------------------------------


def derive_message_id(user_id: str, event: str, timestamp: datetime, account_id: str, properties: dict) -> str:
    """A stable id from a row's content: the same row imported twice is the same event."""
    canonical = json.dumps(
        [user_id, event, timestamp.isoformat(), account_id, sorted(properties.items())],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "csv-" + hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()


def _typed(value: str) -> Any:
    """Numbers and booleans become JSON numbers/booleans; everything else stays text."""
    if value in ("true", "false"):
        return value == "true"
    if _NUMBER.fullmatch(value):
        return json.loads(value)
    return value


def _rejection(line: int, reason: str, column: str | None, payload: dict, message_id: str | None = None) -> Rejection:
    return Rejection(message_id, f"line {line}: {reason}", column, {"line": line, **payload})


def _without_nul(cells: list[str]) -> list[str]:
    return [cell.replace("\x00", "") for cell in cells]


def row_to_message(header: Header, line: int, cells: list[str], received_at: datetime) -> Message | Rejection:
    """Turn one CSV record into a normalised track message, or a Rejection naming its line."""
    if any("\x00" in cell for cell in cells):
        # PostgreSQL text and JSON cannot hold NUL: refuse the row here, not the whole chunk in the database.
        return _rejection(line, "contains a NUL character", None, {"cells": _without_nul(cells)})
    if len(cells) != len(header.columns):
        return _rejection(line, f"has {len(cells)} cells, the header has {len(header.columns)}", None, {"cells": cells})
    row = dict(zip(header.columns, cells, strict=True))
    size = sum(len(cell.encode()) for cell in cells)
    if size > MAX_MESSAGE_BYTES:
        return _rejection(line, f"row is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit", None, {})
    values = {name: cells[position].strip() for name, position in header.index.items()}
    for column in REQUIRED_COLUMNS:
        if not values[column]:
            return _rejection(line, f"{column} is required", column, {"row": row})
    try:
        timestamp = parse_timestamp(values["timestamp"])
    except ValueError as exc:
        return _rejection(line, f"timestamp is {exc}", "timestamp", {"row": row})
    raw_properties = {name: cells[position].strip() for position, name in header.properties}
    raw_properties = {name: value for name, value in raw_properties.items() if value != ""}
    account_id = values.get("account_id", "")
    message_id = values.get("message_id") or derive_message_id(
        values["user_id"], values["event"], timestamp, account_id, raw_properties
    )
    raw: dict[str, Any] = {
        "type": "track",
        "userId": values["user_id"],
        "event": values["event"],
        "timestamp": values["timestamp"],
        "messageId": message_id,
        "properties": {name: _typed(value) for name, value in raw_properties.items()},
    }
    if account_id:
        raw["context"] = {"groupId": account_id}
    result = normalize(raw, kind="batch", received_at=received_at, batch_sent_at=None)
    if isinstance(result, Rejection):
        column = _COLUMN_OF_FIELD.get(result.field or "", result.field)
        reason = result.reason
        if result.field in _COLUMN_OF_FIELD:
            reason = reason.replace(result.field, column, 1)
        reported_id = message_id if len(message_id) <= MAX_MESSAGE_ID_LEN else None
        return _rejection(line, reason, column, {"row": row}, reported_id)
    return result


# --- Preview ------------------------------------------------------------------------


def check_start(name: str) -> None:
    """The quick part of the checks, done while the user waits: the header and the first row."""
    with open_csv(name) as (_header, records):
        if next(records, None) is None:
            raise ValidationError("The file has a header line but no rows.")


def scan(name: str, progress: Callable[[int], None] | None = None) -> dict:
    """Read the whole file once: counts, the first rows as parsed, and the invalid rows (capped)."""
    received_at = timezone.now()
    rows: list[dict] = []
    errors: list[dict] = []
    total = invalid = 0
    with open_csv(name) as (header, records):
        for line, cells in records:
            total += 1
            if progress is not None and total % SCAN_PROGRESS_ROWS == 0:
                progress(total)
            result = row_to_message(header, line, cells, received_at)
            if isinstance(result, Rejection):
                invalid += 1
                reason = result.reason.partition(": ")[2]
                if len(errors) < MAX_LISTED_ERRORS:
                    errors.append({"line": line, "reason": reason})
                if len(rows) < PREVIEW_ROWS:
                    rows.append({"line": line, "error": reason, "cells": _without_nul(cells)})
            elif len(rows) < PREVIEW_ROWS:
                rows.append(_preview_row(line, result))
    return {
        "columns": header.columns,
        "rows": rows,
        "errors": errors,
        "total": total,
        "invalid": invalid,
    }


def _preview_row(line: int, message: Message) -> dict:
    return {
        "line": line,
        "user_id": message.user_id,
        "event": message.activity,
        "timestamp": message.timestamp.isoformat(),
        "account_id": message.group_id or "",
        "message_id": message.message_id,
        "properties": message.properties,
    }


# --- Services -----------------------------------------------------------------------


def _delete_upload(job: CsvImport) -> None:
    # FileSystemStorage (and S3) treat a file already gone as deleted.
    if job.file.name:
        default_storage.delete(job.file.name)


def _check_upload(uploaded_file) -> None:
    name = uploaded_file.name or ""
    if not name.lower().endswith(".csv"):
        raise ValidationError(f"“{name}” is not a .csv file. Export your data as CSV (UTF-8) and upload that.")
    if uploaded_file.size == 0:
        raise ValidationError("The file is empty.")
    if uploaded_file.size > settings.CSV_IMPORT_MAX_BYTES:
        limit_mb = settings.CSV_IMPORT_MAX_BYTES // (1024 * 1024)
        raise ValidationError(f"The file is over {limit_mb} MB; split it into several files.")


def csv_import_create(*, tenant: Tenant, uploaded_file, created_by: User | None = None) -> CsvImport:
    """Store an uploaded CSV on disk, check its header, and queue the preview scan.

    Raises ValidationError (and keeps nothing) for a file that cannot be imported
    at all. Reading every row takes minutes for millions of rows, longer than an
    HTTP request may last, so that part runs in a task (in process when eager).
    """
    from .tasks import scan_csv_import

    _check_upload(uploaded_file)
    job = CsvImport(
        tenant=tenant,
        original_name=(uploaded_file.name or "upload.csv")[:255],
        size_bytes=uploaded_file.size,
        status=Status.SCANNING,
        created_by=created_by,
    )
    # The storage streams the upload in chunks; the name comes from upload_to, never from the user.
    job.file.save("upload.csv", uploaded_file, save=False)
    try:
        check_start(job.file.name)
        with transaction.atomic():
            job.save()
            job_id = job.pk
            scan_csv_import.delay_on_commit(job_id)
        return job
    except BaseException:
        _delete_upload(job)
        raise


def csv_import_scan(*, import_id: int) -> None:
    """Read the whole upload for its preview. Idempotent: only a job still being checked is scanned."""
    # A task given a job id: the job is what tells the tenant.
    job = CsvImport.objects.unscoped().filter(pk=import_id, status=Status.SCANNING).first()
    if job is None:
        return

    def progress(rows: int) -> None:
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(total_rows=rows, updated_at=timezone.now())

    try:
        summary = scan(job.file.name, progress)
    except Exception as exc:
        # Recorded on the job, not raised: the page shows why (and an eager run must not turn into a 500).
        if not isinstance(exc, ValidationError):
            log.exception("CSV import %s: the scan failed", job.public_id)
        message = exc.messages[0] if isinstance(exc, ValidationError) else f"The upload cannot be read: {exc}"
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(
            **CsvImport.failed_fields(message), updated_at=timezone.now()
        )
        _delete_upload(job)
        return
    CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk, status=Status.SCANNING).update(
        status=Status.UPLOADED,
        preview=summary,
        total_rows=summary["total"],
        valid_rows=summary["total"] - summary["invalid"],
        invalid_rows=summary["invalid"],
        updated_at=timezone.now(),
    )


@transaction.atomic
def csv_import_start(*, csv_import: CsvImport) -> CsvImport:
    """Queue the import job (or resume a failed one from its checkpoint) once the transaction commits."""
    from .tasks import run_csv_import

    job = CsvImport.objects.for_tenant(csv_import.tenant).select_for_update().get(pk=csv_import.pk)
    if job.status == Status.SCANNING:
        raise ValidationError("The file is still being checked; import it once its preview is ready.")
    if job.status not in (Status.UPLOADED, Status.FAILED):
        raise ValidationError(f"This import is {job.get_status_display().lower()} already.")
    if job.status == Status.FAILED and job.started_at is None:
        raise ValidationError(f"This file could not be read: {job.error} Upload a corrected file.")
    if job.valid_rows == 0:
        raise ValidationError("The file has no valid rows to import. Fix the rows listed below and upload it again.")
    if not job.file.name or not default_storage.exists(job.file.name):
        raise ValidationError("The uploaded file is gone from the server; upload it again.")
    job.status = Status.QUEUED
    job.error = ""
    job.finished_at = None
    job.updated_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "updated_at"])
    job_id = job.pk
    # After commit: a worker must see the queued row, and a rolled-back request queues nothing.
    run_csv_import.delay_on_commit(job_id)
    return job


def csv_import_run(*, import_id: int) -> None:
    """Run (or resume) an import job. Safe to call twice: a finished job is left alone."""
    # A task given a job id: the job is what tells the tenant.
    job = CsvImport.objects.unscoped().select_related("tenant").filter(pk=import_id).first()
    if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
        return
    now = timezone.now()
    CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(
        **CsvImport.running_fields(job.started_at), updated_at=now
    )
    try:
        finished = _import_rows(job)
    except Exception as exc:
        log.exception("CSV import %s failed", job.public_id)
        message = exc.messages[0] if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(
            **CsvImport.failed_fields(message), updated_at=timezone.now()
        )
        return
    if finished:
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk, status=Status.RUNNING).update(
            **CsvImport.succeeded_fields(), updated_at=timezone.now()
        )
        # The events are stored; the upload is no longer needed (a re-upload imports nothing new).
        _delete_upload(job)


def _import_rows(job: CsvImport) -> bool:
    """Import the rows after the job's checkpoint, chunk by chunk. False if another run took over."""
    offset = job.processed_rows
    chunk: list[tuple[int, list[str]]] = []
    with open_csv(job.file.name) as (header, records):
        for position, record in enumerate(records):
            if position < offset:
                continue  # imported by an earlier run of this job
            chunk.append(record)
            if len(chunk) == CHUNK_ROWS:
                if not _import_chunk(job, header, chunk, offset):
                    return False
                offset += len(chunk)
                chunk = []
        if chunk and not _import_chunk(job, header, chunk, offset):
            return False
    return True


def _import_chunk(job: CsvImport, header: Header, chunk: list[tuple[int, list[str]]], offset: int) -> bool:
    received_at = timezone.now()
    messages: list[Message] = []
    rejections: list[Rejection] = []
    for line, cells in chunk:
        result = row_to_message(header, line, cells, received_at)
        (rejections if isinstance(result, Rejection) else messages).append(result)
    with transaction.atomic():
        # The checkpoint moves in the same transaction as the events: a redelivered
        # task that finds it elsewhere knows another run is (or was) on this chunk.
        locked = (
            CsvImport.objects.for_tenant(job.tenant_id).select_for_update().filter(pk=job.pk)
            .values_list("processed_rows", "status")
        )
        processed, status = locked.get()
        if processed != offset or status != Status.RUNNING:
            return False
        result = ingest(tenant=job.tenant, messages=messages, rejections=rejections, source="csv")
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(
            processed_rows=offset + len(chunk),
            imported=F("imported") + result.stored,
            duplicates=F("duplicates") + result.duplicates,
            invalid=F("invalid") + len(rejections),
            updated_at=timezone.now(),
        )
    return True
