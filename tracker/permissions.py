"""Who may use the API: staff of a clinic see only their own clinics' patients."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def staff_clinic_ids(user: Any) -> list[int]:
    """The clinics whose patients this user may see (empty for anyone who is not staff)."""
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_cobalt_clinic_ids", None)
    if cached is None:
        from patients.models import ClinicMembership

        cached = list(ClinicMembership.objects.filter(user=user).values_list("clinic_id", flat=True))
        user._cobalt_clinic_ids = cached
    return cached


def restrict_to_clinics(queryset: QuerySet[Any], user: Any, clinic_path: str) -> QuerySet[Any]:
    """Filter `queryset` to rows whose `clinic_path` (e.g. 'patient__clinic') is one of the user's."""
    return queryset.filter(**{f"{clinic_path}__in": staff_clinic_ids(user)})


class IsClinicStaff(BasePermission):
    """A logged-in user who belongs to at least one clinic."""

    message = "Only clinic staff may use this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and staff_clinic_ids(request.user))
