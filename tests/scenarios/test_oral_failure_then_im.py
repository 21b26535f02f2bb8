"""Story (RULES §10 V-1): oral cyanocobalamin fails, the clinician stops it and starts IM hydroxocobalamin.
The IM regimen gets its own T0 (its first dose given), its own baseline (the latest result before that T0),
its own recheck windows and its own response alerts: A-H2 fires on the IM regimen's day 14.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from notifications.models import Alert
from patients.models import Patient
from regimens.models import LabRecheck, Regimen
from regimens.selectors import current_regimen, regimen_t0
from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.scenarios.regimen_story import Story, at

pytestmark = pytest.mark.django_db

ORAL_T0 = date(2027, 1, 4)  # Monday; the clinic is open Monday to Friday
IM_START = date(2027, 2, 3)  # Wednesday: oral day 30


@pytest.fixture
def story(clinic: Any, nurse: Any, clinician: Any, django_capture_on_commit_callbacks: Any) -> Iterator[Story]:
    # Metformin-associated deficiency (reversible, not a §10 V-6 oral caution): oral first line is usual.
    patient: Patient = PatientFactory(clinic=clinic, sex="female", deficiency_cause="metformin")
    with time_machine.travel(at(ORAL_T0 - timedelta(days=2)), tick=False) as clock:
        yield Story(patient, client_for(nurse), client_for(clinician), clock, django_capture_on_commit_callbacks)


def test_it_gives_the_im_regimen_a_new_t0_baseline_rechecks_and_response_alerts(story: Story) -> None:
    patient = story.patient
    # Given an anaemic patient (female LLN 120 g/L) started on oral cyanocobalamin, first dose taken on T0
    story.result("hemoglobin", "95", "g/L", ORAL_T0 - timedelta(days=2))
    story.result("platelets", "250", "10^9/L", ORAL_T0 - timedelta(days=2))
    oral = story.start("oral-high-dose", ORAL_T0)
    story.give(story.first_dose(oral), hour=8)
    assert regimen_t0(Regimen.objects.get(pk=oral)) == ORAL_T0

    # When the Hb barely rises on the oral regimen
    story.live_until(ORAL_T0 + timedelta(days=13))
    story.result("hemoglobin", "98", "g/L", ORAL_T0 + timedelta(days=14))
    story.live_until(ORAL_T0 + timedelta(days=27))
    story.result("hemoglobin", "99", "g/L", ORAL_T0 + timedelta(days=28))

    # Then the oral regimen's A-H3 is open, judged from the oral T0 and its baseline 95
    oral_alert = story.open_alert("hemoglobin_slow_rise")
    assert oral_alert is not None
    assert (oral_alert.rule_id, oral_alert.severity) == ("A-H3", "high")
    assert oral_alert.evidence["t0"] == ORAL_T0.isoformat()
    assert Decimal(oral_alert.evidence["baseline"]) == 95

    # When the clinician stops the oral regimen for failure and starts IM, with a pre-dose Hb on the day
    story.stop(oral, ORAL_T0 + timedelta(days=29), "oral failure: poor haematological response")
    story.live_until(IM_START - timedelta(days=1))
    im = story.start("hydroxo-uk-standard", IM_START)
    story.result("hemoglobin", "100", "g/L", IM_START, hour=8)
    first_im = story.first_dose(im)
    assert first_im.due_date == IM_START
    story.give(first_im, hour=10)

    # Then the IM regimen is current, with T0 = its first dose, and the oral regimen's response alert is
    # closed as superseded (the IM regimen's rules apply now)
    im_regimen = Regimen.objects.get(pk=im)
    assert current_regimen(patient) == im_regimen
    assert regimen_t0(im_regimen) == IM_START
    oral_alert.refresh_from_db()
    assert oral_alert.status == "resolved"
    assert "superseded" in oral_alert.resolution
    assert story.open_alert("hemoglobin_slow_rise") is None

    # And the IM regimen's rechecks are planned from its own T0 (L-6: Hb at day 14 ± 3 of the IM regimen)
    l6 = LabRecheck.objects.get(regimen=im_regimen, rule="L-6", due_date=IM_START + timedelta(days=14))
    assert (l6.window_start, l6.window_end) == (IM_START + timedelta(days=11), IM_START + timedelta(days=17))

    # And the trends and B12 status read the IM T0
    trends = story.clinician.get(f"/api/patients/{patient.pk}/trends/").json()
    assert trends["t0"] == IM_START.isoformat()

    # When the Hb on the IM regimen's day 14 (oral day 44) has risen 5 g/L over the new baseline 100
    story.live_until(IM_START + timedelta(days=13), regimen=im)
    body = story.result("hemoglobin", "105", "g/L", IM_START + timedelta(days=14))

    # Then A-H2 fires on the IM regimen: day 14 from the IM T0, baseline 100 (not the oral baseline 95, under
    # which this Hb would have been A-H3's, judged late on oral day 44)
    alert = story.open_alert("hemoglobin_slow_rise")
    assert alert is not None and alert.pk != oral_alert.pk
    assert (alert.rule_id, alert.severity) == ("A-H2", "medium")
    assert alert.evidence["t0"] == IM_START.isoformat()
    assert alert.evidence["day"] == 14
    assert Decimal(alert.evidence["baseline"]) == 100
    assert body["id"] in alert.evidence["result_ids"]
    l6.refresh_from_db()
    assert l6.status == "done"
    assert Alert.objects.filter(patient=patient, kind="hemoglobin_slow_rise").count() == 2
