"""Fixtures of the regimens tests."""

from __future__ import annotations

from typing import Any

import pytest

from regimens import services
from regimens.models import Protocol


@pytest.fixture
def copy(clinic: Any, clinic_admin: Any) -> Protocol:
    """`clinic`'s own copy of hydroxo-uk-standard, made by its clinic admin (issue 12)."""
    return services.protocol_copy(
        protocol=Protocol.objects.get(code="hydroxo-uk-standard"), clinic=clinic, by=clinic_admin
    )
