"""Walking one patient through regimens by the public API, day by day (RULES §10 V-1 scenarios).

The clock is a time_machine traveller; each write runs its after-commit evaluation; `live_until` runs the
sweeps once a day and records every clinic dose on its due date, as a clinic would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.management import call_command
from rest_framework.test import APIClient

from notifications.models import Alert
from regimens.models import DoseStatus, ScheduledDose


def at(on: date, hour: int = 12) -> datetime:
    return datetime.combine(on, time(hour), tzinfo=UTC)


@dataclass
class Story:
    patient: Any
    nurse: APIClient
    clinician: APIClient
    clock: Any
    capture: Any  # django_capture_on_commit_callbacks

    def move_to(self, on: date, hour: int = 12) -> None:
        self.clock.move_to(at(on, hour))

    def post(self, client: APIClient, url: str, body: dict[str, Any], status: int = 201) -> Any:
        with self.capture(execute=True):
            response = client.post(url, body, format="json")
        assert response.status_code == status, response.json()
        return response.json()

    def result(self, analyte: str, value: str, unit: str, on: date, hour: int = 8) -> Any:
        self.move_to(on, hour + 1)
        body = {
            "patient": self.patient.pk,
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "collected_at": at(on, hour).isoformat(),
        }
        return self.post(self.nurse, "/api/lab-results/", body)

    def start(self, protocol: str, on: date) -> int:
        self.move_to(on, 9)
        body = {"patient": self.patient.pk, "protocol": protocol, "start_date": on.isoformat()}
        return int(self.post(self.clinician, "/api/regimens/", body)["id"])

    def stop(self, regimen: int, on: date, reason: str) -> None:
        self.move_to(on, 15)
        self.post(self.clinician, f"/api/regimens/{regimen}/stop/", {"reason": reason}, status=200)

    def give(self, dose: ScheduledDose, hour: int = 10) -> None:
        self.move_to(dose.due_date, hour)
        self.post(
            self.nurse,
            f"/api/doses/{dose.pk}/administer/",
            {"administered_at": at(dose.due_date, hour).isoformat()},
            status=200,
        )

    def first_dose(self, regimen: int) -> ScheduledDose:
        dose = ScheduledDose.objects.filter(regimen_id=regimen, status=DoseStatus.PLANNED).order_by("due_date").first()
        assert dose is not None
        return dose

    def live_until(self, last: date, regimen: int | None = None) -> None:
        """Each day up to `last`: give the regimen's clinic doses due that day, then run every sweep."""
        day = self.clock_date() + timedelta(days=1)
        while day <= last:
            if regimen is not None:
                for dose in ScheduledDose.objects.filter(
                    regimen_id=regimen, status=DoseStatus.PLANNED, due_date=day, self_administered=False
                ):
                    self.give(dose)
            self.move_to(day, 18)
            with self.capture(execute=True):
                call_command("run_sweeps", "--at", at(day, 18).isoformat(), stdout=_Null())
            day += timedelta(days=1)

    def clock_date(self) -> date:
        return datetime.now(UTC).date()

    def open_alert(self, kind: str) -> Alert | None:
        return Alert.objects.filter(patient=self.patient, kind=kind).exclude(status="resolved").first()


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
