"""Image.is_ground_truth.

SQLite cannot add a NOT NULL column in place: Django rebuilds images_image, and the rebuilt table
has neither the count triggers nor the ordered queue indexes that migration 0002 wrote in SQL.
They are written again here (PostgreSQL adds the column in place and keeps them). The kept
counts themselves are untouched: no image changed while the table was rebuilt.
"""
from importlib import import_module

from django.db import migrations, models

_counts = import_module("annotator.images.migrations.0002_image_counts")


def _sqlite_triggers_again(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    statements = list(_counts._SQLITE_DROP) + ["DROP INDEX IF EXISTS image_queue_uncertain_idx", "DROP INDEX IF EXISTS image_review_free_idx"]
    for statement in statements + _counts._SQLITE + _counts._ORDERED_INDEXES["sqlite"]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('images', '0002_image_counts'),
    ]

    operations = [
        # Unapplied, the operations run backwards: this one then comes after the column is gone.
        migrations.RunPython(migrations.RunPython.noop, _sqlite_triggers_again),
        migrations.AddField(
            model_name='image',
            name='is_ground_truth',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(_sqlite_triggers_again, migrations.RunPython.noop),
    ]
