"""`manage.py seed_demo --patients N`: smaller demos still cover every protocol, and every treated patient has a
lab history (the 40-patient demo: test_seed_demo.py)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError
from django.test import override_settings
from django.utils import timezone

from patients.models import Patient
from regimens.models import Regimen
from tests.tracker.test_seed_demo import seed

pytestmark = pytest.mark.django_db


def test_it_seeds_fewer_patients_on_request_still_covering_every_protocol():
    seed(patients=10)

    assert Patient.objects.count() == 10
    assert Regimen.objects.values("protocol").distinct().count() == 10


def test_it_gives_treated_patients_lab_histories_entered_through_the_service():
    from patients.models import LabResult
    from regimens.selectors import first_dose_date

    seed(14)

    treated = [p for p in Patient.objects.all() if first_dose_date(p) is not None]
    assert treated
    with_results = {pk for pk in LabResult.objects.values_list("patient_id", flat=True)}
    assert with_results == {p.pk for p in treated}
    now = timezone.now()
    assert not LabResult.objects.filter(collected_at__gt=now).exists()
    # Baselines are taken before the first dose (RULES §2) and are interpreted like any result.
    for patient in treated:
        first = LabResult.objects.filter(patient=patient).order_by("collected_at").first()
        assert first is not None
        assert timezone.localtime(first.collected_at).date() < first_dose_date(patient)
    assert LabResult.objects.filter(analyte="hemoglobin", interpretation="low").exists()
    # A second run adds nothing.
    before = LabResult.objects.count()
    seed(14)
    assert LabResult.objects.count() == before


def test_it_refuses_production_settings_also_under_overridden_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # override_settings (the tests' live server, any test) hides SETTINGS_MODULE; the environment still names it.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tracker.settings.production")
    with override_settings(DEBUG=False), pytest.raises(CommandError, match="refuses to run with production"):
        seed(patients=1)
    assert not Patient.objects.exists()
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tracker.settings.test")
    with override_settings(DEBUG=False):
        seed(patients=1)  # it crashed here before: SETTINGS_MODULE read None
    assert Patient.objects.count() == 1
