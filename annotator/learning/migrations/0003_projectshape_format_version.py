from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def record_formats(apps, schema_editor):
    """The format of each stored shape, read from its file (an upgrade from format 2 relearns it at the next accept)."""
    from ml.shape_prior import file_format

    ProjectShape = apps.get_model("learning", "ProjectShape")
    for shape in ProjectShape.objects.all().only("pk", "project_id"):
        path = Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{int(shape.project_id)}" / "shape.npz"
        ProjectShape.objects.filter(pk=shape.pk).update(format_version=file_format(path))


class Migration(migrations.Migration):

    dependencies = [
        ('learning', '0002_projectshape'),
    ]

    operations = [
        migrations.AddField(
            model_name='projectshape',
            name='format_version',
            field=models.PositiveSmallIntegerField(blank=True, help_text="ml.shape_prior's format of its file (None: unknown). One older than the code's is learned again at the next accept.", null=True),
        ),
        migrations.RunPython(record_formats, migrations.RunPython.noop),
    ]
