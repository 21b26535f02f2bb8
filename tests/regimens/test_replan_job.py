"""Issue 16: a calendar change at a clinic with more active regimens than COBALT_CALENDAR_SYNC_MAX_REGIMENS is saved
at once and re-planned by a Celery job in batches, each batch committed with the job's progress; the API answers
202 with the job's URL, the page shows the progress, and a stopped job resumes where it stopped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.utils import timezone as djtz

from patients.models import Clinic, Role
from patients.services import clinic_update_calendar
from regimens import jobs
from regimens.models import DoseStatus, Protocol, Regimen, Replan, ReplanJob, ScheduledDose
from regimens.services import regimen_start
from tests.conftest import client_for, page_text
from tests.factories import ClinicFactory, PatientFactory, staff_user
from tracker import sweeps

pytestmark = pytest.mark.django_db

MONDAY = date(2027, 1, 4)
WEDNESDAY = 2
NO_WEDNESDAYS = [0, 1, 3, 4]


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime(2027, 1, 4, 9, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "CALENDAR_SYNC_MAX_REGIMENS": 3, "REPLAN_BATCH_SIZE": 2}


def clinic_with_regimens(count: int) -> Clinic:
    clinic = ClinicFactory(name="Riverside")
    for _ in range(count):
        regimen_start(
            patient=PatientFactory(clinic=clinic), protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
            start_date=MONDAY,
        )
    return clinic


def on_wednesdays(clinic: Clinic) -> int:
    """Planned doses of the clinic still due on a Wednesday."""
    rows = ScheduledDose.objects.filter(clinic=clinic, status=DoseStatus.PLANNED)
    return sum(1 for d in rows.values_list("due_date", flat=True) if d.weekday() == WEDNESDAY)


def test_a_small_clinic_is_replanned_within_the_request(clock: Any, small_limits: None) -> None:
    clinic = clinic_with_regimens(3)
    api = client_for(staff_user(clinic, Role.ADMIN, username="boss"))

    response = api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": NO_WEDNESDAYS}, format="json")

    assert response.status_code == 200
    assert not ReplanJob.objects.exists()
    assert on_wednesdays(clinic) == 0


def test_a_large_clinic_answers_202_with_the_job_and_a_worker_replans_in_batches(
    clock: Any, small_limits: None, django_capture_on_commit_callbacks: Any
) -> None:
    clinic = clinic_with_regimens(5)
    assert on_wednesdays(clinic) > 0
    api = client_for(staff_user(clinic, Role.ADMIN, username="boss"))

    with mock.patch.object(jobs.replan_clinic_job, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": NO_WEDNESDAYS}, format="json")

    assert response.status_code == 202, response.json()
    job = ReplanJob.objects.get()
    assert response["Location"] == response.json()["job"]
    assert response.json()["job"].endswith(f"/api/replan-jobs/{job.pk}/")
    assert response.json()["clinic"]["open_weekdays"] == NO_WEDNESDAYS  # the calendar is saved at once
    delay.assert_called_once_with(job.pk)
    assert on_wednesdays(clinic) > 0  # the doses wait for the worker
    queued = api.get(f"/api/replan-jobs/{job.pk}/").json()
    assert (queued["status"], queued["regimens_done"], queued["regimens_total"]) == ("queued", 0, 5)

    assert jobs.run_replan_job(job.pk) == "done"

    assert on_wednesdays(clinic) == 0
    body = api.get(f"/api/replan-jobs/{job.pk}/").json()
    assert (body["status"], body["regimens_done"], body["regimens_total"]) == ("done", 5, 5)
    # One audit event for the whole change, however many batches it took.
    assert set(Replan.objects.values_list("batch", flat=True)) == {job.audit_batch}
    assert jobs.run_replan_job(job.pk) == "not queued"  # a duplicate message does nothing


def test_a_job_that_stops_keeps_its_committed_batches_and_resumes_after_them(clock: Any, small_limits: None) -> None:
    clinic = clinic_with_regimens(5)
    clinic_update_calendar(clinic=clinic, open_weekdays=NO_WEDNESDAYS)
    job = ReplanJob.objects.get()
    real = jobs.replan_regimens
    calls: list[list[int]] = []

    def second_batch_dies(ids: list[int], **kwargs: Any) -> int:
        calls.append(list(ids))
        if len(calls) == 2:
            raise RuntimeError("worker terminated")
        return real(ids, **kwargs)

    with mock.patch.object(jobs, "replan_regimens", side_effect=second_batch_dies), pytest.raises(RuntimeError):
        jobs.run_replan_job(job.pk)

    job.refresh_from_db()
    assert (job.status, job.regimens_done, job.last_regimen_id) == ("failed", 2, calls[0][-1])
    first_batch = ScheduledDose.objects.filter(regimen_id__in=calls[0], status=DoseStatus.PLANNED)
    assert not [d for d in first_batch.values_list("due_date", flat=True) if d.weekday() == WEDNESDAY]
    assert on_wednesdays(clinic) > 0  # the rest is not done yet

    with mock.patch.object(jobs, "dispatch") as dispatch:
        jobs.replan_job_resume(job=job)
    assert jobs.run_replan_job(job.pk) == "done"

    job.refresh_from_db()
    assert (job.status, job.regimens_done) == ("done", 5)
    assert on_wednesdays(clinic) == 0
    assert dispatch.call_count <= 1
    # The first batch was not re-planned twice: each regimen has one audit row for the change.
    assert sorted(Replan.objects.values_list("regimen_id", flat=True)) == sorted(
        Regimen.objects.filter(patient__clinic=clinic).values_list("pk", flat=True)
    )


def test_a_done_job_cannot_be_resumed(clock: Any, small_limits: None) -> None:
    clinic = clinic_with_regimens(4)
    clinic_update_calendar(clinic=clinic, open_weekdays=NO_WEDNESDAYS)
    job = ReplanJob.objects.get()
    jobs.run_replan_job(job.pk)
    api = client_for(staff_user(clinic, Role.ADMIN, username="boss"))

    response = api.post(f"/api/replan-jobs/{job.pk}/resume/")

    assert response.status_code == 409
    assert "status" in response.json()


def test_the_page_shows_the_progress_and_another_clinics_job_is_hidden(
    clock: Any, small_limits: None, client: Any
) -> None:
    clinic = clinic_with_regimens(4)
    clinic_update_calendar(clinic=clinic, open_weekdays=NO_WEDNESDAYS)
    job = ReplanJob.objects.get()
    ReplanJob.objects.filter(pk=job.pk).update(status="running", regimens_done=2)
    client.force_login(staff_user(clinic, Role.NURSE, username="nurse-r"))

    page = client.get(f"/calendar/replan/{job.pk}/")

    assert page.status_code == 200
    assert "2 of 4 regimens re-planned" in page_text(page.content.decode())
    assert 'max="4" value="2"' in page.content.decode()

    client.force_login(staff_user(ClinicFactory(name="Elsewhere"), Role.NURSE, username="nurse-e"))
    assert client.get(f"/calendar/replan/{job.pk}/").status_code == 404


def test_the_horizons_sweep_resumes_a_job_whose_worker_stopped_and_gives_up_after_three_tries(
    clock: Any, small_limits: None, django_capture_on_commit_callbacks: Any
) -> None:
    clinic = clinic_with_regimens(5)
    clinic_update_calendar(clinic=clinic, open_weekdays=NO_WEDNESDAYS)
    job = ReplanJob.objects.get()
    real = jobs.replan_regimens

    def killed_after_one_batch(ids: list[int], **kwargs: Any) -> int:
        real(ids, **kwargs)
        raise SystemExit("worker terminated")  # not an Exception: the job is left running, as after a SIGKILL

    with mock.patch.object(jobs, "replan_regimens", side_effect=killed_after_one_batch), pytest.raises(SystemExit):
        jobs.run_replan_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("running", 1)

    clock.shift(timedelta(minutes=9))
    assert "replan_jobs_resumed" not in sweeps.run("horizons", djtz.now())  # not silent for 10 minutes yet
    clock.shift(timedelta(minutes=2))
    with mock.patch.object(jobs, "dispatch") as dispatch, django_capture_on_commit_callbacks(execute=True):
        result = sweeps.run("horizons", djtz.now())
    assert (result["replan_jobs_resumed"], result.get("replan_jobs_failed")) == (1, None)
    dispatch.assert_called_once_with(job.pk)

    assert jobs.run_replan_job(job.pk) == "done"  # the worker that picks it up goes on where the last one stopped
    job.refresh_from_db()
    assert (job.status, job.regimens_done, job.attempts) == ("done", 5, 2)
    assert on_wednesdays(clinic) == 0

    ReplanJob.objects.filter(pk=job.pk).update(status="running", attempts=jobs.MAX_ATTEMPTS)
    clock.shift(timedelta(minutes=11))
    assert sweeps.run("horizons", djtz.now())["replan_jobs_failed"] == 1
    job.refresh_from_db()
    assert job.status == "failed" and "resume it" in job.error_message
