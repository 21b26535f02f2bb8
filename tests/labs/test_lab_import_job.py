"""Large CSV imports as a Celery job (issue 12): 202 with a job URL, progress, the same report as a
synchronous import, all or nothing, clinic-scoped; the page polls the job and shows the report.

The threshold (COBALT_IMPORT_SYNC_MAX_ROWS) is lowered to 3 rows so that the files of test_lab_import.py run
as jobs; Celery runs the task inline (task_always_eager) once the upload's transaction commits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from patients.labs import jobs
from patients.models import Clinic, LabImportJob, LabResult, Patient
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user
from tests.labs.test_lab_import import BAD, BAD_ERRORS, GOOD, HEADER
from tests.labs.test_lab_pages import report_rows, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_threshold(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "IMPORT_SYNC_MAX_ROWS": 3}


@pytest.fixture
def eager() -> Iterator[None]:
    from tracker.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = saved


@pytest.fixture
def alice(clinic: Clinic) -> Patient:
    return PatientFactory(clinic=clinic, mrn="A100", sex="female")


@pytest.fixture
def bob(clinic: Clinic) -> Patient:
    return PatientFactory(clinic=clinic, mrn="B200", sex="male")


def upload(api: APIClient, text: str, capture: Any, **fields: Any) -> Any:
    file = SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv")
    with capture(execute=True):
        return api.post("/api/lab-results/import/", {"file": file, **fields}, format="multipart")


def test_a_file_above_the_threshold_answers_202_with_a_job_that_ends_with_the_synchronous_report(
    api: APIClient, alice: Patient, eager: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = upload(api, BAD, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    url = response.json()["job"]
    assert url.startswith("http://testserver/api/lab-imports/") and response["Location"] == url
    job = api.get(url).json()
    assert (job["status"], job["stage"], job["rows_done"], job["rows_total"], job["failure"]) == (
        "done", "checking", 10, 10, None
    )
    assert [(e["row"], e["field"]) for e in job["report"]["errors"]] == BAD_ERRORS
    assert LabResult.objects.count() == 0  # one refused row: nothing stored, as without a job

    settings.COBALT = {**settings.COBALT, "IMPORT_SYNC_MAX_ROWS": 2000}
    synchronous = upload(api, BAD, django_capture_on_commit_callbacks)
    assert synchronous.status_code == 400
    assert job["report"] == synchronous.json()
    assert LabImportJob.objects.get().content == ""  # the upload is not kept once the job ends


def test_keep_valid_in_a_job_stores_the_valid_rows_under_the_reported_batch(
    api: APIClient, alice: Patient, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    url = upload(api, BAD, django_capture_on_commit_callbacks, keep_valid="true").json()["job"]

    report = api.get(url).json()["report"]
    assert (report["rows"], report["created"]) == (10, 2)
    assert [(e["row"], e["field"]) for e in report["errors"]] == BAD_ERRORS
    assert set(LabResult.objects.values_list("import_batch", flat=True)) == {report["import_batch"]}
    assert sorted(LabResult.objects.values_list("analyte", flat=True)) == ["hemoglobin", "platelets"]


def test_a_file_within_the_threshold_is_still_imported_in_the_request(
    api: APIClient, alice: Patient, bob: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    response = upload(api, GOOD, django_capture_on_commit_callbacks)  # 3 rows: not more than 3

    assert response.status_code == 201
    assert response.json()["created"] == 3
    assert not LabImportJob.objects.exists()


def test_the_job_shows_its_progress_while_it_checks_the_rows(
    api: APIClient, alice: Patient, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    text = HEADER + "A100,hemoglobin,120,g/L,2026-11-02,,,,\n" * 8
    seen: list[tuple[str, str, int, int]] = []
    original = jobs.import_lab_results

    def watched(**kwargs: Any) -> Any:
        progress = kwargs.pop("progress")

        def record(stage: str, done: int, total: int) -> None:
            progress(stage, done, total)
            job = api.get(f"/api/lab-imports/{LabImportJob.objects.get().pk}/").json()
            seen.append((job["status"], job["stage"], job["rows_done"], job["rows_total"]))

        return original(progress=record, **kwargs)

    with mock.patch("patients.labs.importer.PROGRESS_EVERY", 2), mock.patch.object(jobs, "import_lab_results", watched):
        url = upload(api, text, django_capture_on_commit_callbacks).json()["job"]

    assert seen == [
        ("running", "checking", 2, 8),
        ("running", "checking", 4, 8),
        ("running", "checking", 6, 8),
        ("running", "checking", 8, 8),
        ("running", "writing", 8, 8),
        ("running", "writing", 8, 8),  # after the (only) chunk written
    ]
    done = api.get(url).json()
    assert (done["status"], done["report"]["created"]) == ("done", 8)
    assert LabResult.objects.count() == 8


def test_a_queued_job_says_so_with_the_rows_it_counted(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch("patients.labs.jobs.dispatch"):
        url = upload(api, BAD, django_capture_on_commit_callbacks).json()["job"]

    job = api.get(url).json()
    assert (job["status"], job["rows_done"], job["rows_total"], job["report"]) == ("queued", 0, 10, None)


def test_a_file_the_importer_refuses_whole_ends_the_job_failed_with_the_reason(
    api: APIClient, alice: Patient, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch("patients.labs.importer.MAX_ROWS", 5):
        url = upload(api, BAD, django_capture_on_commit_callbacks).json()["job"]

    job = api.get(url).json()
    assert job["status"] == "failed" and job["report"] is None
    assert job["failure"] == {"file": ["has 10 rows; import at most 5 at a time"]}
    assert LabResult.objects.count() == 0


def test_an_unreadable_file_is_refused_at_once_as_before(api: APIClient, alice: Patient) -> None:
    not_text = SimpleUploadedFile("results.csv", b"\xff\xfe" + b"x\n" * 10, content_type="text/csv")
    response = api.post("/api/lab-results/import/", {"file": not_text}, format="multipart")

    assert response.status_code == 400 and "UTF-8" in response.json()["file"][0]
    assert not LabImportJob.objects.exists()


def test_a_job_runs_once_however_often_its_message_comes(
    api: APIClient, alice: Patient, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    upload(api, HEADER + "A100,hemoglobin,120,g/L,2026-11-02,,,,\n" * 4, django_capture_on_commit_callbacks)

    assert jobs.run_import_job(LabImportJob.objects.get().pk) == "not queued"
    assert LabResult.objects.count() == 4


def test_when_the_queue_is_down_the_job_fails_saying_so(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch("patients.tasks.import_lab_job.delay", side_effect=OSError("connection refused")):
        url = upload(api, BAD, django_capture_on_commit_callbacks).json()["job"]

    job = api.get(url).json()
    assert job["status"] == "failed" and "could not be queued" in job["failure"]["file"][0]


def test_another_clinics_job_is_not_found(
    api: APIClient, alice: Patient, eager: None, other_clinic: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    url = upload(api, BAD, django_capture_on_commit_callbacks).json()["job"]
    outsider = staff_user(other_clinic, username="outsider")

    assert client_for(outsider).get(url).status_code == 404
    assert signed_in(outsider).get(f"/labs/import/{LabImportJob.objects.get().pk}/").status_code == 404
    assert api.get(url).status_code == 200


def test_the_schema_documents_the_202_and_the_job() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)

    accepted = schema["paths"]["/api/lab-results/import/"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/LabImportAccepted")
    job = schema["paths"]["/api/lab-imports/{id}/"]["get"]["responses"]
    assert job["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/LabImportJob")
    assert "404" in job


# --- The page ----------------------------------------------------------------------------------------


def page_upload(client: Client, text: str, **extra: Any) -> Any:
    data = {"file": SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv"), **extra}
    return client.post("/labs/import/", data)


def test_a_large_file_on_the_page_goes_to_a_progress_page_that_polls_until_the_report(
    alice: Patient, nurse: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = signed_in(nurse)
    with mock.patch("patients.labs.jobs.dispatch"):  # the worker has not started it yet
        response = page_upload(client, BAD)
    job = LabImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/labs/import/{job.pk}/"

    waiting = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in waiting and f'hx-get="/labs/import/{job.pk}/"' in waiting
    assert '<progress id="import-progress-bar" max="10" value="0"' in waiting
    assert "Waiting to start" in waiting and "0 of 10 rows checked" in waiting

    polled = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert "<html" not in polled.content.decode() and 'hx-trigger="every 2s"' in polled.content.decode()

    jobs.run_import_job(job.pk)
    finished = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true"  # the poll stops: the whole page comes back with the report

    page = client.get(response["Location"]).content.decode()
    assert "hx-trigger" not in page and "Nothing was stored" in page
    settings.COBALT = {**settings.COBALT, "IMPORT_SYNC_MAX_ROWS": 2000}
    synchronous = page_upload(client, BAD).content.decode()
    assert report_rows(page) == report_rows(synchronous)
    assert len(report_rows(page)) == 10


def test_a_failed_job_page_says_why_nothing_was_stored(alice: Patient, nurse: Any) -> None:
    client = signed_in(nurse)
    with mock.patch("patients.labs.importer.MAX_ROWS", 5), mock.patch("patients.labs.jobs.dispatch"):
        page_upload(client, BAD)
        job = LabImportJob.objects.get()
        jobs.run_import_job(job.pk)

    body = client.get(f"/labs/import/{job.pk}/").content.decode()
    assert "Nothing was stored" in body and "has 10 rows; import at most 5 at a time" in body


@pytest.mark.parametrize("rows", [4, 40])
def test_the_job_page_takes_the_same_queries_for_more_rows(
    clinic: Clinic, nurse: Any, rows: int, django_assert_max_num_queries: Any
) -> None:
    mrns = [PatientFactory(clinic=clinic).mrn for _ in range(rows)]
    text = "mrn,analyte,value,unit,collected_at\n" + "".join(f"{m},hemoglobin,x,g/dL,2026-11-02\n" for m in mrns)
    client = signed_in(nurse)
    with mock.patch("patients.labs.jobs.dispatch"):
        page_upload(client, text)
    job = LabImportJob.objects.get()
    with django_assert_max_num_queries(5):
        client.get(f"/labs/import/{job.pk}/", HTTP_HX_REQUEST="true")
    jobs.run_import_job(job.pk)
    with django_assert_max_num_queries(5):
        response = client.get(f"/labs/import/{job.pk}/")
    assert len(report_rows(response.content.decode())) == rows


# --- A job that lost its worker ------------------------------------------------------------------------


def queued_job(api: APIClient, capture: Any) -> LabImportJob:
    """A job uploaded through the API whose message no worker has taken yet."""
    with mock.patch("patients.labs.jobs.dispatch"):
        upload(api, BAD, capture)
    return LabImportJob.objects.get()


def worker_died(job: LabImportJob, minutes_ago: int) -> None:
    """A worker claimed the job and checked 250 rows, then was killed `minutes_ago` minutes ago."""
    then = timezone.now() - timedelta(minutes=minutes_ago)
    LabImportJob.objects.filter(pk=job.pk).update(
        status="running", stage="checking", rows_done=250, started_at=then - timedelta(hours=1), heartbeat_at=then
    )


def test_a_job_whose_worker_died_reads_as_failed_saying_nothing_was_stored(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    job = queued_job(api, django_capture_on_commit_callbacks)
    worker_died(job, minutes_ago=11)

    read = api.get(f"/api/lab-imports/{job.pk}/").json()

    assert read["status"] == "failed" and read["report"] is None
    [message] = read["failure"]["file"]
    assert "the worker importing it stopped" in message
    assert "Nothing was stored" in message and "upload the file again" in message
    assert LabResult.objects.count() == 0
    stored = LabImportJob.objects.get()
    assert (stored.status, stored.content) == ("failed", "")  # failed for good, the upload not kept
    # The file can be imported again, and is.
    with mock.patch("patients.labs.jobs.dispatch"):
        upload(api, BAD, django_capture_on_commit_callbacks)
    again = LabImportJob.objects.exclude(pk=job.pk).get()
    assert jobs.run_import_job(again.pk) == "done"


def test_a_job_with_a_recent_sign_of_life_keeps_running_however_long_ago_it_started(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    job = queued_job(api, django_capture_on_commit_callbacks)
    worker_died(job, minutes_ago=9)  # started an hour ago, last progress 9 minutes ago: within 10

    assert api.get(f"/api/lab-imports/{job.pk}/").json()["status"] == "running"


def test_the_limit_is_a_setting(
    api: APIClient, alice: Patient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "IMPORT_STALE_SECONDS": 120}
    job = queued_job(api, django_capture_on_commit_callbacks)
    worker_died(job, minutes_ago=3)

    read = api.get(f"/api/lab-imports/{job.pk}/").json()
    assert read["status"] == "failed" and "for 2 minutes" in read["failure"]["file"][0]


def test_a_job_no_worker_took_fails_saying_so(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    job = queued_job(api, django_capture_on_commit_callbacks)
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        read = api.get(f"/api/lab-imports/{job.pk}/").json()

    assert read["status"] == "failed"
    assert "no worker started importing it within 10 minutes" in read["failure"]["file"][0]
    # Its message, when a worker comes at last, does nothing.
    assert jobs.run_import_job(job.pk) == "not queued"
    assert LabResult.objects.count() == 0


def test_the_progress_page_of_a_job_whose_worker_died_stops_polling_and_says_why(
    api: APIClient, alice: Patient, nurse: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = queued_job(api, django_capture_on_commit_callbacks)
    worker_died(job, minutes_ago=11)
    client = signed_in(nurse)

    assert client.get(f"/labs/import/{job.pk}/", HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    page = client.get(f"/labs/import/{job.pk}/").content.decode()
    assert "hx-trigger" not in page and "Nothing was stored" in page
    assert "the worker importing it stopped" in page and "upload the file again" in page


def test_the_staff_sweep_fails_stale_jobs_nobody_is_watching(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    from tracker import sweeps

    stale = queued_job(api, django_capture_on_commit_callbacks)
    worker_died(stale, minutes_ago=30)
    with mock.patch("patients.labs.jobs.dispatch"):
        upload(api, BAD, django_capture_on_commit_callbacks)
    fresh = LabImportJob.objects.exclude(pk=stale.pk).get()

    counts = sweeps.run("staff", timezone.now())

    assert counts["stale_import_jobs"] == 1
    assert LabImportJob.objects.get(pk=stale.pk).status == "failed"
    assert LabImportJob.objects.get(pk=fresh.pk).status == "queued"
    assert sweeps.run("staff", timezone.now())["stale_import_jobs"] == 0


def test_progress_is_the_heartbeat(api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any) -> None:
    job = queued_job(api, django_capture_on_commit_callbacks)
    long_ago = timezone.now() - timedelta(hours=1)
    beats: list[bool] = []
    original = jobs.import_lab_results

    def watched(**kwargs: Any) -> Any:
        progress = kwargs.pop("progress")

        def record(stage: str, done: int, total: int) -> None:
            LabImportJob.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
            progress(stage, done, total)
            beats.append(LabImportJob.objects.get(pk=job.pk).heartbeat_at > long_ago)

        return original(progress=record, **kwargs)

    with mock.patch.object(jobs, "import_lab_results", watched):
        assert jobs.run_import_job(job.pk) == "done"
    assert beats and all(beats)


def test_a_slow_worker_whose_job_was_failed_meanwhile_stores_nothing(
    api: APIClient, alice: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    text = HEADER + "A100,hemoglobin,120,g/L,2026-11-02,,,,\n" * 4
    with mock.patch("patients.labs.jobs.dispatch"):
        upload(api, text, django_capture_on_commit_callbacks)
    job = LabImportJob.objects.get()
    original = jobs.import_lab_results

    def watched(**kwargs: Any) -> Any:
        progress = kwargs.pop("progress")

        def record(stage: str, done: int, total: int) -> None:
            progress(stage, done, total)
            if stage == "writing":  # the sweep, half an hour on, while this worker writes
                jobs.fail_stale_jobs(timezone.now() + timedelta(minutes=30))

        return original(progress=record, **kwargs)

    with mock.patch.object(jobs, "import_lab_results", watched):
        assert jobs.run_import_job(job.pk) == "abandoned"
    assert LabResult.objects.count() == 0  # as the failed job says
    assert LabImportJob.objects.get().status == "failed"
