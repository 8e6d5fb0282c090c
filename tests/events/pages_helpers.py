"""Helpers for the events page tests: send events through the real ingestion path, build CSV files."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from events.models import Activity, CsvImport
from events.services import ingest
from events.wire import Rejection, normalize


def send(tenant, *raws, source="api"):
    """Normalise raw Segment messages and ingest them, as the HTTP API does."""
    now = timezone.now()
    messages, rejections = [], []
    for raw in raws:
        result = normalize(raw, kind="batch", received_at=now, batch_sent_at=None)
        (rejections if isinstance(result, Rejection) else messages).append(result)
    return ingest(tenant=tenant, messages=messages, rejections=rejections, source=source)


def track(user_id, event, timestamp=None, **extra):
    raw = {"type": "track", "userId": user_id, "event": event, **extra}
    if timestamp is not None:
        raw["timestamp"] = timestamp.isoformat() if hasattr(timestamp, "isoformat") else timestamp
    return raw


def csv_file(text: str, name: str = "events.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def csv_text(rows, header="user_id,event,timestamp") -> str:
    out = io.StringIO()
    out.write(header + "\n")
    for row in rows:
        out.write(row + "\n")
    return out.getvalue()


def events_isolation_ids(tenant) -> dict:
    """Sample objects of tenant A for the URL sweep in tests/test_tenant_isolation.py."""
    send(tenant, track("sweep-user", "Swept"))
    job = CsvImport.objects.create(tenant=tenant, original_name="sweep.csv", file="imports/none.csv", total_rows=1)
    return {
        "activity_id": Activity.objects.for_tenant(tenant).get(name="Swept").public_id,
        "import_id": job.public_id,
    }
