"""CSV backfill: upload and preview, the import job, its progress, idempotency, roles and tenants."""

import pytest
from django.db.models import Sum
from django.urls import reverse

from engagement_site.celery import app as celery_app
from events import csv_import
from events.csv_import import csv_import_run, csv_import_scan, derive_message_id, parse_timestamp
from events.models import CsvImport, CustomerAccount, DailyActivityCount, Event, RejectedMessage
from tests.conftest import client_for

from .pages_helpers import csv_file, csv_text

GOOD = csv_text(
    [
        "u1,Added photo,2026-05-01T09:30:00Z",
        "u2,Shared photo,2026-05-01T10:00:00+02:00",
        "u1,Added photo,2026-05-02 08:00:00",
    ]
)

MIXED = (
    "user_id,event,timestamp,account_id,message_id,properties.plan,properties.count\n"
    "u1,Added photo,2026-05-01T09:30:00Z,acme,,paid,3\n"  # line 2: valid
    ",Added photo,2026-05-01T09:30:00Z,,,,\n"  # line 3: no user_id
    "u2,Shared photo,yesterday,,,,\n"  # line 4: bad timestamp
    "u3,,2026-05-01T09:30:00Z,,,,\n"  # line 5: no event
    "u4,Added photo,2026-05-01T09:30:00Z\n"  # line 6: too few cells
    '"u5","Commented\non photo",2026-05-03T00:00:00Z,,m-5,,\n'  # lines 7-8: valid, quoted newline
    f"u6,Added photo,2026-05-01T09:30:00Z,,{'x' * 101},,\n"  # line 9: message_id too long
    "u7,Added\x00photo,2026-05-01T09:30:00Z,,,,\n"  # line 10: NUL (PostgreSQL cannot store it)
    f"u8,Added photo,2026-05-01T09:30:00Z,{'a' * 256},,,\n"  # line 11: account_id over its column
)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    # The default storage is a FileSystemStorage following MEDIA_ROOT; uploads wait under imports/.
    settings.MEDIA_ROOT = tmp_path
    return tmp_path / "imports"


