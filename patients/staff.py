"""A clinic's staff, as its clinic admins run it: which clinic an admin acts on, invitations, roles,
deactivation (services), and the staff list (selector). The API (patients/staff_views.py) and the
/staff/ page (patients/pages.py) call these same functions.

A clinic admin acts only on memberships of the clinics where they are an admin, and never touches the
Django flags `is_superuser` and `is_staff` (the Django admin stays a tool for superusers).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from patients.models import Clinic, ClinicMembership, Role


def admin_clinics(user: Any) -> list[Clinic]:
    """The clinics where `user` is a clinic admin, by name."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Clinic.objects.filter(memberships__user=user, memberships__role=Role.ADMIN).order_by("name"))


def admin_clinic(user: Any, clinic_id: int | None, doing: str) -> Clinic:
    """The clinic `clinic_id` (default: the user's first clinic as an admin) if `user` is its admin.
    Another clinic's id is a 404, as another clinic's patient is; staff who are not its admin get 403."""
    memberships = {
        m.clinic_id: m
        for m in ClinicMembership.objects.filter(user=user).select_related("clinic").order_by("clinic__name")
    }
    if clinic_id is None:
        admin_of = [m for m in memberships.values() if m.role == Role.ADMIN]
        if not admin_of:
            raise PermissionDenied(f"Only a clinic admin may {doing}.")
        return admin_of[0].clinic
    membership = memberships.get(clinic_id)
    if membership is None:
        raise Http404("No such clinic.")
    if membership.role != Role.ADMIN:
        raise PermissionDenied(f"Only a clinic admin of this clinic may {doing}.")
    return membership.clinic
