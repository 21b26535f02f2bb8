"""Issue 12: protocols are shared by every clinic; only a superuser may change them (admin and API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from patients.models import ClinicMembership, Role
from regimens.models import Protocol, ProtocolPhase
from tests.conftest import assert_admin_refused, client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic_admin_client(clinic: Any) -> Client:
    """A clinic admin given every Django permission of the regimens app (the most a site may grant)."""
    user = UserFactory(username="protocol-admin", is_staff=True)
    ClinicMembership.objects.create(user=user, clinic=clinic, role=Role.ADMIN)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="regimens"))
    client = Client()
    client.force_login(user)
    return client


def change_form(protocol: Protocol) -> dict[str, Any]:
    """Enough of the change form's POST data for the view to try to save it."""
    data: dict[str, Any] = {
        "code": protocol.code, "name": protocol.name, "rules": protocol.rules, "active": "on",
        "description": getattr(protocol, "description", ""),
    }  # fmt: skip
    return data


def test_a_clinic_admin_may_view_but_not_change_a_protocol(clinic_admin_client: Client) -> None:
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    url = reverse("admin:regimens_protocol_change", args=[protocol.pk])
    # The whole admin is the superusers' tool now: the page is refused, pointing to the web app.
    assert_admin_refused(clinic_admin_client.get(url))
    assert clinic_admin_client.post(url, change_form(protocol)).status_code == 403
    # The protocol admin's own rule stays: with admin access, a non-superuser would see it read-only.
    from django.contrib import admin

    from tests.conftest import admin_request

    model_admin = admin.site._registry[Protocol]
    request = admin_request(UserFactory(username="read-only", is_staff=True))
    request.user.user_permissions.add(*Permission.objects.filter(content_type__app_label="regimens"))
    request.user = type(request.user).objects.get(pk=request.user.pk)  # fresh permission cache
    assert model_admin.has_view_permission(request, protocol)
    assert not model_admin.has_change_permission(request, protocol)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_delete_permission(request, protocol)
    assert clinic_admin_client.get(reverse("admin:regimens_protocol_add")).status_code == 403
    delete = reverse("admin:regimens_protocol_delete", args=[protocol.pk])
    assert clinic_admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Protocol.objects.filter(pk=protocol.pk).exists()


def test_a_clinic_admin_cannot_revert_a_protocol_from_its_history(clinic_admin_client: Client) -> None:
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    phase = protocol.phases.get(key="maintenance")
    before = phase.dose_mcg
    protocol.name = "Renamed by a superuser"
    protocol.save()
    oldest = protocol.history.order_by("history_date").first()
    assert oldest is not None
    url = reverse("admin:regimens_protocol_simple_history", args=[protocol.pk, oldest.history_id])
    assert_admin_refused(clinic_admin_client.get(url))
    assert clinic_admin_client.post(url, change_form(protocol)).status_code == 403
    protocol.refresh_from_db()
    assert protocol.name == "Renamed by a superuser"
    assert ProtocolPhase.objects.get(pk=phase.pk).dose_mcg == before


def test_a_superuser_may_change_a_protocol(admin_client: Client) -> None:
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    page = admin_client.get(reverse("admin:regimens_protocol_change", args=[protocol.pk]))
    assert page.status_code == 200
    assert b'name="_save"' in page.content


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_protocol_api_is_read_only_for_clinic_admins(clinic_admin: Any, method: str) -> None:
    api = client_for(clinic_admin)
    response = getattr(api, method)("/api/protocols/hydroxo-uk-standard/", {"name": "mine"})
    assert response.status_code == 405
    assert Protocol.objects.get(code="hydroxo-uk-standard").name != "mine"
