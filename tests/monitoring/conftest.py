"""Fixtures the monitoring tests share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Patient
from regimens import services
from regimens.models import Protocol, Regimen
from tests.timeline import noon

Enter = Callable[..., Any]

# The safety tests start their regimens on this morning, for Monday 4 January 2027.
TODAY = "2026-12-01 09:00:00+00:00"


def start(
    patient: Any,
    code: str = "hydroxo-uk-standard",
    acknowledge: list[str] | None = None,
    override_reason: str = "",
    options: dict[str, Any] | None = None,
) -> Regimen:
    with time_machine.travel(TODAY, tick=False):
        return services.regimen_start(
            patient=patient,
            protocol=Protocol.objects.get(code=code),
            start_date=date(2027, 1, 4),
            options=options,
            acknowledge=acknowledge,
            override_reason=override_reason,
        )


@pytest.fixture
def enter(api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any) -> Enter:
    """POST one result collected at noon UTC on `on` (the clock moves there), running the evaluation; returns
    the result as the API answers it."""

    def post(patient: Patient, analyte: str, value: Any, unit: str, on: date, **extra: Any) -> Any:
        clock.move_to(noon(on) + timedelta(hours=1))
        body = {
            "patient": patient.pk,
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "collected_at": noon(on).isoformat(),
            **extra,
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/lab-results/", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return post
