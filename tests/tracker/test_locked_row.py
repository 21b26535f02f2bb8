"""tracker.bulk.locked_row: the row as the ORM reads it, locked until the transaction ends (a second session cannot
lock it meanwhile), and DoesNotExist for a row that is not there."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from patients.models import Patient
from tracker.bulk import locked_row


def other_session() -> psycopg.Connection[Any]:
    """A second connection to the test database, outside Django's."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def test_it_reads_the_row_as_the_orm_does(patient: Patient) -> None:
    with transaction.atomic():
        row = locked_row(Patient, patient.pk)

    expected = Patient.objects.get(pk=patient.pk)
    assert [getattr(row, f.attname) for f in Patient._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in Patient._meta.concrete_fields
    ]


def test_a_missing_row_is_does_not_exist(db: Any) -> None:
    with transaction.atomic(), pytest.raises(Patient.DoesNotExist):
        locked_row(Patient, 987654321)


def test_the_row_stays_locked_until_the_transaction_ends(transactional_db: Any, clinic: Any) -> None:
    patient = Patient.objects.create(
        clinic=clinic, mrn="LOCK0001", given_name="Ada", family_name="Lock", birth_date="1950-01-01", sex="female"
    )
    sql = f"SELECT id FROM {Patient._meta.db_table} WHERE id = %s FOR UPDATE NOWAIT"  # noqa: S608
    with other_session() as other:
        with transaction.atomic():
            locked_row(Patient, patient.pk)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(sql, [patient.pk])
        # Then, the transaction over, the other session locks it at once
        assert other.execute(sql, [patient.pk]).fetchone() == (patient.pk,)
