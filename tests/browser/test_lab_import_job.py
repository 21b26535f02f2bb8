"""A large CSV import in a real Chromium (issue 12): the nurse lands on the job's page, sees its progress
bar while the worker has not finished, and the page (htmx polling every 2 s) turns into the per-row report
once the job is done, without her reloading it."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from playwright.sync_api import expect

from patients.labs import jobs
from patients.models import LabImportJob, LabResult, Role
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import PatientFactory, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_large_import_shows_its_progress_then_its_report(
    browser: Any, live_server: Any, clinic: Any, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "IMPORT_SYNC_MAX_ROWS": 3}
    PatientFactory(clinic=clinic, mrn="RVH000123")
    nurse = staff_user(clinic, Role.NURSE, username="nora")
    page = sign_in(browser, live_server, nurse)
    text = "mrn,analyte,value,unit,collected_at\n" + "RVH000123,hemoglobin,120,g/L,2026-11-02\n" * 5
    text += "RVH000123,mcv,112,furlongs,2026-11-02\n"

    page.goto(f"{live_server.url}/labs/import/")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "results.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    with mock.patch.object(jobs, "dispatch"), page.expect_navigation():  # no worker has picked it up yet
        page.get_by_role("button", name="Check and import").click()

    job = LabImportJob.objects.get()
    assert page.url == f"{live_server.url}/labs/import/{job.pk}/"
    expect(page.locator("progress#import-progress-bar")).to_be_visible()
    expect(page.get_by_text("0 of 6 rows checked.")).to_be_visible()
    assert_accessible(page)
    shot(page, "lab-import-job-progress")

    jobs.run_import_job(job.pk)  # the worker's part

    page.get_by_role("heading", name="Report of the file you uploaded").wait_for(timeout=10_000)
    expect(page.get_by_text("Nothing was stored")).to_be_visible()
    expect(page.get_by_text("upload it with “Store the valid rows” ticked")).to_be_visible()
    rows = page.locator("table.nhsuk-table tbody tr")
    assert rows.count() == 6
    assert rows.nth(5).inner_text().split("\t")[:3] == ["7", "Refused", "unit"]
    assert page.locator("progress").count() == 0
    assert_accessible(page)
    shot(page, "lab-import-job-report")
    assert not LabResult.objects.exists()
