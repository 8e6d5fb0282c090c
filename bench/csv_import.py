"""CSV backfill benchmark: generate an N-row file, preview it, import it, and report time and peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engagement_csvbench \\
        .venv/bin/python bench/csv_import.py --rows 200000

Uses the database in DATABASE_URL (create it first: `createdb engagement_csvbench`;
the script migrates it) and a throwaway tenant. Runs the import in process,
as the Celery task would. Peak RSS comes from getrusage, so it covers the
whole run: if the file were loaded into memory it would grow with --rows.
"""

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")

import django  # noqa: E402

django.setup()

from django.core.files.uploadedfile import UploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402

from accounts.models import Tenant  # noqa: E402
from events.csv_import import csv_import_create, csv_import_run  # noqa: E402
from events.models import CsvImport, Event  # noqa: E402

EVENTS = ["Logged in", "Added photo", "Edited photo", "Shared photo", "Commented on photo", "Invited friend"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with open(path, "w") as out:
        out.write("user_id,event,timestamp,account_id,properties.plan,properties.device\n")
        for i in range(rows):
            user = rng.randrange(5000)
            ts = start + timedelta(seconds=rng.randrange(90 * 86400))
            out.write(
                f"u{user},{rng.choice(EVENTS)},{ts.isoformat()},acct{user % 300},"
                f"{'paid' if user % 3 else 'free'},{rng.choice(['ios', 'android', 'web'])}\n"
            )
            if i % 997 == 0:
                out.write(f"u{user},Broken row,not-a-date,,,\n")  # an invalid row now and then


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    slug = f"csvbench-{int(time.time())}"
    tenant = Tenant.objects.create(name=slug, slug=slug, product_name="Bench", time_zone="UTC")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        write_csv(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.rows:,} valid rows, {size_mb:.1f} MB; peak RSS before upload {peak_mb():.0f} MB")
        started = time.perf_counter()
        with open(path, "rb") as handle:
            upload = UploadedFile(handle, "bench.csv", size=path.stat().st_size)
            job = csv_import_create(tenant=tenant, uploaded_file=upload)  # eager: the scan runs here
        job.refresh_from_db()
        preview_s = time.perf_counter() - started
        print(
            f"upload + preview scan: {preview_s:.1f} s ({job.total_rows:,} rows, {job.invalid_rows:,} invalid); "
            f"peak RSS {peak_mb():.0f} MB"
        )
        CsvImport.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(status=CsvImport.Status.QUEUED)
        started = time.perf_counter()
        csv_import_run(import_id=job.pk)
        import_s = time.perf_counter() - started
        job.refresh_from_db()
        print(
            f"import: {import_s:.1f} s, {job.imported / import_s:,.0f} events/s; status {job.status}, "
            f"imported {job.imported:,}, duplicates {job.duplicates:,}, invalid {job.invalid:,}; "
            f"peak RSS {peak_mb():.0f} MB"
        )
        assert Event.objects.for_tenant(tenant).count() == job.imported
    tenant.delete()


if __name__ == "__main__":
    main()