@pytest.fixture(autouse=True)
def eager():
    """Run Celery tasks in process, also when REDIS_URL turned eager mode off."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def editor_client(client, editor):
    return client_for(client, editor)


def imports_url(tenant):
    return reverse("events:imports", args=[tenant.slug])


@pytest.fixture
def upload(django_capture_on_commit_callbacks):
    """Upload a CSV; the preview scan, queued on commit, runs before this returns."""

    def post(client, tenant, text, name="events.csv"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(imports_url(tenant), {"file": csv_file(text, name)})

    return post


def start(client, job, callbacks):
    with callbacks(execute=True):
        return client.post(reverse("events:start_import", args=[job.tenant.slug, job.public_id]))


def files_in(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- Upload and preview -------------------------------------------------------------


def test_it_shows_the_upload_page(editor_client, tenant):
    response = editor_client.get(imports_url(tenant))
    assert response.status_code == 200
    assert b"Upload and preview" in response.content
    assert b"properties.&lt;name&gt;" in response.content


def test_it_previews_a_file_without_storing_events(editor_client, tenant, import_dir, upload):
    response = upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    assert response.status_code == 302
    assert response["Location"] == reverse("events:import_detail", args=[tenant.slug, job.public_id])
    assert (job.status, job.total_rows, job.valid_rows, job.invalid_rows) == ("uploaded", 3, 3, 0)
    assert len(files_in(import_dir)) == 1
    assert not Event.objects.filter(tenant=tenant).exists()

    page = editor_client.get(response["Location"])
    assert page.status_code == 200
    assert b"Import 3 rows" in page.content
    assert b"Shared photo" in page.content
    assert b"2026-05-01T08:00:00+00:00" in page.content  # +02:00 shown in UTC
    assert b"Every row is valid." in page.content


def test_the_preview_lists_every_invalid_row_with_its_line(editor_client, tenant, upload):
    upload(editor_client, tenant, MIXED)
    job = CsvImport.objects.get(tenant=tenant)
    assert (job.total_rows, job.valid_rows, job.invalid_rows) == (9, 2, 7)
    errors = {e["line"]: e["reason"] for e in job.preview["errors"]}
    assert errors == {
        3: "user_id is required",
        4: "timestamp is not an ISO-8601 date: 'yesterday'",
        5: "event is required",
        6: "has 3 cells, the header has 7",
        9: "message_id must be at most 100 characters",
        10: "contains a NUL character",
        11: "account_id must be at most 255 characters",
    }
    page = editor_client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id]))
    content = page.content.decode()
    assert "<td>4</td><td class=\"error\">timestamp is not an ISO-8601 date: &#x27;yesterday&#x27;</td>" in content
    assert "has 3 cells, the header has 7" in content
    assert "Import 2 rows" in content


def test_the_preview_caps_the_listed_errors(editor_client, tenant, monkeypatch, upload):
    monkeypatch.setattr(csv_import, "MAX_LISTED_ERRORS", 3)
    upload(editor_client, tenant, csv_text([f"u{i},E,not-a-date" for i in range(10)] + ["u1,E,2026-01-01"]))
    job = CsvImport.objects.get(tenant=tenant)
    assert (job.invalid_rows, len(job.preview["errors"])) == (10, 3)
    page = editor_client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id]))
    assert b"and 7 more invalid rows" in page.content


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "is not a .csv file"),
        ("events.csv", b"\xff\xfe\x00\x00binary\x00", "not UTF-8 text"),
        ("events.csv", b"", "The submitted file is empty."),
        ("events.csv", b"user_id,event\nu1,Signed up\n", "Missing required column: timestamp."),
        ("events.csv", b"user_id,event,timestamp,plan\nu1,E,2026-01-01,free\n", "Unknown column: plan."),
        ("events.csv", b"user_id,event,timestamp,event\nu1,E,2026-01-01,E\n", "Repeated column: event."),
        ("events.csv", b"user_id,event,timestamp\n", "The file has a header line but no rows."),
        ("events.csv", b'user_id,event,timestamp\n"u1,' + b"x" * 140_000, "not valid CSV at line 2"),
    ],
)
def test_it_rejects_a_file_it_cannot_import(editor_client, tenant, import_dir, name, content, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = editor_client.post(imports_url(tenant), {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 400
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert not CsvImport.objects.unscoped().exists()
    assert files_in(import_dir) == []


def test_a_file_broken_further_down_fails_its_check(editor_client, tenant, import_dir, upload):
    text = 'user_id,event,timestamp\nu1,E,2026-01-01\n"u2,' + "x" * 140_000
    response = upload(editor_client, tenant, text)
    job = CsvImport.objects.get(tenant=tenant)
    assert response.status_code == 302
    assert job.status == "failed"
    assert job.error.startswith("The file is not valid CSV at line 3")
    assert files_in(import_dir) == []
    page = editor_client.get(response["Location"]).content.decode()
    assert "This file cannot be imported" in page and "not valid CSV at line 3" in page
    response = editor_client.post(reverse("events:start_import", args=[tenant.slug, job.public_id]))
    assert response.status_code == 400
    assert "This file could not be read" in response.content.decode()


def test_a_big_file_is_checked_in_the_background(editor_client, tenant):
    # Without running the on-commit task: what the page shows while a worker reads the file.
    editor_client.post(imports_url(tenant), {"file": csv_file(GOOD)})
    job = CsvImport.objects.get(tenant=tenant)
    assert (job.status, job.total_rows) == ("scanning", 0)
    page = editor_client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id])).content.decode()
    assert "Checking the file" in page and 'data-status="scanning"' in page
    assert '/static/django_htmx/htmx-2.min.js' in page
    progress_url = reverse("events:import_progress", args=[tenant.slug, job.public_id])
    assert f'hx-get="{progress_url}"' in page
    assert "rows read so far" in editor_client.get(progress_url).content.decode()
    status = editor_client.get(reverse("events:import_status", args=[tenant.slug, job.public_id])).json()
    assert (status["status"], status["finished"]) == ("scanning", False)
    response = editor_client.post(reverse("events:start_import", args=[tenant.slug, job.public_id]))
    assert response.status_code == 400
    assert b"still being checked" in response.content
    csv_import_scan(import_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.total_rows, job.valid_rows) == ("uploaded", 3, 3)
    csv_import_scan(import_id=job.pk)  # delivered twice: nothing changes
    job.refresh_from_db()
    assert job.status == "uploaded"


def test_it_requires_a_file(editor_client, tenant):
    response = editor_client.post(imports_url(tenant), {})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert not CsvImport.objects.unscoped().exists()


def test_it_accepts_a_byte_order_mark_and_column_names_in_any_case(editor_client, tenant, upload):
    upload(editor_client, tenant, "\ufeffUser_ID,Event,TIMESTAMP\nu1,Signed up,2026-01-01\n")
    job = CsvImport.objects.get(tenant=tenant)
    assert (job.valid_rows, job.invalid_rows) == (1, 0)


# --- The import job -----------------------------------------------------------------


def test_it_goes_through_the_storage_api_only(
    editor_client, tenant, import_dir, settings, django_capture_on_commit_callbacks, upload
):
    """No shared disk between web and workers: any configured storage (here in memory) works."""
    from django.core.files.storage import default_storage

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    upload(editor_client, tenant, MIXED)
    job = CsvImport.objects.get(tenant=tenant)
    assert job.file.name.startswith(f"imports/{tenant.pk}/") and job.file.name.endswith(".csv")
    assert default_storage.exists(job.file.name) and files_in(import_dir) == []
    start(editor_client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.imported) == ("succeeded", 2)
    assert not default_storage.exists(job.file.name)  # deleted once imported


def test_it_imports_the_valid_rows(editor_client, tenant, import_dir, django_capture_on_commit_callbacks, upload):
    upload(editor_client, tenant, MIXED)
    job = CsvImport.objects.get(tenant=tenant)
    response = start(editor_client, job, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.imported, job.duplicates, job.invalid) == ("succeeded", 9, 2, 0, 7)
    assert job.started_at and job.finished_at
    assert files_in(import_dir) == []  # the upload is deleted once imported

    first = Event.objects.get(tenant=tenant, end_user__user_id="u1")
    assert first.payload["properties"] == {"plan": "paid", "count": 3}
    assert first.account == CustomerAccount.objects.get(tenant=tenant, group_id="acme")
    assert first.message_id.startswith("csv-") and len(first.message_id) <= 100
    second = Event.objects.get(tenant=tenant, message_id="m-5")
    assert second.activity.name == "Commented\non photo"

    rejected = RejectedMessage.objects.filter(tenant=tenant, source="csv")
    reasons = sorted(r.reason for r in rejected)
    assert len(reasons) == 7
    assert "line 3: user_id is required" in reasons
    assert "line 9: message_id must be at most 100 characters" in reasons

    page = editor_client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id]))
    assert page.status_code == 200
    assert b"Succeeded" in page.content
    assert b'<progress max="100" value="100"' in page.content


def test_importing_the_same_file_twice_adds_nothing(
    editor_client, tenant, django_capture_on_commit_callbacks, upload
):
    upload(editor_client, tenant, GOOD)
    start(editor_client, CsvImport.objects.get(tenant=tenant), django_capture_on_commit_callbacks)
    events = Event.objects.filter(tenant=tenant).count()
    rollup = list(DailyActivityCount.objects.filter(tenant=tenant).values_list("end_user", "activity", "day", "count"))
    assert events == 3

    upload(editor_client, tenant, GOOD, name="again.csv")
    second = CsvImport.objects.get(tenant=tenant, original_name="again.csv")
    start(editor_client, second, django_capture_on_commit_callbacks)
    second.refresh_from_db()
    assert (second.status, second.imported, second.duplicates) == ("succeeded", 0, 3)
    assert Event.objects.filter(tenant=tenant).count() == events
    assert (
        list(DailyActivityCount.objects.filter(tenant=tenant).values_list("end_user", "activity", "day", "count"))
        == rollup
    )


def test_it_imports_in_chunks_and_counts_each(
    editor_client, tenant, django_capture_on_commit_callbacks, monkeypatch, upload
):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    rows = [f"u{i % 3},Logged in,2026-04-{1 + i % 20:02d}T10:00:00Z" for i in range(9)]
    rows.append("u1,Logged in,2026-04-02T10:00:00Z")  # the same as row 2: a duplicate
    upload(editor_client, tenant, csv_text(rows))
    job = CsvImport.objects.get(tenant=tenant)
    start(editor_client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.processed_rows, job.imported, job.duplicates) == (10, 9, 1)
    assert DailyActivityCount.objects.filter(tenant=tenant).aggregate(n=Sum("count"))["n"] == 9


def test_the_task_is_idempotent_and_resumes_after_its_checkpoint(editor_client, tenant, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    # As if a first run had stored the first two rows, then died.
    CsvImport.objects.unscoped().filter(pk=job.pk).update(status="running", processed_rows=2)
    csv_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.imported) == ("succeeded", 3, 1)
    assert list(Event.objects.filter(tenant=tenant).values_list("end_user__user_id", flat=True)) == ["u1"]
    # Delivered again: a finished job is left alone.
    csv_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert (job.processed_rows, job.imported) == (3, 1)
    assert Event.objects.filter(tenant=tenant).count() == 1


def test_a_missing_file_fails_the_job_with_a_reason(editor_client, tenant, import_dir, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    CsvImport.objects.unscoped().filter(pk=job.pk).update(status="queued")
    for path in files_in(import_dir):
        path.unlink()
    csv_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "FileNotFoundError" in job.error


def test_it_cannot_start_twice(editor_client, tenant, django_capture_on_commit_callbacks, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    start(editor_client, job, django_capture_on_commit_callbacks)
    response = start(editor_client, job, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert b"This import is succeeded already." in response.content
    assert Event.objects.filter(tenant=tenant).count() == 3


def test_a_file_without_valid_rows_cannot_start(editor_client, tenant, django_capture_on_commit_callbacks, upload):
    upload(editor_client, tenant, csv_text(["u1,E,not-a-date"]))
    job = CsvImport.objects.get(tenant=tenant)
    assert b"No row of this file can be imported" in editor_client.get(
        reverse("events:import_detail", args=[tenant.slug, job.public_id])
    ).content
    response = start(editor_client, job, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert b"no valid rows" in response.content
    job.refresh_from_db()
    assert job.status == "uploaded"


def test_derived_message_ids_are_stable_and_content_based():
    ts = parse_timestamp("2026-05-01T09:30:00Z")
    same = derive_message_id("u1", "E", ts, "", {"b": "2", "a": "1"})
    assert same == derive_message_id("u1", "E", parse_timestamp("2026-05-01T11:30:00+02:00"), "", {"a": "1", "b": "2"})
    assert same != derive_message_id("u1", "E", ts, "acme", {"a": "1", "b": "2"})
    assert same.startswith("csv-") and len(same) == 44


# --- Progress -----------------------------------------------------------------------


def test_the_status_endpoint_reports_progress(editor_client, tenant, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    CsvImport.objects.unscoped().filter(pk=job.pk).update(status="running", processed_rows=1, imported=1)
    response = editor_client.get(reverse("events:import_status", args=[tenant.slug, job.public_id]))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(job.public_id),
        "status": "running",
        "status_label": "Running",
        "finished": False,
        "total_rows": 3,
        "processed_rows": 1,
        "percent": 33,
        "imported": 1,
        "duplicates": 0,
        "invalid": 0,
        "error": "",
    }
    page = editor_client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id]))
    assert b'src="/static/django_htmx/htmx-2.min.js"' in page.content
    progress_url = reverse("events:import_progress", args=[tenant.slug, job.public_id])
    assert f'hx-get="{progress_url}" hx-trigger="every 1500ms"'.encode() in page.content
    card = editor_client.get(progress_url).content.decode()
    assert "<html" not in card and "33%" in card and "1/3 rows" in card and "hx-trigger" in card
    CsvImport.objects.for_tenant(tenant).filter(pk=job.pk).update(status="succeeded", processed_rows=3, imported=3)
    card = editor_client.get(progress_url).content.decode()
    # Finished: the card shows the outcome and stops polling.
    assert "Succeeded" in card and "100%" in card and "hx-trigger" not in card


def test_the_progress_card_reloads_the_page_when_the_preview_is_ready(editor_client, tenant, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    assert job.status == "uploaded"
    response = editor_client.get(reverse("events:import_progress", args=[tenant.slug, job.public_id]))
    assert response.status_code == 200 and response["HX-Refresh"] == "true"


def test_the_status_endpoint_only_answers_get(editor_client, tenant, upload):
    upload(editor_client, tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    assert editor_client.post(reverse("events:import_status", args=[tenant.slug, job.public_id])).status_code == 405
    assert editor_client.get(reverse("events:start_import", args=[tenant.slug, job.public_id])).status_code == 405


# --- Roles and tenants --------------------------------------------------------------


def test_a_viewer_reads_but_cannot_upload_or_start(
    client, tenant, editor, viewer, import_dir, django_capture_on_commit_callbacks, upload
):
    upload(client_for(client, editor), tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    client.force_login(viewer)
    assert client.get(imports_url(tenant)).status_code == 200
    assert b"Editors and above upload files" in client.get(imports_url(tenant)).content
    assert client.get(reverse("events:import_detail", args=[tenant.slug, job.public_id])).status_code == 200
    assert client.get(reverse("events:import_status", args=[tenant.slug, job.public_id])).status_code == 200

    assert upload(client, tenant, GOOD).status_code == 403
    assert CsvImport.objects.unscoped().count() == 1 and len(files_in(import_dir)) == 1
    assert start(client, job, django_capture_on_commit_callbacks).status_code == 403
    job.refresh_from_db()
    assert job.status == "uploaded"
    assert not Event.objects.unscoped().exists()


def test_it_checks_the_tenant(
    client, tenant, editor, outsider, other_tenant, django_capture_on_commit_callbacks, upload
):
    upload(client_for(client, editor), tenant, GOOD)
    job = CsvImport.objects.get(tenant=tenant)
    client.force_login(outsider)
    for name in ("import_detail", "import_status", "import_progress"):
        assert client.get(reverse(f"events:{name}", args=[tenant.slug, job.public_id])).status_code == 404
        # Tenant A's import through the outsider's own workspace is a 404 too.
        assert client.get(reverse(f"events:{name}", args=[other_tenant.slug, job.public_id])).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("events:start_import", args=[other_tenant.slug, job.public_id]))
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == "uploaded"
    assert b"events.csv" not in client.get(imports_url(other_tenant)).content


# --- With a real broker and worker (PostgreSQL + Redis) -------------------------------


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_runs_the_scan_and_the_import(postgres, redis_url, client, editor, tenant):
    """Through Redis: the upload and the Import click only queue work; a worker does it."""
    import time

    from celery.contrib.testing.worker import start_worker

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            client.force_login(editor)
            client.post(imports_url(tenant), {"file": csv_file(GOOD)})
            job = CsvImport.objects.get(tenant=tenant)
            status_url = reverse("events:import_status", args=[tenant.slug, job.public_id])
            for _ in range(100):
                if client.get(status_url).json()["status"] == "uploaded":
                    break
                time.sleep(0.1)
            client.post(reverse("events:start_import", args=[tenant.slug, job.public_id]))
            for _ in range(100):
                status = client.get(status_url).json()
                if status["finished"]:
                    break
                time.sleep(0.1)
    finally:
        celery_app.conf.task_always_eager = previous
    assert (status["status"], status["imported"], status["percent"]) == ("succeeded", 3, 100)
    assert Event.objects.filter(tenant=tenant).count() == 3
