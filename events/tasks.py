"""Celery tasks of the events app: thin wrappers that take ids and call a service."""

from celery import shared_task

from accounts import rls

from . import partitions
from .csv_import import csv_import_run, csv_import_scan
from .models import CsvImport


@shared_task(name="events.run_csv_import")
def run_csv_import(import_id: int) -> None:
    """Import (or resume) a CSV backfill job; a finished job is left alone, so redelivery is harmless."""
    with rls.task_scope(CsvImport, import_id):
        csv_import_run(import_id=import_id)


@shared_task(name="events.scan_csv_import")
def scan_csv_import(import_id: int) -> None:
    """Read an uploaded CSV once for its preview (counts, first rows, invalid rows)."""
    with rls.task_scope(CsvImport, import_id):
        csv_import_scan(import_id=import_id)


@shared_task(name="events.maintain_partitions")
def maintain_partitions() -> dict:
    """Beat: the event table's months ahead, months moved out of the DEFAULT partition, then retention."""
    created = partitions.ensure_partitions()
    done = partitions.apply_retention()
    return {"created": created, **done}
