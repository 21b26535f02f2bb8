"""Who may use the API: staff of a clinic see only their own clinics' patients."""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef, QuerySet
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def staff_clinic_ids(user: Any) -> list[int]:
    """The clinics whose patients this user may see (empty for anyone who is not staff)."""
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_cobalt_clinic_ids", None)
    if cached is None:
        # user.memberships: patients.ClinicMembership (the kernel does not import the app).
        cached = list(user.memberships.values_list("clinic_id", flat=True))
        user._cobalt_clinic_ids = cached
    return cached


def with_clinic_ids(queryset: QuerySet[Any], user_field: str) -> QuerySet[Any]:
    """`queryset` (rows with a user in `user_field`, e.g. API tokens) with each row's user's clinics read in the same
    statement, as `cobalt_clinic_ids` (a PostgreSQL ARRAY subquery), for remember_clinic_ids: a request then reads
    no membership of its own (issue 16). On another database (make run's SQLite demo) the rows come unchanged and
    staff_clinic_ids reads the clinics when first asked."""
    if connection.vendor != "postgresql":
        return queryset
    return queryset.annotate(cobalt_clinic_ids=_clinic_ids_subquery(queryset.model._meta.label, user_field))


@functools.cache
def _clinic_ids_subquery(model: str, user_field: str) -> ArraySubquery:
    """The clinics of the user in the `user_field` of `model` ("app.Model"): built once (annotate resolves a copy of
    it each time)."""
    user_model: Any = apps.get_model(model)._meta.get_field(user_field).related_model
    # user.memberships: patients.ClinicMembership (the kernel does not import the app).
    membership: Any = user_model._meta.get_field("memberships").related_model
    return ArraySubquery(membership.objects.filter(user=OuterRef(user_field)).values("clinic_id"))


def remember_clinic_ids(user: Any, row: Any) -> None:
    """Keep the clinics that with_clinic_ids read with `row` as the answer of staff_clinic_ids(user)."""
    ids = getattr(row, "cobalt_clinic_ids", None)
    if ids is not None:
        user._cobalt_clinic_ids = list(ids)


def restrict_to_clinics(queryset: QuerySet[Any], user: Any, clinic_path: str) -> QuerySet[Any]:
    """Filter `queryset` to rows whose `clinic_path` (e.g. 'patient__clinic') is one of the user's."""
    return queryset.filter(**{f"{clinic_path}__in": staff_clinic_ids(user)})


class IsClinicStaff(BasePermission):
    """A logged-in user who belongs to at least one clinic."""

    message = "Only clinic staff may use this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and staff_clinic_ids(request.user))


# SPEC "Who uses it": clinicians start, change and stop regimens and end loading phases; clinic
# admins manage clinics (their calendars) and may do what clinicians do; nurses record doses.
PRESCRIBERS = ("clinician", "admin")
CLINIC_ADMINS = ("admin",)


def has_role(user: Any, clinic_id: int, roles: tuple[str, ...]) -> bool:
    return (
        bool(getattr(user, "is_authenticated", False))
        and user.memberships.filter(clinic_id=clinic_id, role__in=roles).exists()
    )


def is_prescriber(user: Any, clinic_id: int) -> bool:
    """A clinician (or clinic admin) of the clinic `clinic_id`."""
    return has_role(user, clinic_id, PRESCRIBERS)


def require_role(user: Any, clinic_id: int, roles: tuple[str, ...], doing: str) -> None:
    """Refuse (403) unless `user` holds one of `roles` in the clinic `clinic_id`."""
    if not user.memberships.filter(clinic_id=clinic_id, role__in=roles).exists():
        raise PermissionDenied(f"Only a {' or '.join(roles)} of this clinic may {doing}.")
