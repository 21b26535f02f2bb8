"""Every model of the project has a factory (tests/factories.py), and every factory saves a valid row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import factory
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from simple_history.models import HistoricalChanges

from regimens.models import DoseStatus
from tests import factories

pytestmark = pytest.mark.django_db

ALL_FACTORIES: list[type[factory.django.DjangoModelFactory]] = [
    value
    for value in vars(factories).values()
    if isinstance(value, type)
    and issubclass(value, factory.django.DjangoModelFactory)
    and value is not factory.django.DjangoModelFactory
]


def label(factory_class: type) -> str:
    """InboxMessageFactory -> inbox_message."""
    name = factory_class.__name__.removesuffix("Factory")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def project_models() -> list[type[models.Model]]:
    """The concrete models of the project's own apps (not Django's or a library's), and the User;
    django-simple-history's historical models are written by the library, not by factories."""
    root = Path(settings.BASE_DIR).resolve()
    own_apps = {
        config.label
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(root) and ".venv" not in Path(config.path).parts
    }
    found = [
        model
        for model in apps.get_models()
        if model._meta.app_label in own_apps and not issubclass(model, HistoricalChanges)
    ]
    return [get_user_model(), *found]


def stored_values(row: models.Model) -> dict[str, Any]:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def test_every_model_of_the_project_has_a_factory() -> None:
    covered = {f._meta.model for f in ALL_FACTORIES}
    own = project_models()

    missing = [model._meta.label for model in own if model not in covered]

    assert {"patients.Patient", "regimens.ScheduledDose", "notifications.Delivery"} <= {m._meta.label for m in own}
    assert missing == [], f"add a factory to tests/factories.py for {missing}"


@pytest.mark.parametrize("factory_class", [pytest.param(f, id=label(f)) for f in ALL_FACTORIES])
def test_it_builds_a_valid(factory_class: type[factory.django.DjangoModelFactory]) -> None:
    row = factory_class()
    # Before full_clean(), which would convert what it can (a date given as a string, say).
    built = stored_values(row)

    row.full_clean()
    reloaded = type(row)._default_manager.get(pk=row.pk)
    # Every value the factory set survives the round trip unchanged (a wrong type, or a field the
    # save drops or the database changes, would differ here).
    assert stored_values(reloaded) == built


def test_it_gives_a_dose_the_patient_and_phase_of_its_regimen() -> None:
    regimen = factories.RegimenFactory()

    first = factories.ScheduledDoseFactory(regimen=regimen)
    second = factories.ScheduledDoseFactory(regimen=regimen)

    assert regimen.protocol.is_builtin
    assert regimen.protocol_snapshot["code"] == regimen.protocol.code
    assert first.patient == second.patient == regimen.patient
    loading = regimen.protocol.phases.get(order=0)
    assert (first.phase, first.drug, first.dose_mcg, first.route) == (
        loading.key,
        loading.drug,
        loading.dose_mcg,
        loading.route,
    )
    assert (first.sequence, second.sequence) == (1, 2)
    assert second.due_date > first.due_date
    assert first.status == DoseStatus.PLANNED


def test_it_gives_a_recheck_the_patient_of_its_regimen_and_a_window_around_the_due_date() -> None:
    recheck = factories.LabRecheckFactory(day=28)

    assert recheck.patient == recheck.regimen.patient
    assert recheck.key == "L-6@28"
    assert recheck.window_start < recheck.due_date < recheck.window_end


def test_it_numbers_the_phases_of_a_protocol_in_turn() -> None:
    protocol = factories.ProtocolFactory()

    phases = [factories.ProtocolPhaseFactory(protocol=protocol) for _ in range(2)]

    assert [(p.order, p.key) for p in phases] == [(0, "phase-0"), (1, "phase-1")]


def test_it_addresses_an_inbox_message_to_staff_of_the_alerts_clinic() -> None:
    message = factories.InboxMessageFactory()

    assert message.user.memberships.filter(clinic=message.alert.patient.clinic).exists()
    assert message.channel == "inbox"
    assert message.address == ""
