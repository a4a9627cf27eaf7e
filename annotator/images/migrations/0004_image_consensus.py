"""Consensus on images: whether several annotators' versions are being collected (replicas_open),
their agreement; the review queue's index follows its new order (lowest agreement first within
a priority).

As in 0003: SQLite rebuilds images_image to add a NOT NULL column (and projects 0005 rebuilds
projects_project for its constraint), and rebuilt tables lose the count triggers and the ordered
indexes that 0002 wrote in SQL; they are written again here, after both.
"""
from importlib import import_module

from django.db import migrations, models

_counts = import_module("annotator.images.migrations.0002_image_counts")

# Spelled per database as in 0002: PostgreSQL keeps the NULLS clauses of the queue's ORDER BY
# (an image without agreement, drawn by one annotator, comes after those with one).
_REVIEW_INDEX = {
    "postgresql": "CREATE INDEX image_review_free_idx ON images_image (project_id, status, priority DESC, "
                  "agreement ASC NULLS LAST, submitted_at ASC NULLS FIRST, id) WHERE reviewer_id IS NULL",
    "sqlite": "CREATE INDEX image_review_free_idx ON images_image "
              "(project_id, status, priority DESC, agreement ASC, submitted_at ASC, id) WHERE reviewer_id IS NULL",
}
_OTHER_INDEXES = [s for s in _counts._ORDERED_INDEXES["sqlite"] if "image_review_free_idx" not in s]


def _forward(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    statements = ["DROP INDEX IF EXISTS image_review_free_idx"]
    if vendor == "sqlite":
        statements = [*_counts._SQLITE_DROP, "DROP INDEX IF EXISTS image_queue_uncertain_idx", *statements,
                      *_counts._SQLITE, *_OTHER_INDEXES]
    for statement in [*statements, _REVIEW_INDEX[vendor]]:
        schema_editor.execute(statement)


def _backward(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    statements = ["DROP INDEX IF EXISTS image_review_free_idx"]
    if vendor == "sqlite":
        statements = [*_counts._SQLITE_DROP, "DROP INDEX IF EXISTS image_queue_uncertain_idx", *statements, *_counts._SQLITE]
    for statement in [*statements, *_counts._ORDERED_INDEXES[vendor]]:
        if vendor == "postgresql" and "image_queue_uncertain_idx" in statement:
            continue  # PostgreSQL kept it
        schema_editor.execute(statement)


def _drop_review_index(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    schema_editor.execute("DROP INDEX IF EXISTS image_review_free_idx")


class Migration(migrations.Migration):

    dependencies = [
        ('images', '0003_image_ground_truth'),
        ('projects', '0005_project_consensus'),
    ]

    operations = [
        # Unapplied, the operations run backwards: this one then comes after the columns are gone.
        migrations.RunPython(migrations.RunPython.noop, _backward),
        migrations.AddField(
            model_name='image',
            name='agreement',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='image',
            name='replicas_open',
            field=models.BooleanField(default=False),
        ),
        # Unapplied, this one runs first: the index naming `agreement` goes before the column.
        migrations.RunPython(_forward, _drop_review_index),
    ]
