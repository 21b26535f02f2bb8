"""A large lab CSV import run by a real Celery worker (issue 12): the API answers 202 at once and the worker
imports the file; the job ends done with every row stored. A worker killed mid-import leaves a job that reads
as failed once it has been silent for COBALT_IMPORT_STALE_SECONDS, with nothing stored. PostgreSQL, Redis and
a worker process."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.models import LabImportJob, LabResult
from tests.conftest import client_for
from tests.factories import ClinicFactory, PatientFactory, staff_user
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROWS = 6000


def csv_for(mrns: list[str], rows: int) -> SimpleUploadedFile:
    lines = ["mrn,analyte,value,unit,collected_at"]
    lines += [
        f"{mrns[n % len(mrns)]},hemoglobin,{100 + n % 50},g/L,2026-{1 + n % 9:02d}-{1 + n % 28:02d}"
        for n in range(rows)
    ]
    return SimpleUploadedFile("results.csv", "\n".join(lines).encode(), content_type="text/csv")


def test_a_several_thousand_row_file_is_imported_by_the_worker(main_redis: str, start_worker: Any) -> None:
    clinic = ClinicFactory()
    mrns = [PatientFactory(clinic=clinic).mrn for _ in range(30)]
    nurse = staff_user(clinic, username="importer")
    start_worker(main_redis, 25)  # no mail is sent: any SMTP port will do

    file = csv_for(mrns, ROWS)
    api = client_for(nurse)
    response = api.post("/api/lab-results/import/", {"file": file}, format="multipart")

    assert response.status_code == 202, response.content
    url = response.json()["job"]

    def finished() -> bool:
        return bool(api.get(url).json()["status"] in ("done", "failed"))

    wait_for(finished, 120, "the import job to end", 0.5)
    job = api.get(url).json()
    assert (job["status"], job["rows_done"], job["failure"]) == ("done", ROWS, None), job["failure"]
    assert (job["report"]["rows"], job["report"]["created"], job["report"]["errors"]) == (ROWS, ROWS, [])
    assert LabResult.objects.filter(import_batch=job["report"]["import_batch"]).count() == ROWS
    assert LabImportJob.objects.get().content == ""


def test_a_job_whose_worker_is_killed_reads_as_failed_with_nothing_stored(
    main_redis: str, start_worker: Any, settings: Any
) -> None:
    clinic = ClinicFactory()
    mrns = [PatientFactory(clinic=clinic).mrn for _ in range(30)]
    api = client_for(staff_user(clinic, username="importer"))
    worker = start_worker(main_redis, 25)

    response = api.post("/api/lab-results/import/", {"file": csv_for(mrns, 60000)}, format="multipart")
    assert response.status_code == 202, response.content
    url = response.json()["job"]
    wait_for(lambda: bool(api.get(url).json()["rows_done"] > 0), 120, "the worker to report progress", 0.05)
    worker.kill()  # SIGKILL mid-import: no chance to say anything

    job = LabImportJob.objects.get()
    assert job.status == "running"  # what the page showed for ever before
    settings.COBALT = {**settings.COBALT, "IMPORT_STALE_SECONDS": 2}
    wait_for(lambda: bool(api.get(url).json()["status"] == "failed"), 10, "the silent job to read as failed", 0.5)

    failure = api.get(url).json()["failure"]["file"][0]
    assert "the worker importing it stopped" in failure and "Nothing was stored" in failure
    assert LabResult.objects.count() == 0
