"""CSV import of lab results: POST /api/lab-results/import/ and `manage.py import_lab_results`."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from patients.models import Clinic, LabResult, Patient
from tests.conftest import client_for
from tests.factories import PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

HEADER = "mrn,analyte,value,unit,collected_at,reported_at,ref_low,ref_high,lab\n"


@pytest.fixture
def alice(clinic: Clinic) -> Patient:
    return PatientFactory(clinic=clinic, mrn="A100", sex="female")


@pytest.fixture
def bob(clinic: Clinic) -> Patient:
    return PatientFactory(clinic=clinic, mrn="B200", sex="male")


def upload(api: APIClient, text: str, **fields: Any) -> Any:
    file = SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv")
    return api.post("/api/lab-results/import/", {"file": file, **fields}, format="multipart")


GOOD = (
    HEADER
    + "A100,hemoglobin,11.2,g/dL,2026-11-02T09:30:00+00:00,2026-11-02T15:00:00+00:00,,,RLBUHT\n"
    + "A100,777-3,140,K/uL,2026-11-02,,,,\n"
    + "B200,b12_total,221.4,pmol/L,2026-11-03T08:00:00+01:00,,,,\n"
)


def test_it_imports_every_row_of_a_clean_file(api: APIClient, alice: Patient, bob: Patient, nurse: Any) -> None:
    with mock.patch("tracker.events.announce_on_commit") as evaluate:
        response = upload(api, GOOD)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["rows"], body["created"], body["errors"]) == (3, 3, [])
    results = LabResult.objects.order_by("collected_at")
    assert [(r.patient.mrn, r.analyte, r.value_canonical, r.interpretation) for r in results] == [
        ("A100", "platelets", Decimal(140), "low"),  # a date alone: midnight in London
        ("A100", "hemoglobin", Decimal(112), "low"),
        ("B200", "b12_total", Decimal(300), ""),
    ]
    assert {r.source for r in results} == {"imported"}
    assert {r.import_batch for r in results} == {body["import_batch"]}
    assert {r.entered_by for r in results} == {nurse}
    assert results[1].lab == "RLBUHT"
    # Each affected patient is evaluated once, however many rows they have.
    assert sorted(call.kwargs["patient_id"] for call in evaluate.call_args_list) == sorted([alice.pk, bob.pk])


def test_a_date_means_the_start_of_that_day_in_the_patients_zone(api: APIClient, alice: Patient) -> None:
    upload(api, HEADER + "A100,hemoglobin,120,g/L,2026-07-01,,,,\n")

    assert LabResult.objects.get().collected_at.isoformat() == "2026-06-30T23:00:00+00:00"  # BST


def test_it_keeps_the_history_of_imported_rows(api: APIClient, alice: Patient, bob: Patient) -> None:
    upload(api, GOOD)

    assert LabResult.history.count() == 3  # type: ignore[attr-defined]


def test_it_accepts_patient_id_and_a_lab_range(api: APIClient, alice: Patient) -> None:
    header = "patient_id,analyte,value,unit,collected_at,ref_low,ref_high\n"
    text = f"{header}{alice.pk},hemoglobin,115,g/L,2026-11-02,110,150\n"

    response = upload(api, text)

    assert response.status_code == 201, response.json()
    result = LabResult.objects.get()
    assert (result.interpretation, result.ref_low, result.ref_high) == ("normal", Decimal(110), Decimal(150))


BAD = (
    HEADER
    + "A100,hemoglobin,120,g/L,2026-11-02,,,,\n"  # row 2: fine
    + "Z999,hemoglobin,120,g/L,2026-11-02,,,,\n"  # row 3: unknown MRN
    + "A100,hemoglobin,120,mg/L,2026-11-02,,,,\n"  # row 4: unit
    + "A100,hemoglobin,NaN,g/L,2026-11-02,,,,\n"  # row 5: value
    + "A100,unobtainium,1,g/L,2026-11-02,,,,\n"  # row 6: analyte
    + "A100,hemoglobin,120,g/L,2099-01-01,,,,\n"  # row 7: future
    + "A100,hemoglobin,120,g/L,2026-11-02T09:00:00+00:00,2026-11-01T09:00:00+00:00,,,\n"  # row 8: reported
    + "A100,hemoglobin,120,g/L,2026-11-02T09:00:00,,,,\n"  # row 9: no offset
    + "A100,hemoglobin,120,g/L,2026-11-02,,150,110,\n"  # row 10: range upside down
    + "A100,platelets,90,10^9/L,2026-11-02,,,,\n"  # row 11: fine
)
BAD_ERRORS = [
    (3, "mrn"),
    (4, "unit"),
    (5, "value"),
    (6, "analyte"),
    (7, "collected_at"),
    (8, "reported_at"),
    (9, "collected_at"),
    (10, "ref_low"),
]


def test_one_bad_row_means_nothing_is_written(api: APIClient, alice: Patient) -> None:
    with mock.patch("tracker.events.announce_on_commit") as evaluate:
        response = upload(api, BAD)

    assert response.status_code == 400
    body = response.json()
    assert (body["rows"], body["created"]) == (10, 0)
    assert [(e["row"], e["field"]) for e in body["errors"]] == BAD_ERRORS
    assert all(e["message"] for e in body["errors"])
    assert LabResult.objects.count() == 0
    evaluate.assert_not_called()


def test_keep_valid_writes_the_good_rows_and_reports_the_others(api: APIClient, alice: Patient) -> None:
    response = upload(api, BAD, keep_valid="true")

    assert response.status_code == 201
    body = response.json()
    assert (body["rows"], body["created"]) == (10, 2)
    assert [(e["row"], e["field"]) for e in body["errors"]] == BAD_ERRORS
    assert sorted(LabResult.objects.values_list("analyte", flat=True)) == ["hemoglobin", "platelets"]


def test_keep_valid_with_no_valid_row_is_still_an_error(api: APIClient, alice: Patient) -> None:
    response = upload(api, HEADER + "Z999,hemoglobin,120,g/L,2026-11-02,,,,\n", keep_valid="true")

    assert response.status_code == 400
    assert response.json()["created"] == 0


def test_a_missing_or_unknown_column_is_reported_on_row_1(api: APIClient, alice: Patient) -> None:
    response = upload(api, "mrn,analyte,valeu,unit,collected_at\nA100,hemoglobin,120,g/L,2026-11-02\n")

    assert response.status_code == 400
    errors = {(e["row"], e["field"]) for e in response.json()["errors"]}
    assert errors == {(1, "valeu"), (1, "value")}
    assert LabResult.objects.count() == 0


def test_an_empty_file_or_a_file_that_is_not_text_is_refused(api: APIClient, alice: Patient) -> None:
    assert "file" in upload(api, "").json()
    not_text = SimpleUploadedFile("results.csv", b"\xff\xfe\x00\x81binary", content_type="text/csv")
    assert "file" in api.post("/api/lab-results/import/", {"file": not_text}, format="multipart").json()
    assert upload(api, HEADER).status_code == 400


def test_it_reads_excel_utf8_with_a_byte_order_mark_and_blank_lines(api: APIClient, alice: Patient) -> None:
    response = upload(api, "\ufeff" + HEADER + "\nA100,Hemoglobin,120,G/L,2026-11-02,,,,\n\n")

    assert response.status_code == 201, response.json()


def test_mrns_are_looked_up_only_in_the_users_clinic(api: APIClient, alice: Patient, other_clinic: Clinic) -> None:
    PatientFactory(clinic=other_clinic, mrn="C300")

    response = upload(api, HEADER + "C300,hemoglobin,120,g/L,2026-11-02,,,,\n")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "mrn"
    assert LabResult.objects.count() == 0


def test_a_user_of_several_clinics_must_name_the_clinic(
    nurse: Any, clinic: Clinic, other_clinic: Clinic, alice: Patient
) -> None:
    staff_user(other_clinic, username=nurse.username)
    PatientFactory(clinic=other_clinic, mrn="A100")
    api = client_for(nurse)

    missing = upload(api, GOOD)
    named = upload(api, HEADER + "A100,hemoglobin,120,g/L,2026-11-02,,,,\n", clinic=str(other_clinic.pk))

    assert missing.status_code == 400
    assert "clinic" in missing.json()
    assert named.status_code == 201, named.json()
    assert LabResult.objects.get().patient.clinic == other_clinic


def test_a_user_cannot_import_into_another_clinic(api: APIClient, alice: Patient, other_clinic: Clinic) -> None:
    response = upload(api, GOOD, clinic=str(other_clinic.pk))

    assert response.status_code == 400
    assert "clinic" in response.json()


def test_anonymous_and_portal_users_cannot_import(anon_api: APIClient, alice: Patient) -> None:
    alice.user = UserFactory(username="alice-portal")
    alice.save(update_fields=["user"])

    assert upload(anon_api, GOOD).status_code in (401, 403)
    assert upload(client_for(alice.user), GOOD).status_code == 403
    assert LabResult.objects.count() == 0


def test_ten_thousand_rows_are_written_in_bulk(
    api: APIClient, clinic: Clinic, django_assert_max_num_queries: Any, settings: Any
) -> None:
    # Within the request here (a larger file is a job by default: test_lab_import_job.py); the job runs this code.
    settings.COBALT = {**settings.COBALT, "IMPORT_SYNC_MAX_ROWS": 10_000}
    patients = PatientFactory.create_batch(50, clinic=clinic)
    lines = [HEADER]
    for i in range(10_000):
        lines.append(f"{patients[i % 50].mrn},hemoglobin,{100 + i % 60},g/L,2026-10-{1 + i % 28:02d},,,,\n")
    text = "".join(lines)

    # No query per row: patients, pregnancies, then batched inserts (results and their history).
    with django_assert_max_num_queries(60):
        response = upload(api, text)

    assert response.status_code == 201, response.json()["errors"][:3]
    assert response.json()["created"] == 10_000
    assert LabResult.objects.filter(source="imported").count() == 10_000


# --- The management command -------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_lab_results", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "results.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_command_imports_a_file_for_a_clinic_by_name_or_id(
    tmp_path: Path, clinic: Clinic, alice: Patient, bob: Patient
) -> None:
    out, _ = run(write(tmp_path, GOOD), "--clinic", clinic.name, "--no-progress")

    assert "3 rows read, 3 results written, 0 errors" in out
    assert LabResult.objects.filter(source="imported", entered_by=None).count() == 3

    run(write(tmp_path, HEADER + "A100,mcv,95,fL,2026-11-02,,,,\n"), "--clinic", str(clinic.pk), "--no-progress")
    assert LabResult.objects.count() == 4


def test_the_command_reports_errors_and_exits_non_zero_when_nothing_was_written(
    tmp_path: Path, clinic: Clinic, alice: Patient
) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_lab_results", write(tmp_path, BAD), "--clinic", clinic.name, "--no-progress", stdout=out)

    report = out.getvalue()
    assert "row 3, mrn: no patient with MRN 'Z999'" in report
    assert "row 4, unit:" in report
    assert LabResult.objects.count() == 0


def test_the_command_keeps_the_valid_rows_when_asked(tmp_path: Path, clinic: Clinic, alice: Patient) -> None:
    out, _ = run(write(tmp_path, BAD), "--clinic", clinic.name, "--keep-valid", "--no-progress")

    assert "10 rows read, 2 results written, 8 errors" in out
    assert "row 10, ref_low:" in out
    assert LabResult.objects.count() == 2


def test_the_command_refuses_an_unknown_clinic_or_file(tmp_path: Path, clinic: Clinic) -> None:
    with pytest.raises(CommandError, match="--clinic"):
        run(write(tmp_path, GOOD), "--clinic", "Nowhere", "--no-progress")
    with pytest.raises(CommandError, match="missing.csv"):
        run(str(tmp_path / "missing.csv"), "--clinic", clinic.name)


def test_the_command_shows_progress_unless_told_not_to(
    tmp_path: Path, clinic: Clinic, alice: Patient, bob: Patient
) -> None:
    _, err = run(write(tmp_path, GOOD), "--clinic", clinic.name)
    _, quiet = run(write(tmp_path, GOOD), "--clinic", clinic.name, "--keep-valid", "--no-progress")

    assert "Checking" in err
    assert "3/3" in err
    assert quiet == ""
