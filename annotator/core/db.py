"""Database helpers that depend on the vendor: the one place that asks which database this is."""
from __future__ import annotations

from django.db import connection, models


def table_statistics_refresh(*tables: type[models.Model]) -> None:
    """Refresh the planner's statistics of the tables after a bulk write (PostgreSQL ``ANALYZE``).

    Autovacuum analyses a table only after a while: until then the planner knows nothing of the
    rows a bulk import just added (it estimated one row where there were 16,000) and picks plans
    for an empty table. Outside a transaction only: inside one, the rows are not visible to others
    yet and the statistics would describe what may still roll back. SQLite plans without them.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
