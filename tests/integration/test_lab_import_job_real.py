"""A large lab CSV import run by a real Celery worker (issue 12): the API answers 202 at once and the worker
imports the file; the job ends done with every row stored. PostgreSQL, Redis and a worker process."""

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


def test_a_several_thousand_row_file_is_imported_by_the_worker(main_redis: str, start_worker: Any) -> None:
    clinic = ClinicFactory()
    mrns = [PatientFactory(clinic=clinic).mrn for _ in range(30)]
    nurse = staff_user(clinic, username="importer")
    lines = ["mrn,analyte,value,unit,collected_at"]
    lines += [
        f"{mrns[n % 30]},hemoglobin,{100 + n % 50},g/L,2026-{1 + n % 9:02d}-{1 + n % 28:02d}" for n in range(ROWS)
    ]
    start_worker(main_redis, 25)  # no mail is sent: any SMTP port will do

    file = SimpleUploadedFile("results.csv", "\n".join(lines).encode(), content_type="text/csv")
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
