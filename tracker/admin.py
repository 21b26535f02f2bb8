"""Admin base classes every app's admin builds on: clinic scoping and read-only clinical records.

A clinic admin sees and edits only the rows of the clinics they administer; a superuser sees all.
The scoping follows the user's clinic memberships (`user.memberships`, patients.ClinicMembership)
without importing the patients app, so every app may use these classes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from tracker.permissions import CLINIC_ADMINS


def admin_clinic_ids(request: HttpRequest) -> list[int] | None:
    """The ids of the clinics this admin user manages; None means all (superuser)."""
    user: Any = request.user
    if user.is_superuser:
        return None
    if not user.is_authenticated:
        return []
    return list(user.memberships.filter(role__in=CLINIC_ADMINS).values_list("clinic_id", flat=True))


class ClinicScopedAdmin(SimpleHistoryAdmin):
    """Limits rows and foreign-key choices to the clinics the user administers.

    `clinic_lookup` is the path from the model to its clinic ("" for the clinic itself,
    "patient__clinic" for a patient's record).
    """

    clinic_lookup = "clinic"
    # Foreign-key choices limited the same way: model label -> path from that model to its clinic.
    # Without this a clinic admin could move a patient into a clinic they cannot see.
    scoped_choices = {"patients.Clinic": "pk", "patients.Patient": "clinic"}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)
        clinics = admin_clinic_ids(request)
        if clinics is None:
            return queryset
        return queryset.filter(**{f"{self.clinic_lookup or 'pk'}__in": clinics}).distinct()

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        clinics = admin_clinic_ids(request)
        related: Any = db_field.related_model
        lookup = self.scoped_choices.get(related._meta.label)
        if clinics is not None and lookup is not None:
            kwargs["queryset"] = related._default_manager.filter(**{f"{lookup}__in": clinics})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # django-simple-history's history pages look rows up without get_queryset(): without these checks a
    # clinic admin could read (and revert) another clinic's rows by their id.
    def _in_scope(self, request: HttpRequest, object_id: str) -> bool:
        return self.get_queryset(request).filter(pk=unquote(object_id)).exists()

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        if not self._in_scope(request, object_id):
            raise Http404("No such record among your clinics' records.")
        response: HttpResponse = super().history_view(request, object_id, extra_context)
        return response

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if not self._in_scope(request, object_id):
            raise Http404("No such record among your clinics' records.")
        # The history form saves on POST even where the page shows no "Revert" button.
        if request.method == "POST" and (self.revert_disabled(request) or not self.has_change_permission(request)):
            raise PermissionDenied("This record cannot be reverted from the admin.")
        response: HttpResponse = super().history_form_view(request, object_id, version_id, extra_context)
        return response


class ViewOnlyAdmin:
    """A mixin for a ModelAdmin of rows only the application writes: no add, change or delete from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyHistoryAdmin(ViewOnlyAdmin, ClinicScopedAdmin):
    """For rows only services may write (they re-plan doses and raise alerts): view and history
    only, no add, change, delete or revert from the admin."""

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True
