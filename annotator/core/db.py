"""Database helpers that depend on the vendor: the one place that asks which database this is."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.signals import post_delete, pre_delete
from django.db.models.sql import DeleteQuery


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


def rows_copy(model: type[models.Model], objs: Sequence[models.Model], *, fields: Sequence[Any] | None = None) -> list[int]:
    """PostgreSQL only: insert the rows exactly as given through COPY, ids from the table's sequence.

    Several times faster than an INSERT of the same rows for big JSON values (geometries,
    revisions): a multi-row INSERT goes through arrays whose text every value is escaped into.
    ``fields``: the columns written besides the id (default: every concrete one). The objects get
    their ids; they are returned in order. Nothing is prepared (no defaults, no ``auto_now``):
    see rows_insert for what bulk_create would have done first.
    """
    meta = model._meta
    assert meta.pk is not None
    columns_of = list(fields) if fields is not None else [f for f in meta.local_concrete_fields if not f.primary_key]
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy costs a lookup per value
    quote = db.ops.quote_name
    with db.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [meta.db_table, meta.pk.column, len(objs)])
        ids = sorted(row[0] for row in cursor.fetchall())
        columns = ", ".join(quote(column) for column in [meta.pk.column, *(f.column for f in columns_of)])
        # psycopg's own cursor (Django's has no COPY); its errors turned into Django's (IntegrityError…).
        with db.wrap_database_errors, cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for pk, obj in zip(ids, objs):
                copy.write_row([pk, *(f.get_db_prep_save(getattr(obj, f.attname), db) for f in columns_of)])
    for obj, pk in zip(objs, ids):
        obj.pk = pk
    return ids


def rows_insert(model: type[models.Model], objs: Sequence[models.Model], *, batch_size: int = 1000) -> None:
    """New rows in bulk, as ``bulk_create`` inserts them (``auto_now`` times set, related ids taken
    from the related objects, the objects marked saved with their ids): through COPY on
    PostgreSQL (rows_copy), in batches of ``batch_size`` elsewhere.

    No signals, no ``save()``, as with bulk_create; database triggers fire for every row either way.
    """
    if connection.vendor != "postgresql" or len(objs) < 2:
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return
    fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        for f in fields:
            f.pre_save(obj, add=True)  # auto_now / auto_now_add set the attribute, as an insert does
    rows_copy(model, objs, fields=fields)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS


def rows_delete_returning(queryset: models.QuerySet[Any], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """Delete the rows of ``queryset`` in one statement and return ``fields`` of each, converted as
    the ORM reads them (``DELETE ... RETURNING``: PostgreSQL, SQLite 3.35 and later).

    What a rewrite of rows needs to keep of them (their author, their creation time) without
    reading them first. As ``QuerySet._raw_delete``: no cascades, no signals; only for rows that
    nothing references with ``on_delete`` to emulate.
    """
    meta = queryset.model._meta
    if meta.related_objects or pre_delete.has_listeners(queryset.model) or post_delete.has_listeners(queryset.model):
        # A plain DELETE would skip what Model.delete does for them (cascades, SET NULL, signals).
        raise TypeError(f"rows_delete_returning: {meta.label} rows are referenced or observed; delete them through the ORM")
    db = connections[queryset.db]
    query = queryset.query.clone()
    query.__class__ = DeleteQuery
    sql, params = query.get_compiler(connection=db).as_sql()
    columns = [meta.get_field(name).get_col(meta.db_table) for name in fields]
    converters = [db.ops.get_db_converters(col) + col.get_db_converters(db) for col in columns]
    returning = ", ".join(db.ops.quote_name(col.target.column) for col in columns)
    with db.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {returning}", params)
        rows = cursor.fetchall()
    return [
        tuple(_converted(value, col, convert, db) for value, col, convert in zip(row, columns, converters)) for row in rows
    ]


def _converted(value: Any, expression: Any, converters: list[Any], db: Any) -> Any:
    for convert in converters:
        value = convert(value, expression, db)
    return value
