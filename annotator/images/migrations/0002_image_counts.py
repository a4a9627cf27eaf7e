"""Per-(project, status, assignee, reviewer) image counts kept by triggers; indexes for the queues.

The triggers are the one place these counts change: every write to images_image (any app,
update(), bulk inserts, cascades) goes through them, in the writer's transaction. They
only append rows (+1 / -1), so no writer ever waits on another's counter row.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


_INSERT = "INSERT INTO images_imagecount (project_id, status, assignee_pk, reviewer_pk, count) VALUES"


def _row(ref: str, delta: int) -> str:
    return f"({ref}.project_id, {ref}.status, COALESCE({ref}.assignee_id, 0), COALESCE({ref}.reviewer_id, 0), {delta})"


_POSTGRES = f"""
CREATE FUNCTION images_image_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_INSERT} {_row('NEW', 1)};
    ELSIF TG_OP = 'DELETE' THEN
        {_INSERT} {_row('OLD', -1)};
    ELSIF (OLD.project_id, OLD.status, OLD.assignee_id, OLD.reviewer_id)
          IS DISTINCT FROM (NEW.project_id, NEW.status, NEW.assignee_id, NEW.reviewer_id) THEN
        {_INSERT} {_row('OLD', -1)}, {_row('NEW', 1)};
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER images_image_count AFTER INSERT OR DELETE OR UPDATE OF project_id, status, assignee_id, reviewer_id
    ON images_image FOR EACH ROW EXECUTE FUNCTION images_image_count();

CREATE FUNCTION images_image_count_project_gone() RETURNS trigger AS $$
BEGIN
    DELETE FROM images_imagecount WHERE project_id = OLD.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER images_image_count_project_gone AFTER DELETE ON projects_project
    FOR EACH ROW EXECUTE FUNCTION images_image_count_project_gone();
"""

_POSTGRES_DROP = """
DROP TRIGGER IF EXISTS images_image_count_project_gone ON projects_project;
DROP TRIGGER IF EXISTS images_image_count ON images_image;
DROP FUNCTION IF EXISTS images_image_count_project_gone();
DROP FUNCTION IF EXISTS images_image_count();
"""


_SQLITE = [
    f"CREATE TRIGGER images_image_count_insert AFTER INSERT ON images_image BEGIN {_INSERT} {_row('NEW', 1)}; END",
    f"CREATE TRIGGER images_image_count_delete AFTER DELETE ON images_image BEGIN {_INSERT} {_row('OLD', -1)}; END",
    "CREATE TRIGGER images_image_count_update AFTER UPDATE OF project_id, status, assignee_id, reviewer_id ON images_image "
    "WHEN OLD.project_id IS NOT NEW.project_id OR OLD.status IS NOT NEW.status "
    "OR OLD.assignee_id IS NOT NEW.assignee_id OR OLD.reviewer_id IS NOT NEW.reviewer_id "
    f"BEGIN {_INSERT} {_row('OLD', -1)}, {_row('NEW', 1)}; END",
    "CREATE TRIGGER images_image_count_project_gone AFTER DELETE ON projects_project "
    "BEGIN DELETE FROM images_imagecount WHERE project_id = OLD.id; END",
]

_SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "images_image_count_insert", "images_image_count_delete", "images_image_count_update", "images_image_count_project_gone")]

_BACKFILL = """
INSERT INTO images_imagecount (project_id, status, assignee_pk, reviewer_pk, count)
SELECT project_id, status, COALESCE(assignee_id, 0), COALESCE(reviewer_id, 0), COUNT(*) FROM images_image
GROUP BY project_id, status, COALESCE(assignee_id, 0), COALESCE(reviewer_id, 0)
"""


# PostgreSQL puts NULLs first in a descending index and last in an ascending one; the queues
# want the opposite, as SQLite does by default (NULL is its smallest value), and SQLite refuses
# the NULLS clauses in an index.
_ORDERED_INDEXES = {
    "postgresql": [
        "CREATE INDEX image_queue_uncertain_idx ON images_image "
        "(project_id, status, priority DESC, uncertainty DESC NULLS LAST, id) WHERE assignee_id IS NULL",
        "CREATE INDEX image_review_free_idx ON images_image "
        "(project_id, status, priority DESC, submitted_at ASC NULLS FIRST, id) WHERE reviewer_id IS NULL",
    ],
    "sqlite": [
        "CREATE INDEX image_queue_uncertain_idx ON images_image "
        "(project_id, status, priority DESC, uncertainty DESC, id) WHERE assignee_id IS NULL",
        "CREATE INDEX image_review_free_idx ON images_image "
        "(project_id, status, priority DESC, submitted_at ASC, id) WHERE reviewer_id IS NULL",
    ],
}


def _create_triggers(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"image counts need triggers written for {vendor}")
    statements = [_POSTGRES] if vendor == "postgresql" else _SQLITE
    for statement in statements + [_BACKFILL] + _ORDERED_INDEXES[vendor]:
        schema_editor.execute(statement)


def _drop_triggers(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    statements = [_POSTGRES_DROP] if schema_editor.connection.vendor == "postgresql" else list(_SQLITE_DROP)
    statements += ["DROP INDEX IF EXISTS image_queue_uncertain_idx", "DROP INDEX IF EXISTS image_review_free_idx"]
    for statement in statements:
        schema_editor.execute(statement)



class Migration(migrations.Migration):

    dependencies = [
        ('images', '0001_initial'),
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ImageCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('new', 'New'), ('in_progress', 'In progress'), ('submitted', 'Submitted'), ('in_review', 'In review'), ('accepted', 'Accepted'), ('rejected', 'Rejected')], max_length=20)),
                ('assignee_pk', models.IntegerField(default=0)),
                ('reviewer_pk', models.IntegerField(default=0)),
                ('count', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(models.F('project'), models.F('status'), models.OrderBy(models.F('priority'), descending=True), models.F('id'), condition=models.Q(('assignee__isnull', True)), name='image_queue_free_idx'),
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(fields=['assignee', 'project', 'status'], name='image_assignee_idx'),
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(fields=['reviewer', 'project', 'status'], name='image_reviewer_idx'),
        ),
        migrations.AddField(
            model_name='imagecount',
            name='project',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='projects.project'),
        ),
        migrations.RunPython(_create_triggers, _drop_triggers),
    ]
