"""Bulk writes of many rows in one statement each, for the leader's step.

Django's `bulk_update` builds a `CASE WHEN` expression per value and resolves it
in Python, which costs far more than the database's own work; `bulk_create`
builds a model instance per row. These write plain values with one
`INSERT ... VALUES` or `UPDATE ... FROM (VALUES ...)` per batch,
with each value prepared by its model field (so dates, durations and JSON are
stored exactly as the ORM stores them), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models

MAX_PARAMS = {"sqlite": 900, "postgresql": 30_000}  # parameters per statement


@contextlib.contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor that binds values on the client: these statements are long and vary in
    length, so preparing them on the server (the connections' default) costs more."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with psycopg.ClientCursor(connection.connection) as cursor:
        yield cursor


def _fields(model: type[models.Model], names: Sequence[str]) -> list[Any]:
    """Model fields by name or by attname (`backend_id` for the `backend` foreign key)."""
    found = []
    for name in names:
        try:
            found.append(model._meta.get_field(name))
        except FieldDoesNotExist:
            found.append(model._meta.get_field(name.removesuffix("_id")))
    return found


def _batches(rows: Sequence[Any], width: int) -> list[Sequence[Any]]:
    size = max(1, MAX_PARAMS.get(connection.vendor, 900) // max(1, width))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def insert(
    model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Insert `rows` (values in the order of field `names`; other fields take their
    defaults); returns their primary keys."""
    if not rows:
        return []
    fields = _fields(model, names)
    given = {field.name for field in fields}
    rest = [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in given]
    if rest:
        defaults = tuple(f.get_default() for f in rest)
        fields += rest
        rows = [(*row, *defaults) for row in rows]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    table = quote(model._meta.db_table)
    pk_field: Any = model._meta.pk
    pk = quote(pk_field.column)
    keys: list[int] = []
    with _cursor() as cursor:
        for batch in _batches(rows, len(fields)):
            values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(batch))
            params = [
                field.get_db_prep_save(value, connection)
                for row in batch
                for field, value in zip(fields, row, strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} RETURNING {pk}", params
            )
            keys += [key for (key,) in cursor.fetchall()]
    return keys


def update(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[tuple[int, Sequence[Any]]],
    *,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Set field `names` of each row `(pk, values)`, only where the row still matches
    `where` (field -> value); returns how many rows were written."""
    if not rows:
        return 0
    fields = _fields(model, names)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk_field: Any = model._meta.pk
    pk = quote(pk_field.column)
    cast = connection.vendor == "postgresql"  # VALUES columns are untyped there
    # A VALUES list names its columns column1, column2, ... on both databases.
    assign = ", ".join(
        f"{quote(f.column)} = "
        + (f"CAST(v.column{i + 2} AS {f.db_type(connection)})" if cast else f"v.column{i + 2}")
        for i, f in enumerate(fields)
    )
    key = f"CAST(v.column1 AS {pk_field.db_type(connection)})" if cast else "v.column1"
    conditions = [f"{table}.{pk} = {key}"]
    extra: list[Any] = []
    for name, value in (where or {}).items():
        (field,) = _fields(model, [name])
        conditions.append(f"{table}.{quote(field.column)} = %s")
        extra.append(field.get_db_prep_save(value, connection))
    written = 0
    with _cursor() as cursor:
        for batch in _batches(rows, len(fields) + 1):
            values = ", ".join(["(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"] * len(batch))
            params: list[Any] = []
            for key, row in batch:
                params.append(key)
                params += [
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(fields, row, strict=True)
                ]
            cursor.execute(
                f"UPDATE {table} SET {assign} FROM (VALUES {values}) AS v "
                f"WHERE {' AND '.join(conditions)}",
                params + extra,
            )
            written += cursor.rowcount
    return written
