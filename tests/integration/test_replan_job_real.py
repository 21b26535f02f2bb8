"""A large calendar change re-planned by a real Celery worker (issue 16): the API answers 202 at once with the
calendar saved, and the worker moves the doses in batches until the job is done. PostgreSQL, Redis and a worker
process."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone as djtz

from patients.models import Role
from regimens.models import DoseStatus, Protocol, Replan, ReplanJob, ScheduledDose
from regimens.services import regimen_start
from tests.conftest import client_for
from tests.factories import ClinicFactory, PatientFactory, staff_user
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REGIMENS = 7
WEDNESDAY = 2


def test_a_large_calendar_change_is_replanned_by_the_worker_in_batches(
    main_redis: str, start_worker: Any, builtin_protocols: None, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "CALENDAR_SYNC_MAX_REGIMENS": 3}
    clinic = ClinicFactory()
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    for _ in range(REGIMENS):
        regimen_start(patient=PatientFactory(clinic=clinic), protocol=protocol, start_date=djtz.now().date())
    start_worker(main_redis, 25, {"COBALT_REPLAN_BATCH_SIZE": "2"})  # four batches

    api = client_for(staff_user(clinic, Role.ADMIN, username="boss"))
    response = api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [0, 1, 3, 4]}, format="json")

    assert response.status_code == 202, response.content
    url = response.json()["job"]
    wait_for(lambda: api.get(url).json()["status"] in ("done", "failed"), 120, "the re-plan job to end", 0.5)
    job = api.get(url).json()
    assert (job["status"], job["regimens_done"], job["regimens_total"]) == ("done", REGIMENS, REGIMENS), job
    planned = ScheduledDose.objects.filter(clinic=clinic, status=DoseStatus.PLANNED).values_list("due_date", flat=True)
    assert planned and not [d for d in planned if d.weekday() == WEDNESDAY]
    assert set(Replan.objects.values_list("batch", flat=True)) <= {ReplanJob.objects.get().audit_batch}
