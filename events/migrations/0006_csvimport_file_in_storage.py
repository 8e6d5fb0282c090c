"""CsvImport.file_path (relative to IMPORT_DIR) becomes CsvImport.file, a FileField in the default storage.

Same column, renamed. A name is now relative to the storage (MEDIA_ROOT by default),
under imports/: the old default IMPORT_DIR was MEDIA_ROOT's default plus imports/,
so a pending upload keeps pointing at the same file.
"""

from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat

import events.models


def prefix_names(apps, schema_editor):
    CsvImport = apps.get_model("events", "CsvImport")
    CsvImport.objects.exclude(file="").update(file=Concat(Value("imports/"), F("file")))


def unprefix_names(apps, schema_editor):
    from django.db.models.functions import Substr

    CsvImport = apps.get_model("events", "CsvImport")
    CsvImport.objects.filter(file__startswith="imports/").update(file=Substr(F("file"), len("imports/") + 1))


class Migration(migrations.Migration):
    dependencies = [("events", "0005_event_end_user_locked_by_the_store_statement")]

    operations = [
        migrations.RenameField(model_name="csvimport", old_name="file_path", new_name="file"),
        migrations.AlterField(
            model_name="csvimport",
            name="file",
            field=models.FileField(blank=True, max_length=255, upload_to=events.models.csv_upload_to),
        ),
        migrations.RunPython(prefix_names, unprefix_names),
    ]
