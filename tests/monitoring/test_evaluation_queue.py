"""The monitoring rules of an API write run by a worker (COBALT_EVALUATE_IN_WORKER, monitoring/queue.py): the
request commits a marker with the result and queues the task; the worker opens the alerts; nothing is lost when the
broker refuses the task, when the task is lost, when the evaluation fails or when a second write lands while the
worker runs. Web pages still run the rules before they answer. (The suite runs with the setting off; here it is
on. tests/integration/test_evaluation_queue_real.py runs the same through a real worker.)"""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from monitoring import evaluation, queue
from monitoring.models import PendingEvaluation
from notifications.models import Alert
from patients.models import Clinic, LabResult, Patient
from regimens.models import DoseStatus, Regimen, ScheduledDose
from tests.factories import PatientFactory
from tests.timeline import day, noon, start_treatment
from tracker import events

pytestmark = pytest.mark.django_db

KIND = "hemoglobin_not_normalized"  # A-H4: a man's Hb of 125 g/L (LLN 130) at day 56


@pytest.fixture
def in_worker(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "EVALUATE_IN_WORKER": True}


@pytest.fixture
def man(clinic: Clinic) -> Patient:
    patient: Patient = PatientFactory(clinic=clinic, sex="male")
    start_treatment(patient)
    return patient


@pytest.fixture
def queued(in_worker: None) -> Any:
    """The tasks sent to the broker (patient ids), instead of a broker."""
    with mock.patch.object(queue.evaluate_patient_task, "delay") as delay:
        yield delay


def post_hb(api: APIClient, patient: Patient, clock: Any, capture: Any, value: str = "125", on: int = 56) -> Any:
    clock.move_to(noon(day(on)) + timedelta(hours=1))
    body = {
        "patient": patient.pk,
        "analyte": "hemoglobin",
        "value": value,
        "unit": "g/L",
        "collected_at": noon(day(on)).isoformat(),
    }
    with capture(execute=True):
        response = api.post("/api/lab-results/", body, format="json")
    assert response.status_code == 201, response.json()
    return response


def open_kinds(patient: Patient) -> set[str]:
    return set(Alert.objects.filter(patient=patient).exclude(status="resolved").values_list("kind", flat=True))


def test_an_api_result_commits_a_marker_and_a_worker_opens_the_alert(
    man: Patient, api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any, queued: Any
) -> None:
    post_hb(api, man, clock, django_capture_on_commit_callbacks)

    # The request stored the result and queued the rules for a worker; it opened nothing itself
    assert LabResult.objects.filter(patient=man, analyte="hemoglobin").exists()
    queued.assert_called_once_with(man.pk)
    assert KIND not in open_kinds(man)
    assert PendingEvaluation.objects.filter(patient=man).exists()

    # The worker runs the task: the alert opens and the marker goes
    assert queue.evaluate_patient_task(man.pk) is True
    assert KIND in open_kinds(man)
    assert not PendingEvaluation.objects.exists()
    # A second delivery of the same task finds nothing to do
    assert queue.evaluate_patient_task(man.pk) is False


def test_with_celery_running_tasks_inline_the_alert_is_open_when_the_post_returns(
    man: Patient, api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any, in_worker: None
) -> None:
    from tracker.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        post_hb(api, man, clock, django_capture_on_commit_callbacks)
    finally:
        app.conf.task_always_eager = saved

    assert KIND in open_kinds(man)
    assert not PendingEvaluation.objects.exists()


