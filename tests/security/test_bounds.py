"""Issue 12: overrides and previews are bounded; an override reason says something."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import override_settings
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import Medication
from regimens.models import Regimen, ScheduledDose
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REASON = "clinical judgement, see notes"


def preview(api: APIClient, phases: dict[str, Any], reason: str = REASON) -> Any:
    body = {
        "protocol": "hydroxo-uk-standard",
        "start_date": "2026-12-01",
        "options": {"phases": phases, "override_reason": reason},
    }
    return api.post("/api/schedule/preview/", body)


# hydroxo-uk-standard (RULES R-UK-1, R-UK-3a): loading 6 doses of 1000 mcg (no range: 6 is the protocol's
# own value); maintenance 1000 mcg every 8-13 weeks. With the default OVERRIDE_MAX_FACTOR of 10 an override
# may reach a tenth of the minimum to ten times the maximum.


def test_an_override_up_to_the_factor_is_accepted_with_a_reason(clinician_api: APIClient, clock: Any) -> None:
    response = preview(clinician_api, {"loading": {"count": 60}, "maintenance": {"spacing_value": 130}})
    assert response.status_code == 200, response.json()
    assert sum(1 for dose in response.json()["doses"] if dose["phase"] == "loading") == 60
    assert preview(clinician_api, {"maintenance": {"dose_mcg": 10_000}}).status_code == 200


@pytest.mark.parametrize(
    ("phase", "name", "value"),
    [("loading", "count", 61), ("loading", "count", 20_000), ("maintenance", "spacing_value", 131),
     ("maintenance", "dose_mcg", 10_001), ("maintenance", "dose_mcg", 99), ("maintenance", "dose_mcg", 5_000_000),
     ("maintenance", "dose_mcg", 10**12)],
)  # fmt: skip
def test_an_override_beyond_the_factor_is_refused_even_with_a_reason(
    clinician_api: APIClient, patient: Any, clock: Any, phase: str, name: str, value: int
) -> None:
    response = preview(clinician_api, {phase: {name: value}})
    assert response.status_code == 400, response.json()
    [message] = response.json()[f"options.phases.{phase}.{name}"]
    assert "beyond what an override may set" in message
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": "2026-12-01",
            "options": {"phases": {phase: {name: value}}, "override_reason": REASON}}  # fmt: skip
    assert clinician_api.post("/api/regimens/", body).status_code == 400
    assert not Regimen.objects.exists()
    assert not ScheduledDose.objects.exists()


@override_settings(COBALT={**__import__("django.conf").conf.settings.COBALT, "OVERRIDE_MAX_FACTOR": 3})
def test_the_factor_is_a_setting(clinician_api: APIClient, clock: Any) -> None:
    assert preview(clinician_api, {"loading": {"count": 18}}).status_code == 200
    assert preview(clinician_api, {"loading": {"count": 19}}).status_code == 400


def test_an_options_override_reason_of_one_letter_is_refused(clinician_api: APIClient, clock: Any) -> None:
    response = preview(clinician_api, {"maintenance": {"spacing_value": 14}}, reason="x")
    assert response.status_code == 400
    assert "at least 10 characters" in response.json()["options.override_reason"][0]
    # A value inside the protocol's range needs no reason at all.
    assert preview(clinician_api, {"maintenance": {"spacing_value": 10}}, reason="").status_code == 200


def test_the_s1_hard_stop_is_not_overridden_with_the_reason_x(api: APIClient, patient: Any) -> None:
    body = {"patient": patient.pk, "kind": "folic_acid", "dose": "5", "dose_unit": "mg", "route": "PO",
            "start_date": "2027-01-08", "acknowledge": ["folic_acid_before_b12"]}  # fmt: skip
    with time_machine.travel("2027-01-10 09:00:00+00:00", tick=False):
        refused = api.post("/api/medications/", {**body, "override_reason": "x"})
        assert refused.status_code == 400
        assert "at least 10 characters" in refused.json()["override_reason"][0]
        assert not Medication.objects.exists()
        assert not Alert.objects.exists()
        accepted = api.post("/api/medications/", {**body, "override_reason": "B12 given today at the GP"})
    assert accepted.status_code == 201, accepted.json()


def test_preview_needs_a_member_of_clinic_staff(db: Any) -> None:
    outsider = client_for(UserFactory(username="outsider"))
    response = outsider.post("/api/schedule/preview/", {"protocol": "hydroxo-uk-standard", "start_date": "2026-12-01"})
    assert response.status_code == 403
    assert APIClient().post("/api/schedule/preview/", {}).status_code == 401
