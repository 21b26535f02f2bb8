"""RULES R-UK-4 (NG239): "allow the clinician to shorten the interval at any time. No auto-lengthening."

A prescriber shortens the maintenance interval of a running regimen (same T0 and baseline, §10 V-1): the new value
is kept in the regimen's options, recorded as a clinician decision, and the planned doses move at once. The service,
the API action `POST /api/regimens/{id}/shorten-interval/` and the page `/regimens/{id}/shorten-interval/`.

The patient: hydroxo-uk-standard from Monday 4 January 2027, Monday-Friday clinic; the six loading doses given on
4, 6, 8, 11, 13 and 15 January, so the first maintenance dose is planned 12 weeks after the sixth, on Friday 9 April.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from regimens.models import DecisionKind, DoseStatus, Protocol, Regimen, RegimenDecision, RegimenStatus
from regimens.services import (
    dose_record_administration,
    regimen_replan,
    regimen_shorten_interval,
    regimen_start,
)
from tests.conftest import client_for, page_text
from tests.timeline import T0, noon
from tracker.errors import ConflictError, ServiceError

pytestmark = pytest.mark.django_db

LAST_LOADING = date(2027, 1, 15)
FIRST_MAINTENANCE = date(2027, 4, 9)  # 12 weeks after the sixth loading dose
DECIDED = date(2027, 2, 1)  # a Monday between the last loading dose and the first maintenance dose
REASON = "Tingling back in week 9 before each injection"


def start(patient: Any, code: str = "hydroxo-uk-standard") -> Regimen:
    return regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=T0)


def give_next(regimen: Regimen, phase: str, clock: Any, on: date | None = None) -> date:
    """Give the next planned dose of `phase` on its due date (or `on`); the day it was given."""
    dose = regimen.doses.filter(phase=phase, status=DoseStatus.PLANNED).order_by("sequence").first()
    assert dose is not None
    day = on or dose.due_date
    clock.move_to(noon(day))
    dose_record_administration(dose=dose, administered_at=noon(day))
    return day


def on_maintenance(patient: Any, clock: Any) -> Regimen:
    """The patient's regimen with its six loading doses given, as of 1 February 2027."""
    return on_maintenance_after(start(patient), clock)


def on_maintenance_after(regimen: Regimen, clock: Any) -> Regimen:
    """`regimen` with its six loading doses given on their days, as of 1 February 2027."""
    for _ in range(6):
        give_next(regimen, "loading", clock)
    clock.move_to(noon(DECIDED))
    regimen.refresh_from_db()
    assert planned(regimen)[0] == FIRST_MAINTENANCE
    return regimen


def planned(regimen: Regimen, phase: str = "maintenance") -> list[date]:
    rows = regimen.doses.filter(phase=phase, status=DoseStatus.PLANNED).order_by("sequence")
    return list(rows.values_list("due_date", flat=True))


def recorded(regimen: Regimen) -> list[tuple[Any, ...]]:
    """Every dose record that is not planned, as it is stored."""
    rows = regimen.doses.exclude(status=DoseStatus.PLANNED).order_by("id")
    return list(rows.values_list("id", "status", "due_date", "administered_at"))


# --- The service --------------------------------------------------------------------------------------------------


def test_a_clinician_shortens_maintenance_to_8_weeks_and_the_next_dose_moves_earlier(
    patient: Any, clinician: Any, clock: Any
) -> None:
    regimen = on_maintenance(patient, clock)
    first = regimen.doses.get(phase="maintenance", sequence=1, status=DoseStatus.PLANNED)
    given_before = recorded(regimen)

    regimen = regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician, reason=REASON)

    # 8 weeks after the last loading dose (15 January): Friday 12 March, then every 8 weeks
    assert planned(regimen)[:3] == [date(2027, 3, 12), date(2027, 5, 7), date(2027, 7, 2)]
    assert regimen.doses.get(pk=first.pk).due_date == date(2027, 3, 12)  # the same planned dose, moved
    assert recorded(regimen) == given_before  # the six loading doses given are untouched
    assert regimen.options == {"phases": {"maintenance": {"spacing_value": 8}}}
    assert regimen.status == RegimenStatus.ACTIVE and regimen.start_date == T0  # the same regimen: same T0


