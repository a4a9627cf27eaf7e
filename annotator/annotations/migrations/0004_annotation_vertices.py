"""Annotation.vertices: each object's point count, for the per-image limit of partial saves."""
from django.db import migrations, models

from ml.geometry import vertex_count


def count_vertices(apps, schema_editor):
    Annotation = apps.get_model("annotations", "Annotation")
    rows = Annotation.objects.filter(kind="polygons").only("id", "polygons").order_by("id")
    batch = []
    for row in rows.iterator(chunk_size=2000):
        row.vertices = vertex_count({"type": "polygons", "polygons": row.polygons or []})
        batch.append(row)
        if len(batch) == 2000:
            Annotation.objects.bulk_update(batch, ["vertices"])
            batch = []
    Annotation.objects.bulk_update(batch, ["vertices"])


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0003_revision_action_consensus"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="vertices",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(count_vertices, migrations.RunPython.noop),
    ]