def test_when_the_broker_refuses_the_task_the_request_runs_the_rules_itself(
    man: Patient,
    api: APIClient,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
    in_worker: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with mock.patch.object(queue.evaluate_patient_task, "delay", side_effect=refused), caplog.at_level(logging.ERROR):
        post_hb(api, man, clock, django_capture_on_commit_callbacks)

    assert KIND in open_kinds(man)
    assert not PendingEvaluation.objects.exists()
    assert f"could not queue the monitoring rules of patient {man.pk}: running them here" in caplog.text


def test_a_lost_task_is_run_by_the_evaluations_sweep_a_minute_later(
    man: Patient, api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any, queued: Any
) -> None:
    post_hb(api, man, clock, django_capture_on_commit_callbacks)  # the task never reaches a worker
    written = timezone.now()

    out = StringIO()
    call_command("run_sweeps", "--at", (written + timedelta(seconds=30)).isoformat(), stdout=out)
    assert KIND not in open_kinds(man)  # too soon: the worker may still be on it
    assert PendingEvaluation.objects.filter(patient=man).exists()

    clock.move_to(written + timedelta(seconds=61))
    call_command("run_sweeps", "--at", (written + timedelta(seconds=61)).isoformat(), stdout=out)
    assert KIND in open_kinds(man)
    assert not PendingEvaluation.objects.exists()
    assert "evaluations_retried" in out.getvalue()


def test_a_failing_evaluation_keeps_its_marker_for_the_sweep_and_does_not_hold_up_the_others(
    clinic: Clinic,
    man: Patient,
    api: APIClient,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
    queued: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other: Patient = PatientFactory(clinic=clinic, sex="male")
    start_treatment(other)
    post_hb(api, man, clock, django_capture_on_commit_callbacks)
    post_hb(api, other, clock, django_capture_on_commit_callbacks, value="126")
    later = timezone.now() + timedelta(minutes=5)

    real = evaluation.evaluate_patient

    def fails_for_man(patient_id: int, at: Any = None) -> Any:
        if patient_id == man.pk:
            raise RuntimeError("database went away")
        return real(patient_id, at)

    with mock.patch("monitoring.evaluation.evaluate_patient", side_effect=fails_for_man):
        with pytest.raises(RuntimeError):
            queue.evaluate_patient_task(man.pk)  # the task fails: Celery logs it, the marker stays
        with caplog.at_level(logging.ERROR):
            counts = queue.evaluations_sweep(later)

    assert counts == {"evaluations_retried": 1, "evaluations_failed": 1}
    assert f"the monitoring rules of patient {man.pk} failed" in caplog.text
    assert KIND in open_kinds(other) and KIND not in open_kinds(man)
    assert list(PendingEvaluation.objects.values_list("patient_id", flat=True)) == [man.pk]

    # The next run, with the fault gone, catches up
    assert queue.evaluations_sweep(later + timedelta(minutes=1)) == {"evaluations_retried": 1, "evaluations_failed": 0}
    assert KIND in open_kinds(man)


def test_a_write_that_commits_while_the_worker_evaluates_keeps_its_marker(
    man: Patient, api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any, queued: Any
) -> None:
    post_hb(api, man, clock, django_capture_on_commit_callbacks)
    first = PendingEvaluation.objects.get(patient=man).token
    real = evaluation.evaluate_patient

    def meanwhile(patient_id: int, at: Any = None) -> Any:
        summary = real(patient_id, at)
        queue.mark(patient_id)  # another result for the patient commits before the worker deletes its marker
        return summary

    with mock.patch("monitoring.evaluation.evaluate_patient", side_effect=meanwhile):
        assert queue.evaluate_patient_task(man.pk) is True

    marker = PendingEvaluation.objects.get(patient=man)
    assert marker.token != first  # the second write's marker stays for its own task


def test_the_lab_entry_page_runs_the_rules_before_it_answers(
    builtin_protocols: None, clinic: Clinic, nurse: Any, clock: Any, queued: Any
) -> None:
    # Transactional (builtin_protocols): the page's write commits, and the rules run before the page answers.
    man: Patient = PatientFactory(clinic=clinic, sex="male")
    start_treatment(man)  # the first dose, recorded outside a page, queued the rules: the worker runs them
    assert queue.evaluate_patient_task(man.pk) is True
    queued.reset_mock()
    clock.move_to(noon(day(56)) + timedelta(hours=1))
    client = Client()
    client.force_login(nurse)
    data = {"collected_at": day(56).isoformat() + "T09:00", "lab": "", "note": ""}
    data.update({"hemoglobin_value": "125", "hemoglobin_unit": "g/L"})

    response = client.post(f"/patients/{man.pk}/labs/new/", data, follow=True)

    assert response.status_code == 200
    assert KIND in open_kinds(man)
    # the nurse is told at once which alert opened
    assert "It opened an alert: Hemoglobin fails to normalize (A-H4)" in response.content.decode()
    queued.assert_not_called()
    assert not PendingEvaluation.objects.exists()


def test_at_once_is_decided_when_the_change_is_announced(
    man: Patient, django_capture_on_commit_callbacks: Any, queued: Any
) -> None:
    """A transaction that announces inside at_once() and commits after it still runs the rules at once (the
    in-transaction listener wrote no marker for a worker to find)."""
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with events.at_once():
            events.announce_on_commit("patient.changed", patient_id=man.pk)
        assert not PendingEvaluation.objects.exists()
    queued.assert_not_called()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.announce_on_commit("patient.changed", patient_id=man.pk)
        assert PendingEvaluation.objects.filter(patient=man).exists()
    queued.assert_called_once_with(man.pk)


# The request of an API POST of one result whose rules a worker runs: the user's clinics, the patient, the savepoint,
# the patient's lock, the check for an identical result, the insert and its history row, the marker (one INSERT ...
# ON CONFLICT) and the savepoint's release; a hemoglobin adds the patient's facts (its range depends on a
# pregnancy). The same whatever the patient has stored and whether the result will re-plan (the worker re-plans). With
# the rules in the request (COBALT_EVALUATE_IN_WORKER=False) the POST is 18 or 24
# (tests/labs/test_lab_result_replan.py).
QUEUED_POST_QUERIES = 9
QUEUED_HB_POST_QUERIES = 10


@pytest.mark.parametrize("prior", [1, 30])
@pytest.mark.parametrize(
    ("analyte", "value", "unit", "on", "queries"),
    [("hemoglobin", "125", "g/L", 56, QUEUED_HB_POST_QUERIES), ("platelets", "120", "10^9/L", -1, QUEUED_POST_QUERIES)],
)
def test_the_request_costs_a_fixed_number_of_queries_and_the_worker_does_the_rest(
    man: Patient,
    api: APIClient,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Any,
    queued: Any,
    prior: int,
    analyte: str,
    value: str,
    unit: str,
    on: int,
    queries: int,
) -> None:
    clock.move_to(noon(day(57)))
    for n in range(prior):
        LabResult.objects.create(
            patient=man, analyte="folate", loinc="2284-8", value_as_entered="6", unit_as_entered="ug/L",
            value_canonical=6, unit_canonical="ug/L", interpretation="normal", collected_at=noon(day(n % 50)),
        )  # fmt: skip
    regimen = Regimen.objects.get(patient=man)
    history = Regimen.history.filter(id=regimen.pk).count()
    body = {"patient": man.pk, "analyte": analyte, "value": value, "unit": unit}
    body["collected_at"] = noon(day(on)).isoformat()

    with django_assert_num_queries(queries), django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/lab-results/", body, format="json")

    assert response.status_code == 201, response.json()
    queued.assert_called_once_with(man.pk)
    assert Regimen.history.filter(id=regimen.pk).count() == history  # nothing re-planned in the request
    assert queue.evaluate_patient_task(man.pk) is True
    # A low baseline platelet count changes the lab flags: the worker re-plans (L-4); a follow-up Hb does not
    assert (Regimen.history.filter(id=regimen.pk).count() > history) == (analyte == "platelets")


# The request of a dose given through the API on its due day and the marker; the rules after it run in the worker
# (tests/labs/test_lab_result_replan.py DOSE_ON_ITS_DAY_QUERIES with them in the request). 18 when every dose given was
# re-planned from its date; given on its due day, the dose cannot change the plan, so none is made (issue 16); 11 since
# whether an earlier dose is still planned is read with the locked dose.
QUEUED_DOSE_POST_QUERIES = 11


def test_a_dose_given_on_its_day_through_the_api_is_recorded_in_the_request_and_evaluated_by_the_worker(
    man: Patient,
    api: APIClient,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_num_queries: Any,
    queued: Any,
) -> None:
    queued.reset_mock()
    PendingEvaluation.objects.all().delete()
    second = ScheduledDose.objects.filter(patient=man, status=DoseStatus.PLANNED).order_by("due_date").first()
    assert second is not None
    clock.move_to(noon(second.due_date))
    body = {"administered_at": noon(second.due_date).isoformat()}

    with django_assert_num_queries(QUEUED_DOSE_POST_QUERIES), django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/doses/{second.pk}/administer/", body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "given"
    queued.assert_called_once_with(man.pk)
    assert queue.evaluate_patient_task(man.pk) is True
