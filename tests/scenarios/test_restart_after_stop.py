"""Story (RULES §10 V-1 and V-8): IM treatment works, is stopped, and is restarted months later after a
relapse. The restart gets its own T0 (its first dose given), its own baseline (the latest result before
it), its own recheck windows and its own response alerts; a week-8 Hb that misses its window is judged
by A-H4 when it arrives on day 70 (V-8).
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
from regimens.models import LabRecheck, RecheckStatus, Regimen
from regimens.selectors import current_regimen, regimen_t0
from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.scenarios.regimen_story import Story, at

pytestmark = pytest.mark.django_db

FIRST_T0 = date(2027, 1, 4)  # Monday; the clinic is open Monday to Friday
RESTART = date(2027, 8, 2)  # Monday, about seven months later


@pytest.fixture
def story(clinic: Any, nurse: Any, clinician: Any, django_capture_on_commit_callbacks: Any) -> Iterator[Story]:
    # Metformin-associated deficiency: reversible, so stopping needs no S-5 override.
    patient: Patient = PatientFactory(clinic=clinic, sex="female", deficiency_cause="metformin")
    with time_machine.travel(at(FIRST_T0 - timedelta(days=1)), tick=False) as clock:
        yield Story(patient, client_for(nurse), client_for(clinician), clock, django_capture_on_commit_callbacks)


def test_it_restarts_with_a_new_t0_baseline_rechecks_and_a_late_week_8_hb(story: Story) -> None:
    patient = story.patient
    # Given a first IM regimen that worked (female LLN 120 g/L) and was stopped on day 35
    story.result("hemoglobin", "100", "g/L", FIRST_T0 - timedelta(days=1))
    first = story.start("hydroxo-uk-standard", FIRST_T0)
    story.give(story.first_dose(first))
    story.live_until(FIRST_T0 + timedelta(days=13), regimen=first)
    story.result("hemoglobin", "115", "g/L", FIRST_T0 + timedelta(days=14))
    story.live_until(FIRST_T0 + timedelta(days=27), regimen=first)
    story.result("hemoglobin", "124", "g/L", FIRST_T0 + timedelta(days=28))
    story.live_until(FIRST_T0 + timedelta(days=34), regimen=first)
    story.stop(first, FIRST_T0 + timedelta(days=35), "metformin stopped; deficiency corrected")
    assert not Alert.objects.filter(patient=patient).exclude(status="resolved").exists()

    # When the patient relapses months later and is restarted, with a pre-dose sample on the day
    story.move_to(RESTART - timedelta(days=3))
    story.result("hemoglobin", "104", "g/L", RESTART - timedelta(days=3))
    story.result("platelets", "260", "10^9/L", RESTART - timedelta(days=3))
    # (Until the restart the stopped regimen is still the current one: the low Hb of the relapse is judged
    # by its A-H7, whose window days 76-104 had no Hb and which has no later Hb window, V-8.)
    relapse = story.open_alert("hemoglobin_refractory")
    assert relapse is not None and relapse.evidence["t0"] == FIRST_T0.isoformat()
    assert relapse.evidence["judged_late"] is True
    restart = story.start("hydroxo-uk-standard", RESTART)
    story.result("hemoglobin", "103", "g/L", RESTART, hour=8)
    story.give(story.first_dose(restart), hour=10)

    # Then the restart is the current regimen and its first dose is the new T0
    restarted = Regimen.objects.get(pk=restart)
    assert current_regimen(patient) == restarted
    assert regimen_t0(restarted) == RESTART
    assert regimen_t0(Regimen.objects.get(pk=first)) == FIRST_T0
    # And the first regimen's A-H7 is closed as superseded: the restart's own rules apply now
    relapse.refresh_from_db()
    assert relapse.status == "resolved" and "superseded" in relapse.resolution

    # And its rechecks are planned from the new T0 on the new baseline (Hb 103, low: L-6 and L-7)
    planned = {(r.rule, (r.due_date - RESTART).days) for r in LabRecheck.objects.filter(regimen=restarted)}
    assert {("L-6", 14), ("L-6", 28), ("L-7", 56)} <= planned

    # When the Hb rises well on days 14 and 28 of the restart
    story.live_until(RESTART + timedelta(days=13), regimen=restart)
    story.result("hemoglobin", "116", "g/L", RESTART + timedelta(days=14))
    story.live_until(RESTART + timedelta(days=27), regimen=restart)
    story.result("hemoglobin", "125", "g/L", RESTART + timedelta(days=28))

    # Then no slow-rise alert and no refractory one: the rise is measured from the new baseline 103 (13 and
    # 22 g/L), in the restart's windows; the first regimen's T0 and results play no part
    assert story.open_alert("hemoglobin_slow_rise") is None
    assert story.open_alert("hemoglobin_refractory") is None

    # When the week-8 Hb (days 49-63 of the restart) is not drawn: the L-7 recheck goes overdue
    story.live_until(RESTART + timedelta(days=69), regimen=restart)
    l7 = LabRecheck.objects.get(regimen=restarted, rule="L-7")
    assert l7.status == RecheckStatus.OVERDUE
    assert story.open_alert("hemoglobin_not_normalized") is None

    # And it arrives on day 70, still below the LLN
    body = story.result("hemoglobin", "118", "g/L", RESTART + timedelta(days=70))

    # Then A-H4 judges it, late (V-8), from the restart's T0
    alert = story.open_alert("hemoglobin_not_normalized")
    assert alert is not None
    assert (alert.rule_id, alert.severity) == ("A-H4", "high")
    assert alert.evidence["t0"] == RESTART.isoformat()
    assert alert.evidence["day"] == 70
    assert (alert.evidence["judged_late"], alert.evidence["missed_window"]) == (True, "49-63")
    assert body["id"] in alert.evidence["result_ids"]
    assert Decimal(alert.evidence["value"]) == 118
