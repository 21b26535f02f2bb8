"""The lab pages: entering one sample's results for a patient (`/patients/{id}/labs/new/`) and importing a
CSV file (`/labs/import/`) with a report of every row. Both use the API's services, so they refuse what it
refuses, naming the field, and store nothing half-way."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patients.labs import analytes
from patients.models import Clinic, ClinicMembership, FactKind, LabResult, Patient, ResultSource, Role
from tests.conftest import page_text
from tests.factories import ClinicFactory, LabResultFactory, PatientFactFactory, PatientFactory, staff_user
from tests.timeline import T0, day, noon, start_treatment

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def entry(collected_at: str = "2027-01-04T09:30", **values: str) -> dict[str, str]:
    """The entry form as a browser posts it: every unit select at its default (the canonical unit) unless
    given; `platelets="62"` fills the platelets value, `platelets_unit="K/uL"` picks its unit."""
    data = {"collected_at": collected_at, "lab": "RVH Haematology", "note": ""}
    data.update({f"{a.code}_unit": a.canonical_unit for a in analytes.CATALOGUE if a.units})
    for name, value in values.items():
        data[name if name.endswith(("_unit", "_value")) or name in data else f"{name}_value"] = value
    return data


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Lab entry ---------------------------------------------------------------------------------------


def test_the_form_offers_each_analyte_only_the_units_it_accepts(patient: Patient, nurse: Any) -> None:
    response = signed_in(nurse).get(f"/patients/{patient.pk}/labs/new/")
    assert response.status_code == 200
    body = response.content.decode()
    platelets = re.search(r'<select name="platelets_unit".*?</select>', body, re.S)
    assert platelets is not None
    assert re.findall(r'<option value="([^"]*)"', platelets.group()) == ["10^9/L", "10^3/uL", "K/uL", "/uL"]
    assert 'name="schistocytes_value"' in body and 'name="schistocytes_unit"' not in body
    assert patient.mrn in body
    assert f'href="/patients/{patient.pk}/"' in body


def test_one_result_is_stored_at_the_clinics_time_and_the_nurse_returns_to_the_patient(
    clinic: Clinic, nurse: Any, clock: Any
) -> None:
    clinic.timezone = "America/New_York"
    clinic.save()
    patient = PatientFactory(clinic=clinic, timezone="America/New_York")

    response = signed_in(nurse).post(
        f"/patients/{patient.pk}/labs/new/", entry("2027-01-04T06:30", hemoglobin="9.8", hemoglobin_unit="g/dL")
    )

    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    [result] = LabResult.objects.filter(patient=patient)
    assert (result.analyte, result.value_as_entered, result.unit_as_entered) == ("hemoglobin", "9.8", "g/dL")
    assert result.value_canonical == 98
    assert result.collected_at == datetime(2027, 1, 4, 11, 30, tzinfo=UTC)  # 06:30 in New York
    assert result.entered_by == nurse and result.source == ResultSource.ENTERED and result.lab == "RVH Haematology"
    [message] = messages_of(response)
    assert message.startswith("Stored 1 result: Hemoglobin 9.8 g/dL (low).")


def test_a_panel_is_stored_together_from_one_sample(patient: Patient, clinician: Any, clock: Any) -> None:
    response = signed_in(clinician).post(
        f"/patients/{patient.pk}/labs/new/",
        entry(hemoglobin="98", platelets="62", mcv="112", schistocytes="absent", note="Repeat sample"),
    )

    assert response.status_code == 302
    stored = {r.analyte: r for r in LabResult.objects.filter(patient=patient)}
    assert sorted(stored) == ["hemoglobin", "mcv", "platelets", "schistocytes"]
    assert {r.collected_at for r in stored.values()} == {datetime(2027, 1, 4, 9, 30, tzinfo=UTC)}
    assert stored["schistocytes"].presence == "absent" and stored["platelets"].note == "Repeat sample"
    [message] = messages_of(response)
    assert "Stored 4 results:" in message and "Platelets 62 10^9/L (low)" in message


def test_a_bad_value_in_a_panel_names_its_field_and_stores_nothing(patient: Patient, nurse: Any, clock: Any) -> None:
    response = signed_in(nurse).post(
        f"/patients/{patient.pk}/labs/new/", entry(hemoglobin="98", platelets="sixty", mcv="-3")
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "There is a problem" in body
    assert re.search(r'href="#id_platelets_value">Platelets value: [^<]*number', body), body
    assert re.search(r'href="#id_mcv_value">MCV value: [^<]*negative', body)
    assert 'value="sixty"' in body  # what was typed is kept
    assert not LabResult.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (entry("2027-02-04T09:30", hemoglobin="98"), "Collected at", "is in the future"),
        (entry("", hemoglobin="98"), "Collected at", "This field is required."),
        (entry(hemoglobin="98", hemoglobin_unit="mg/dL"), "Hemoglobin unit", "Select a valid choice."),
        (entry(hemoglobin="3000"), "Hemoglobin value", ""),
        (entry(), "", "Results: enter at least one value."),
    ],
)
def test_bad_input_is_named_and_nothing_is_stored(
    patient: Patient, nurse: Any, clock: Any, data: dict[str, str], field: str, reason: str
) -> None:
    response = signed_in(nurse).post(f"/patients/{patient.pk}/labs/new/", data)
    assert response.status_code == 400
    body = response.content.decode()
    summary = body[body.index("nhsuk-error-summary__list") :]
    assert re.search(rf"{field}: [^<]*{re.escape(reason)}" if field else re.escape(reason), summary), summary
    assert not LabResult.objects.exists()


def test_another_clinics_patient_is_not_found(other_patient: Patient, nurse: Any, clock: Any) -> None:
    client = signed_in(nurse)
    assert client.get(f"/patients/{other_patient.pk}/labs/new/").status_code == 404
    assert client.post(f"/patients/{other_patient.pk}/labs/new/", entry(hemoglobin="98")).status_code == 404
    assert not LabResult.objects.exists()


def test_the_lab_pages_need_a_signed_in_member_of_staff(patient: Patient) -> None:
    response = Client().get(f"/patients/{patient.pk}/labs/new/")
    assert response["Location"] == f"/login/?next=/patients/{patient.pk}/labs/new/"
    assert Client().get("/labs/import/")["Location"] == "/login/?next=/labs/import/"
    nobody = staff_user(ClinicFactory(name="Nowhere"), Role.NURSE, username="nobody")
    nobody.memberships.all().delete()
    assert signed_in(nobody).get(f"/patients/{patient.pk}/labs/new/").status_code == 403
    assert signed_in(nobody).get("/labs/import/").status_code == 403


@pytest.mark.parametrize("existing", [0, 40])
def test_the_entry_page_takes_the_same_queries_whatever_the_patient_has(
    patient: Patient, nurse: Any, existing: int, django_assert_max_num_queries: Any
) -> None:
    for n in range(existing):
        LabResultFactory(patient=patient, collected_at=noon(T0) - timedelta(days=n))
        PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=T0 - timedelta(days=300 + n))
    client = signed_in(nurse)
    # Session, user, clinics, the patient; and the patient's pregnancies, which the prompts read (RULES S-14).
    with django_assert_max_num_queries(5):
        assert client.get(f"/patients/{patient.pk}/labs/new/").status_code == 200


# --- Information prompts above the entry form (RULES S-7, S-14; §10 V-15) ------------------------------------


def prompts_shown(body: str) -> str:
    """The text of the inset box of prompts, which stands above the form ("" when the page shows none)."""
    found = re.search(r'<div class="nhsuk-inset-text" id="prompts">.*?</div>', body, re.S)
    if found is None:
        return ""
    assert found.start() < body.index('name="collected_at"'), "the prompts are above the form"
    return re.sub(r" ([:.])", r"\1", " ".join(page_text(found.group()).split()))


S7 = "S-7: Age 75: people aged 75 or over are a risk group for B12 deficiency."
PREGNANCY = "S-14: Pregnancy: request active B12 as the initial test (NG239)."
NITROUS_OXIDE = "S-14: Nitrous oxide use: request homocysteine or MMA as the initial test (NG239)."
ETHNICITY = "S-14: For people of Black ethnicity, B12 reference ranges may be higher"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"birth_date": date(1952, 1, 4)}, S7),  # 75 today (T0): from the 75th birthday
        ({"pregnant": True}, PREGNANCY),
        ({"deficiency_cause": "nitrous_oxide"}, NITROUS_OXIDE),
    ],
)
def test_the_entry_page_shows_the_prompt_of_the_patients_record(
    clinic: Clinic, nurse: Any, clock: Any, record: dict[str, Any], expected: str
) -> None:
    # Given a patient aged 75, pregnant, or whose deficiency was caused by nitrous oxide
    pregnant = record.pop("pregnant", False)
    patient = PatientFactory(clinic=clinic, **record)
    if pregnant:
        PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=T0 - timedelta(days=90))

    # When a nurse opens the lab entry page
    response = signed_in(nurse).get(f"/patients/{patient.pk}/labs/new/")

    # Then the matching prompt is above the form, with the ethnicity note every record carries, and no other
    assert response.status_code == 200
    shown = prompts_shown(response.content.decode())
    assert shown.startswith("Information: For information")
    assert expected in shown and ETHNICITY in shown
    assert [p for p in (S7, PREGNANCY, NITROUS_OXIDE) if p in shown] == [expected]


def test_a_patient_with_none_of_them_sees_only_the_ethnicity_note(clinic: Clinic, nurse: Any, clock: Any) -> None:
    # A 66-year-old with pernicious anaemia, a pregnancy that ended and one checked absent: Cobalt records no
    # ethnicity, so S-14's note is on every record (docs/clinical-reference.md D-V15), and nothing else is.
    patient = PatientFactory(clinic=clinic, birth_date=date(1960, 5, 17), deficiency_cause="pernicious_anemia")
    PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=day(-400), end_date=day(-120))
    PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=day(-10), absent=True)

    shown = prompts_shown(signed_in(nurse).get(f"/patients/{patient.pk}/labs/new/").content.decode())

    assert ETHNICITY in shown
    assert "S-7" not in shown and "active B12" not in shown and "Nitrous oxide" not in shown


def test_a_pregnant_patients_result_is_stored_and_a_refused_one_keeps_the_prompt(
    clinic: Clinic, nurse: Any, clock: Any
) -> None:
    patient = PatientFactory(clinic=clinic)
    PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=T0 - timedelta(days=90))
    client = signed_in(nurse)

    refused = client.post(f"/patients/{patient.pk}/labs/new/", entry(b12_active="lots"))
    assert refused.status_code == 400 and PREGNANCY in prompts_shown(refused.content.decode())
    assert not LabResult.objects.exists()

    stored = client.post(f"/patients/{patient.pk}/labs/new/", entry(b12_active="25"))
    assert stored.status_code == 302 and stored["Location"] == f"/patients/{patient.pk}/"
    assert LabResult.objects.get(patient=patient).analyte == "b12_active"
    assert messages_of(stored)[0].startswith("Stored 1 result: Active B12 (holotranscobalamin) 25 pmol/L")


@pytest.mark.django_db(transaction=True)
def test_the_message_names_the_alert_a_falling_platelet_count_opened(
    builtin_protocols: None, clinic: Clinic, clinician: Any, clock: Any
) -> None:
    # Given a patient with a low baseline platelet count, on treatment since T0
    patient = PatientFactory(clinic=clinic)
    LabResultFactory(
        patient=patient, analyte="platelets", loinc="777-3", value_as_entered="90", unit_as_entered="10^9/L",
        unit_canonical="10^9/L", interpretation="low", collected_at=noon(T0) - timedelta(days=1),
    )
    start_treatment(patient)
    clock.move_to(noon(day(5)))

    # When the clinician enters the day-5 count of 15
    response = signed_in(clinician).post(
        f"/patients/{patient.pk}/labs/new/", entry(day(5).isoformat() + "T09:00", platelets="15")
    )

    # Then the message says what was stored and which alert it opened (RULES A-P3, critical)
    assert response.status_code == 302
    [message] = messages_of(response)
    assert "Platelets 15 10^9/L (critically low)" in message
    assert "It opened an alert: Platelets falling or very low (A-P3) (critical)." in message


def test_when_no_alert_opens_the_message_says_so(patient: Patient, nurse: Any, clock: Any) -> None:
    response = signed_in(nurse).post(f"/patients/{patient.pk}/labs/new/", entry(hemoglobin="135"))
    assert messages_of(response)[0].endswith("No alert opened.")


# --- CSV import --------------------------------------------------------------------------------------


def upload(client: Client, text: str, **extra: Any) -> Any:
    data = {"file": SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv"), **extra}
    return client.post("/labs/import/", data)


def report_rows(body: str) -> list[tuple[str, ...]]:
    table = body[body.index('<h2 id="report">') :]
    rows = re.findall(r"<tr class=\"nhsuk-table__row\">(.*?)</tr>", table, re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [tuple(re.sub(r"<[^>]+>", "", cell).strip() for cell in row) for row in cells]


def test_the_import_page_says_which_columns_it_reads_and_offers_a_sample(nurse: Any) -> None:
    client = signed_in(nurse)
    body = client.get("/labs/import/").content.decode()
    for column in ("mrn", "patient_id", "analyte", "value", "unit", "collected_at", "ref_low", "ref_high"):
        assert f"<code>{column}</code>" in body
    assert 'href="/labs/import/sample.csv"' in body
    sample = client.get("/labs/import/sample.csv")
    assert sample["Content-Type"].startswith("text/csv")
    assert sample.content.decode("utf-8-sig").startswith("mrn,analyte,value,unit,collected_at,")


def test_a_clean_file_is_stored_and_every_row_reported(patient: Patient, nurse: Any, clock: Any) -> None:
    text = f"mrn,analyte,value,unit,collected_at\n{patient.mrn},hemoglobin,9.1,g/dL,2027-01-04T09:30:00+00:00\n" \
           f"{patient.mrn},777-3,62,10^9/L,2027-01-04\n"
    response = upload(signed_in(nurse), text)
    assert response.status_code == 200
    assert report_rows(response.content.decode()) == [("2", "Stored", "", ""), ("3", "Stored", "", "")]
    assert "2 results stored" in response.content.decode()
    assert LabResult.objects.filter(patient=patient, source=ResultSource.IMPORTED, entered_by=nurse).count() == 2


def test_a_refused_row_names_its_column_and_nothing_is_stored(
    patient: Patient, other_patient: Patient, nurse: Any, clock: Any
) -> None:
    text = (
        "mrn,analyte,value,unit,collected_at\n"
        f"{patient.mrn},hemoglobin,9.1,g/dL,2027-01-04\n"
        f"{patient.mrn},hemoglobin,9.1,furlongs,2027-01-04\n"
        f"{other_patient.mrn},hemoglobin,9.1,g/dL,2027-01-04\n"
    )
    response = upload(signed_in(nurse), text)

    assert response.status_code == 400
    body = response.content.decode()
    rows = report_rows(body)
    assert rows[0] == ("2", "Valid, not stored", "", "")
    assert rows[1][:3] == ("3", "Refused", "unit") and "furlongs" in rows[1][3]
    assert rows[2][:3] == ("4", "Refused", "mrn") and "no patient with MRN" in rows[2][3]
    assert "Nothing was stored" in body
    assert not LabResult.objects.exists()


def test_keeping_the_valid_rows_stores_them_and_reports_the_others(patient: Patient, nurse: Any, clock: Any) -> None:
    text = f"mrn,analyte,value,unit,collected_at\n{patient.mrn},hemoglobin,9.1,g/dL,2027-01-04\n" \
           f"{patient.mrn},hemoglobin,,g/dL,2027-01-04\n"
    response = upload(signed_in(nurse), text, keep_valid="on")
    assert response.status_code == 200
    rows = report_rows(response.content.decode())
    assert rows[0] == ("2", "Stored", "", "")
    assert rows[1] == ("3", "Refused", "value", "is required")
    assert LabResult.objects.count() == 1


def test_a_wrong_header_is_reported_on_row_1(nurse: Any, clock: Any) -> None:
    response = upload(signed_in(nurse), "patient,analyte,value\nX,hemoglobin,9\n")
    rows = report_rows(response.content.decode())
    assert ("1", "Refused", "patient") == rows[0][:3]
    assert any(row[2] == "collected_at" for row in rows)


def test_a_file_that_is_not_text_is_named(nurse: Any) -> None:
    client = signed_in(nurse)
    data = {"file": SimpleUploadedFile("results.xlsx", b"\xff\xfe\x00PK\x03\x04", content_type="text/csv")}
    response = client.post("/labs/import/", data)
    assert response.status_code == 400
    assert "CSV file: is not UTF-8 text" in response.content.decode()
    assert "Check and import" in response.content.decode()


def test_a_nurse_of_two_clinics_says_which_and_cannot_pick_another(nurse: Any, clinic: Clinic, clock: Any) -> None:
    second = ClinicFactory(name="Northside")
    ClinicMembership.objects.create(user=nurse, clinic=second, role=Role.NURSE)
    theirs = PatientFactory(clinic=second)
    client = signed_in(nurse)
    text = f"mrn,analyte,value,unit,collected_at\n{theirs.mrn},hemoglobin,9.1,g/dL,2027-01-04\n"

    assert "Clinic whose MRNs the file uses" in client.get("/labs/import/").content.decode()
    stranger = ClinicFactory(name="Elsewhere")
    refused = upload(client, text, clinic=str(stranger.pk))
    assert refused.status_code == 400 and "Clinic whose MRNs the file uses: Select a valid choice" in (
        refused.content.decode()
    )
    assert upload(client, text, clinic=str(second.pk)).status_code == 200
    assert LabResult.objects.get().patient == theirs


@pytest.mark.parametrize("patients", [1, 10])
def test_the_import_page_and_report_take_the_same_queries_for_more_rows(
    clinic: Clinic, nurse: Any, clock: Any, patients: int, django_assert_max_num_queries: Any
) -> None:
    rows = [PatientFactory(clinic=clinic).mrn for _ in range(patients)]
    text = "mrn,analyte,value,unit,collected_at\n" + "".join(f"{m},hemoglobin,x,g/dL,2027-01-04\n" for m in rows)
    client = signed_in(nurse)
    with django_assert_max_num_queries(4):
        client.get("/labs/import/")
    with django_assert_max_num_queries(7):
        response = upload(client, text)
    assert len(report_rows(response.content.decode())) == patients
