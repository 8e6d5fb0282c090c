"""events_event partitioned by month on PostgreSQL, the dedupe ids filled in (events/partitions.py).

Every stored message id goes into events_messageid, on both vendors: it is the
dedupe from now on. On PostgreSQL (unless EVENTS_PARTITIONED=0, the
benchmark's baseline) the table is rebuilt as `PARTITION BY RANGE (day)`: one
partition per month that has events, the current month and the months ahead,
and a DEFAULT partition; rows are copied (a long step on a big table: plan it
like any table rewrite), and both tables go under the tenant policy.
"""

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    from accounts import rls
    from events import partitions

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_messageid (tenant_id, message_id)"
            " SELECT DISTINCT tenant_id, message_id FROM events_event WHERE true ON CONFLICT DO NOTHING"
        )
        if connection.vendor != "postgresql":
            return
        for statement in rls.enable_sql("events_messageid"):
            cursor.execute(statement)
        if settings.EVENTS_PARTITIONED:
            partitions.convert(cursor)


def backwards(apps, schema_editor):
    from events import partitions

    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('events_event')")
        if cursor.fetchone()[0] == "p":
            partitions.unconvert(cursor)


class Migration(migrations.Migration):
    dependencies = [("events", "0008_trait_times_and_message_ids")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