def test_the_decision_is_recorded_with_who_when_the_old_and_new_interval_and_why(
    patient: Any, clinician: Any, clock: Any
) -> None:
    regimen = on_maintenance(patient, clock)

    regimen_shorten_interval(regimen=regimen, spacing_value=10, by=clinician, reason=REASON)

    decision = RegimenDecision.objects.get(regimen=regimen)
    assert decision.kind == DecisionKind.INTERVAL_SHORTENED
    assert decision.get_kind_display() == "Interval shortened"
    assert (decision.phase_index, decision.decided_on, decision.decided_by) == (1, DECIDED, clinician)
    assert "Maintenance: every 12 weeks → every 10 weeks (R-UK-4)" in decision.note
    assert f"Reason: {REASON}" in decision.note


def test_a_clinic_admin_may_shorten_it_too(patient: Any, clinic_admin: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    regimen_shorten_interval(regimen=regimen, spacing_value=10, by=clinic_admin)

    assert planned(regimen)[0] == date(2027, 3, 26)  # 10 weeks after 15 January


@pytest.mark.parametrize("weeks", [12, 13, 20])
def test_an_equal_or_longer_interval_is_refused_naming_spacing_value_and_nothing_changes(
    patient: Any, clinician: Any, clock: Any, weeks: int
) -> None:
    regimen = on_maintenance(patient, clock)

    with pytest.raises(ServiceError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=weeks, by=clinician, reason=REASON)

    assert refused.value.field == "spacing_value"
    assert "shorter than the current interval (every 12 weeks)" in refused.value.message
    regimen.refresh_from_db()
    assert regimen.options == {}
    assert not regimen.decisions.exists()
    assert planned(regimen)[0] == FIRST_MAINTENANCE


def test_a_second_shortening_is_measured_against_the_interval_set_by_the_first(
    patient: Any, clinician: Any, clock: Any
) -> None:
    regimen = on_maintenance(patient, clock)
    regimen_shorten_interval(regimen=regimen, spacing_value=10, by=clinician)

    with pytest.raises(ServiceError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=11, by=clinician)
    assert "(every 10 weeks)" in refused.value.message

    regimen_shorten_interval(regimen=regimen, spacing_value=9, by=clinician)
    assert planned(regimen)[0] == date(2027, 3, 19)  # 9 weeks after 15 January
    assert regimen.decisions.count() == 2


def test_below_the_protocols_8_weeks_needs_an_override_reason(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    with pytest.raises(ServiceError) as no_reason:
        regimen_shorten_interval(regimen=regimen, spacing_value=6, by=clinician, reason=REASON)
    with pytest.raises(ServiceError) as too_short:
        regimen_shorten_interval(regimen=regimen, spacing_value=6, by=clinician, override_reason="x")

    assert no_reason.value.field == "override_reason"
    assert "every 6 weeks is outside the protocol's range (every 8 to 13 weeks)" in no_reason.value.message
    assert too_short.value.field == "override_reason"
    assert not regimen.decisions.exists() and planned(regimen)[0] == FIRST_MAINTENANCE

    regimen = regimen_shorten_interval(
        regimen=regimen, spacing_value=6, by=clinician, reason=REASON, override_reason="Haematologist advised 6-weekly"
    )

    assert planned(regimen)[0] == date(2027, 2, 26)  # 6 weeks after 15 January
    assert regimen.options["override_reason"] == "Haematologist advised 6-weekly"
    assert regimen.override_reason == "Haematologist advised 6-weekly"
    note = regimen.decisions.get().note
    assert "every 12 weeks → every 6 weeks" in note and "Override reason" in note and "6-weekly" in note


def test_even_an_override_stays_within_the_override_bound(
    patient: Any, clinician: Any, clock: Any, settings: Any
) -> None:
    # Issue 12 (D-S1), the same bound as at the start: with COBALT_OVERRIDE_MAX_FACTOR 2, 8-13 weeks widen to 4-26.
    settings.COBALT = {**settings.COBALT, "OVERRIDE_MAX_FACTOR": 2}
    regimen = on_maintenance(patient, clock)

    with pytest.raises(ServiceError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=3, by=clinician, override_reason="a long enough reason")

    assert refused.value.field == "spacing_value"
    assert "beyond what an override may set: 4-26" in refused.value.message
    assert not regimen.decisions.exists()


def test_no_interval_at_all_is_refused(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    with pytest.raises(ServiceError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=0, by=clinician, override_reason="a long enough reason")

    assert refused.value.field == "spacing_value"
    assert not regimen.decisions.exists()


@pytest.mark.parametrize("value", ["6", 6.0, True, None])
def test_a_value_that_is_not_a_whole_number_is_refused(patient: Any, clinician: Any, clock: Any, value: Any) -> None:
    regimen = on_maintenance(patient, clock)

    with pytest.raises(ServiceError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=value, by=clinician)

    assert refused.value.field == "spacing_value"


def test_a_nurse_may_not_shorten_the_interval(patient: Any, nurse: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    with pytest.raises(PermissionDenied):
        regimen_shorten_interval(regimen=regimen, spacing_value=8, by=nurse, reason=REASON)

    assert not regimen.decisions.exists() and planned(regimen)[0] == FIRST_MAINTENANCE


def test_another_clinics_clinician_may_not_either(patient: Any, other_clinic: Any, clock: Any) -> None:
    from patients.models import Role
    from tests.factories import staff_user

    regimen = on_maintenance(patient, clock)

    with pytest.raises(PermissionDenied):
        regimen_shorten_interval(regimen=regimen, spacing_value=8, by=staff_user(other_clinic, Role.CLINICIAN))


def test_a_stopped_regimen_is_refused(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)
    Regimen.objects.filter(pk=regimen.pk).update(status=RegimenStatus.STOPPED)

    with pytest.raises(ConflictError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician)

    assert refused.value.field == "regimen"
    assert not regimen.decisions.exists()


def test_the_loading_phase_three_times_a_week_has_no_interval_to_shorten(
    patient: Any, clinician: Any, clock: Any
) -> None:
    regimen = start(patient)  # loading in progress: "3 times a week" (fewer times a week would be longer)

    with pytest.raises(ConflictError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=2, by=clinician)

    assert refused.value.field == "phase"
    assert "given 3 times a week: it has no interval" in refused.value.message


def test_a_monthly_phase_is_already_as_short_as_months_go(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = start(patient, "ileal-resection")  # 1000 mcg IM every month

    with pytest.raises(ConflictError) as refused:
        regimen_shorten_interval(regimen=regimen, spacing_value=0, by=clinician)

    assert refused.value.field == "phase"
    assert "every month" in refused.value.message


def test_a_later_replan_keeps_the_new_interval(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)
    regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician, reason=REASON)

    # The first maintenance dose is given three days late, on Monday 15 March: the next is 8 weeks after that
    give_next(regimen, "maintenance", clock, on=date(2027, 3, 15))
    assert planned(regimen)[:2] == [date(2027, 5, 10), date(2027, 7, 5)]

    # and a re-plan for any other reason (new lab results) keeps it
    regimen_replan(regimen=regimen)
    assert planned(regimen)[:2] == [date(2027, 5, 10), date(2027, 7, 5)]


def test_a_dose_the_shorter_interval_brings_into_the_past_is_due_on_the_day_of_the_decision(
    patient: Any, clinician: Any, clock: Any
) -> None:
    # The first maintenance dose given on 9 April; the next planned 12 weeks later, on 2 July
    regimen = on_maintenance(patient, clock)
    give_next(regimen, "maintenance", clock)
    assert planned(regimen)[0] == date(2027, 7, 2)

    # On Friday 25 June (11 weeks on) the clinician shortens it to 8 weeks: 8 weeks after 9 April was 4 June
    clock.move_to(noon(date(2027, 6, 25)))
    regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician, reason=REASON)

    # The dose is due today, not three weeks overdue; the next 8 weeks after it
    assert planned(regimen)[:2] == [date(2027, 6, 25), date(2027, 8, 20)]


def test_a_dose_the_shorter_interval_brings_to_a_closed_day_moves_to_the_next_open_day(
    patient: Any, clinician: Any, clock: Any
) -> None:
    # Decided on Saturday 26 June: the clinic is closed at weekends
    regimen = on_maintenance(patient, clock)
    give_next(regimen, "maintenance", clock)
    clock.move_to(noon(date(2027, 6, 26)))

    regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician)

    assert planned(regimen)[0] == date(2027, 6, 28)  # Monday


def test_an_overdue_dose_keeps_its_due_date(patient: Any, clinician: Any, clock: Any) -> None:
    # RULES §10 V-11: the first maintenance dose (9 April) was not given and is overdue on 20 April
    regimen = on_maintenance(patient, clock)
    clock.move_to(noon(date(2027, 4, 20)))

    regimen_shorten_interval(regimen=regimen, spacing_value=10, by=clinician)

    # It stays due on 9 April (S-4 counts from there); the one after it is 10 weeks later, not 12
    assert planned(regimen)[:2] == [FIRST_MAINTENANCE, date(2027, 6, 18)]


# --- The API -----------------------------------------------------------------------------------------------------


def url(regimen: Regimen) -> str:
    return f"/api/regimens/{regimen.pk}/shorten-interval/"


def test_the_api_shortens_the_interval_and_answers_the_regimen(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    response = client_for(clinician).post(url(regimen), {"spacing_value": 8, "reason": REASON}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == regimen.pk
    assert body["options"] == {"phases": {"maintenance": {"spacing_value": 8}}}
    maintenance = [d["due_date"] for d in body["doses"] if d["phase"] == "maintenance" and d["status"] == "planned"]
    assert maintenance[0] == "2027-03-12"
    (decision,) = body["decisions"]
    assert (decision["kind"], decision["decided_by"], decision["decided_on"]) == (
        "interval_shortened",
        clinician.pk,
        "2027-02-01",
    )
    assert REASON in decision["note"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spacing_value": 12}, "spacing_value"),
        ({"spacing_value": 6}, "override_reason"),
        ({"spacing_value": 6, "override_reason": "short"}, "override_reason"),
        ({"spacing_value": "six"}, "spacing_value"),
        ({"reason": REASON}, "spacing_value"),
    ],
)
def test_the_api_answers_400_naming_the_field(
    patient: Any, clinician: Any, clock: Any, body: dict[str, Any], field: str
) -> None:
    regimen = on_maintenance(patient, clock)

    response = client_for(clinician).post(url(regimen), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not regimen.decisions.exists()


def test_the_api_answers_403_to_a_nurse(patient: Any, nurse: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    response = client_for(nurse).post(url(regimen), {"spacing_value": 8}, format="json")

    assert response.status_code == 403
    assert not regimen.decisions.exists()


def test_the_api_answers_404_for_another_clinics_regimen(other_patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(other_patient, clock)

    response = client_for(clinician).post(url(regimen), {"spacing_value": 8}, format="json")

    assert response.status_code == 404
    assert not regimen.decisions.exists()


def test_the_api_answers_409_for_a_stopped_regimen(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)
    Regimen.objects.filter(pk=regimen.pk).update(status=RegimenStatus.STOPPED)

    response = client_for(clinician).post(url(regimen), {"spacing_value": 8}, format="json")

    assert response.status_code == 409
    assert "regimen" in response.json()


# --- The pages ----------------------------------------------------------------------------------------------------


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(regimen: Regimen) -> str:
    return f"/regimens/{regimen.pk}/shorten-interval/"


def test_the_page_shows_the_current_interval_and_the_range(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    response = web(clinician).get(page(regimen))

    assert response.status_code == 200
    text = " ".join(page_text(response.content.decode()).split())
    assert "Shorten the interval" in text
    assert "Current interval every 12 weeks" in text
    assert "every 8 to 13 weeks" in text
    assert "Next dose planned 9 Apr 2027" in text
    assert 'name="spacing_value"' in response.content.decode()
    assert 'type="hidden" name="override_reason"' in response.content.decode()  # asked only when needed


def test_a_nurse_gets_403_from_the_page(patient: Any, nurse: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    assert web(nurse).get(page(regimen)).status_code == 403
    assert web(nurse).post(page(regimen), {"spacing_value": 8}).status_code == 403
    assert not regimen.decisions.exists()


def test_another_clinics_regimen_is_not_found(other_patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(other_patient, clock)

    assert web(clinician).get(page(regimen)).status_code == 404


def test_posting_the_page_moves_the_dose_and_names_its_new_date(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = on_maintenance(patient, clock)

    response = web(clinician).post(page(regimen), {"spacing_value": "8", "reason": REASON}, follow=True)

    assert response.redirect_chain[-1][0] == f"/patients/{patient.pk}/#regimens"
    text = " ".join(page_text(response.content.decode()).split())
    assert "Interval shortened to every 8 weeks. The next dose is planned on 12 Mar 2027." in text
    assert "Interval shortened · clinician · Maintenance: every 12 weeks → every 8 weeks (R-UK-4)" in text
    assert planned(regimen)[0] == date(2027, 3, 12)


def test_the_page_shows_the_refusal_on_the_field_and_asks_for_the_override_reason(
    patient: Any, clinician: Any, clock: Any
) -> None:
    regimen = on_maintenance(patient, clock)
    client = web(clinician)

    longer = client.post(page(regimen), {"spacing_value": "13"})
    below = client.post(page(regimen), {"spacing_value": "6", "reason": REASON})

    assert longer.status_code == 200
    assert "shorter than the current interval" in longer.context["form"].errors["spacing_value"][0]
    assert 'type="hidden" name="override_reason"' in longer.content.decode()
    assert below.status_code == 200
    assert "outside the protocol's range (every 8 to 13 weeks)" in below.context["form"].errors["override_reason"][0]
    assert '<textarea name="override_reason"' in below.content.decode()
    assert not regimen.decisions.exists()

    done = client.post(
        page(regimen), {"spacing_value": "6", "reason": REASON, "override_reason": "Haematologist advised 6-weekly"}
    )

    assert done.status_code == 302
    assert planned(regimen)[0] == date(2027, 2, 26)


def test_the_page_of_a_regimen_with_nothing_to_shorten_says_why(patient: Any, clinician: Any, clock: Any) -> None:
    regimen = start(patient)  # loading in progress

    response = web(clinician).get(page(regimen))

    assert response.status_code == 200
    assert "no interval in days, weeks or months to shorten" in page_text(response.content.decode())
    assert 'name="spacing_value"' not in response.content.decode()


def test_the_patient_page_offers_the_button_to_a_prescriber_when_the_phase_can_be_shortened(
    patient: Any, clinician: Any, nurse: Any, clock: Any
) -> None:
    regimen = start(patient)
    button = f'href="/regimens/{regimen.pk}/shorten-interval/"'
    patient_page = f"/patients/{patient.pk}/"

    assert button not in web(clinician).get(patient_page).content.decode()  # loading: 3 times a week

    regimen = on_maintenance_after(regimen, clock)

    assert button in web(clinician).get(patient_page).content.decode()
    assert "Shorten the interval" in web(clinician).get(patient_page).content.decode()
    assert button not in web(nurse).get(patient_page).content.decode()
    Regimen.objects.filter(pk=regimen.pk).update(status=RegimenStatus.STOPPED)
    assert button not in web(clinician).get(patient_page).content.decode()


def test_the_patient_pages_flag_is_worked_out_from_the_rows_it_has_read(
    patient: Any, clock: Any, django_assert_num_queries: Any
) -> None:
    # The patient page is pinned at a fixed number of queries (tests/patients/test_patient_pages.py): the button's
    # flag reads the regimen's own protocol copy and options, nothing more.
    from regimens.pages import _timeline, regimen_rows

    on_maintenance(patient, clock)
    (regimen,) = regimen_rows(patient)

    with django_assert_num_queries(0):
        assert _timeline(regimen, None, True)["can_shorten"] is True
        assert _timeline(regimen, None, False)["can_shorten"] is False


def test_the_regimen_card_says_how_often_the_phase_in_progress_comes_and_shows_the_shortened_interval(
    patient: Any, clinician: Any, nurse: Any, clock: Any
) -> None:
    regimen = start(patient)
    patient_page = f"/patients/{patient.pk}/"
    assert "Loading · 3 times a week" in page_text(web(nurse).get(patient_page).content.decode())

    regimen = on_maintenance_after(regimen, clock)
    assert "Maintenance · every 12 weeks" in page_text(web(nurse).get(patient_page).content.decode())

    regimen_shorten_interval(regimen=regimen, spacing_value=8, by=clinician, reason=REASON)
    shown = page_text(web(nurse).get(patient_page).content.decode())
    assert "Maintenance · every 8 weeks" in shown and "every 12 weeks" in shown  # the decision keeps the old one


@pytest.mark.parametrize(
    ("spacing", "value", "text"),
    [
        ("daily", None, "daily"),
        ("alternate_days", 1, "on alternate days"),
        ("times_per_week", 3, "3 times a week"),
        ("every_n_days", 1, "every day"),
        ("every_n_days", 2, "every 2 days"),
        ("every_n_weeks", 12, "every 12 weeks"),
        ("monthly", 1, "every month"),
        ("monthly", 3, "every 3 months"),
    ],
)
def test_spacing_text_says_each_spacing_in_words(spacing: str, value: int | None, text: str) -> None:
    from regimens.services.regimens import spacing_text

    assert spacing_text(spacing, value) == text
