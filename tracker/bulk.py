"""Set-based writes of many rows, linear in the number of rows.

Django's `bulk_update` compiles one `CASE WHEN id = ... THEN ...` per row and field: the statement grows
with the rows and PostgreSQL evaluates every branch for every row, so its cost grows with the square of
the batch (a calendar change at a 20,000-dose clinic ran for over an hour). `update_rows` instead joins
the table to a `VALUES` list (PostgreSQL), one statement per batch:

    UPDATE t SET a = v.a, b = v.b FROM (VALUES (%s::bigint, %s::date, %s::text), ...) AS v(id, a, b)
    WHERE t.id = v.id

Other databases (SQLite under `make run`) run one short `UPDATE t SET a = %s, b = %s WHERE id = %s` per row
through the driver's `executemany`: linear too, and on SQLite, where a statement is a function call rather
than a round trip, ten times quicker than `bulk_update`, whose cost is in Django building the CASE (the
demo's `seed_demo` spent a third of its time there). The kernel imports no app: callers pass their model.

`locked_row` is the other way round: one row, on the path of a single write, where the ORM took three times as
long to build the statement as PostgreSQL to run it (issue 16).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import connections, models, router
from simple_history.models import HistoricalRecords

# Rows per statement: large enough to amortise the round trip, small enough that one statement
# stays short (a cancel or terminate acts between batches) and its parameters stay under the
# driver's limit (65,535 per statement: 1,000 rows x up to 60 columns).
BATCH_SIZE = 1000
M = TypeVar("M", bound=models.Model)


def locked_row(model: type[M], pk: int) -> M:
    """The row `pk` of `model`, locked until the caller's transaction ends (SELECT ... FOR UPDATE; SQLite, `make
    run`'s default, has no row locks): what `model._default_manager.select_for_update().get(pk=pk)` reads, in a
    third of the time. DoesNotExist when there is no such row."""
    connection = connections[router.db_for_write(model)]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    meta = model._meta
    sql = f"SELECT * FROM {connection.ops.quote_name(meta.db_table)} WHERE {meta.pk.column} = %s{lock}"  # noqa: S608
    found = list(model._default_manager.raw(sql, [pk]))
    if not found:
        raise model.DoesNotExist(f"{meta.verbose_name} {pk} does not exist")  # type: ignore[attr-defined]
    return found[0]


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def update_rows(
    model: type[models.Model],
    rows: Sequence[models.Model],
    fields: Sequence[str],
    *,
    batch_size: int = BATCH_SIZE,
    where: dict[str, Any] | None = None,
) -> int:
    """Write `fields` of the saved instances `rows` (each by its primary key) in ceil(len / batch_size)
    statements; the number of rows updated. `where` (field -> value) leaves alone the rows that no longer
    match it (a compare-and-set, e.g. {"status": "pending"}). Like `bulk_update`, sends no signals (no
    history rows)."""
    if not rows:
        return 0
    if not fields:
        raise ValueError("update_rows needs at least one field")
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    concrete: list[Any] = [meta.get_field(name) for name in fields]
    if any(not getattr(f, "concrete", False) or f.many_to_many for f in concrete):
        raise ValueError("update_rows writes concrete columns only")
    conditions: list[tuple[Any, Any]] = [(meta.get_field(name), value) for name, value in (where or {}).items()]
    if connection.vendor != "postgresql":
        return _update_each(connection, model, rows, concrete, conditions, batch_size)
    columns: list[Any] = [pk, *concrete]
    qn = connection.ops.quote_name
    # Each value cast to its column's type, so the VALUES list is typed whatever the parameters are
    # (a NULL, a JSON document, a date).
    casts = [column.cast_db_type(connection) or column.db_type(connection) for column in columns]
    placeholder = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in concrete)
    names = ", ".join(qn(c.column) for c in columns)
    table = qn(meta.db_table)
    extra = "".join(f" AND {table}.{qn(f.column)} = %s" for f, _ in conditions)
    updated = 0
    with connection.cursor() as cursor:
        for batch in batches(rows, batch_size):
            params: list[Any] = []
            for row in batch:
                params.append(pk.get_db_prep_value(row.pk, connection))
                for f in concrete:
                    params.append(f.get_db_prep_save(getattr(row, f.attname), connection))
            # Only quoted identifiers and column types of the model are formatted in; values are parameters.
            params += [f.get_db_prep_value(value, connection) for f, value in conditions]
            values = ", ".join([placeholder] * len(batch))
            sql = f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v({names}) WHERE {table}.{qn(pk.column)} = v.{qn(pk.column)}{extra}"  # noqa: S608, E501
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def _update_each(
    connection: Any,
    model: type[models.Model],
    rows: Sequence[models.Model],
    concrete: list[Any],
    conditions: list[Any],
    batch_size: int,
) -> int:
    """`update_rows` off PostgreSQL: one `UPDATE ... WHERE pk = %s` per row, sent with `executemany` a batch at a
    time."""
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in concrete)
    extra = "".join(f" AND {qn(f.column)} = %s" for f, _ in conditions)
    sql = f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {qn(pk.column)} = %s{extra}"  # noqa: S608
    tail = [f.get_db_prep_value(value, connection) for f, value in conditions]
    updated = 0
    with connection.cursor() as cursor:
        for batch in batches(rows, batch_size):
            params = [
                [
                    *(f.get_db_prep_save(getattr(row, f.attname), connection) for f in concrete),
                    pk.get_db_prep_value(row.pk, connection),
                    *tail,
                ]
                for row in batch
            ]
            cursor.executemany(sql, params)
            updated += max(cursor.rowcount, 0)
    return updated


def insert_new(
    model: type[models.Model], rows: Sequence[models.Model], key: Sequence[str], *, batch_size: int = BATCH_SIZE
) -> list[models.Model]:
    """INSERT the unsaved `rows`, skipping every row that a unique constraint already holds (ON CONFLICT DO
    NOTHING: a concurrent writer got there first); the rows inserted, with their primary key set. `key` names
    the fields (attnames) that tell the rows apart, to match each returned id to its row. One statement per
    batch; PostgreSQL and SQLite (3.35+) alike. Sends no signals (no history rows)."""
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields: list[Any] = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    names = ", ".join(qn(f.column) for f in fields)
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    key_fields: list[Any] = [meta.get_field(name) for name in key]
    returning = ", ".join(qn(c.column) for c in [pk, *key_fields])
    inserted: list[models.Model] = []
    with connection.cursor() as cursor:
        for batch in batches(rows, batch_size):
            params: list[Any] = []
            by_key: dict[tuple[Any, ...], models.Model] = {}
            for row in batch:
                for f in fields:
                    params.append(f.get_db_prep_save(f.pre_save(row, True), connection))
                by_key[tuple(getattr(row, f.attname) for f in key_fields)] = row
            values = ", ".join([placeholder] * len(batch))
            sql = f"INSERT INTO {qn(meta.db_table)} ({names}) VALUES {values} ON CONFLICT DO NOTHING RETURNING {returning}"  # noqa: S608, E501
            cursor.execute(sql, params)
            for pk_value, *key_values in cursor.fetchall():
                row = by_key[tuple(key_values)]
                row.pk = pk_value
                row._state.adding = False
                row._state.db = connection.alias
                inserted.append(row)
    return inserted


def insert_new_with_history(row: models.Model, key: Sequence[str]) -> bool:
    """INSERT one unsaved `row` unless a unique constraint already holds it (`insert_new`: ON CONFLICT DO NOTHING,
    where a `save` in a savepoint would have to catch an IntegrityError), and write the django-simple-history row
    a save would have written: the request's user when signed in (the history middleware keeps the request),
    no change reason. Whether it was inserted."""
    model = type(row)
    if not insert_new(model, [row], key):
        return False
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    history: Any = getattr(model, "history")  # noqa: B009 (simple_history's manager, not known to type checkers)
    history.bulk_history_create(
        [row], default_user=user if getattr(user, "is_authenticated", False) else None, default_change_reason=None
    )
    return True
