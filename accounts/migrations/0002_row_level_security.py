"""Row-level security on every tenant table, and the application role (see accounts/rls.py).

A later migration that adds a tenant table must put it under the policy too
(`accounts.rls.enable_sql(table)` in a RunSQL/RunPython); the role audit test
(tests/accounts/test_rls.py) fails for a tenant table without it.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from accounts import rls

    rls.install(schema_editor)


def backwards(apps, schema_editor):
    from accounts import rls

    rls.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("events", "0005_event_end_user_locked_by_the_store_statement"),
        ("scoring", "0003_userscore_points_index"),
        ("surveys", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
