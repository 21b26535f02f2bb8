"""Query filters for regimens, doses and lab rechecks (django-filter)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone as djtz

from patients.models import Patient
from patients.selectors import clinic_patient_zones
from regimens.models import DoseStatus, LabRecheck, RecheckStatus, Regimen, RegimenStatus, ScheduledDose
from tracker.api import IdFilter, PlausibleDateFilter
from tracker.clock import local_date
from tracker.permissions import staff_clinic_ids


def before_local_today(
    queryset: QuerySet[Any],
    date_field: str,
    now: datetime | None = None,
    among: Q | None = None,
    zones: Iterable[str] | None = None,
    patients: QuerySet[Patient] | None = None,
) -> Q:
    """A condition "`date_field` is before today in the row's patient's time zone" (for the rows `among` selects,
    e.g. the planned doses: only their zones are read).

    "Today" differs by zone (it is already tomorrow in Auckland), but only within the band of local dates
    that exist somewhere on earth now (UTC-12 to UTC+14: at most three dates). A date before the band is
    before every patient's today; one after it, after every patient's today; only rows dated inside the band
    need their patient's zone. The zones of the rows in the band (a short index range) give the earliest and
    latest of their todays: a row dated before the earliest is overdue whatever its zone, one dated on or after
    the latest is not, and only the rows dated between (none when all those zones share one date, as in a
    clinic in one zone) look up their patient's zone, in a subquery that runs for those rows alone. The bulk of
    the rows is one date comparison on the dose row: a count or a page over the due-date indexes, no join to
    every patient.

    `zones`, when given, holds at least every zone of the rows' patients (e.g. those of their clinics' patients,
    patients.selectors.clinic_patient_zones): read instead of the band's zones. A zone of it without a row in the
    band can only widen the earliest-to-latest span, whose rows are then looked up exactly: the answer is the same.

    `patients`, when given, holds at least every patient of the rows (e.g. those of their clinics): the rows dated
    between are then matched against those patients in the zones past that date as a set (`patient_id IN (...)`,
    which PostgreSQL may hash), instead of a lookup per row (an EXISTS ... LIMIT 1, which it runs row by row: at
    100,000 patients, 14,000 lookups for a clinic's day while its patients straddle midnight).
    """
    now = now or djtz.now()
    earliest, latest = (now - timedelta(hours=12)).date(), (now + timedelta(hours=14)).date()
    if zones is None:
        band = queryset.filter(among or Q(), **{f"{date_field}__gte": earliest, f"{date_field}__lt": latest})
        # The zone by a subquery per band row, not a join: a join of the clinic's day of rows is planned as a hash
        # of every patient (a scan of the patients table) where the rows need a few lookups by primary key.
        zone = Patient.objects.filter(pk=OuterRef("patient_id")).values("timezone")
        zones = band.order_by().annotate(zone=Subquery(zone)).values_list("zone", flat=True).distinct()
    by_zone = {zone: local_date(now, zone) for zone in zones}
    if not by_zone:
        return Q(**{f"{date_field}__lt": earliest})
    first, last = min(by_zone.values()), max(by_zone.values())
    between = Q(pk__in=[])
    day = first
    while day < last:  # at most two dates (the band's width)
        past = [zone for zone, today in by_zone.items() if today > day]
        if patients is not None:
            between |= Q(patient_id__in=patients.filter(timezone__in=past).values("pk"), **{date_field: day})
        else:
            one_by_one = Exists(Patient.objects.filter(pk=OuterRef("patient_id"), timezone__in=past))
            between |= Q(one_by_one, **{date_field: day})
        day += timedelta(days=1)
    return Q(**{f"{date_field}__lt": last}) & (Q(**{f"{date_field}__lt": first}) | between)


def before_local_today_in(clinics: list[int] | None, queryset: QuerySet[Any], date_field: str, among: Q) -> Q:
    """before_local_today for rows of the patients of `clinics` (the user's, or the one asked for): their patients'
    zones (a few index lookups, patients.selectors.clinic_patient_zones) and, on the edge of today, those patients
    as a set; with no clinics known (None), the zones of the rows themselves."""
    if clinics is None:
        return before_local_today(queryset, date_field, among=among)
    return before_local_today(
        queryset,
        date_field,
        among=among,
        zones=clinic_patient_zones(clinics),
        patients=Patient.objects.filter(clinic_id__in=clinics),
    )


def request_clinics(request: Any) -> list[int] | None:
    """The clinics of the request's user (the dose and recheck lists show those clinics' rows alone); None without
    a signed-in user (a filterset used outside a request)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return staff_clinic_ids(user)


class RegimenFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RegimenStatus.choices)
    protocol = django_filters.CharFilter(field_name="protocol__code", help_text="Protocol code.")

    class Meta:
        model = Regimen
        fields = ["patient", "status", "protocol"]


class DoseFilter(django_filters.FilterSet):
    # The clinic on the dose row (denormalised from the patient): one index range, no join.
    clinic = IdFilter(field_name="clinic", help_text="Clinic id.")
    status = django_filters.ChoiceFilter(choices=DoseStatus.choices)
    due_from = PlausibleDateFilter(field_name="due_date", lookup_expr="gte", help_text="Due on or after.")
    due_to = PlausibleDateFilter(field_name="due_date", lookup_expr="lte", help_text="Due on or before.")
    # true or false only (tracker.api.StrictBooleanField): "maybe" is a 400, not the whole list.
    overdue = django_filters.BooleanFilter(
        method="filter_overdue",
        help_text="true: planned and due before today in the patient's time zone; false: all others.",
    )

    class Meta:
        model = ScheduledDose
        fields = ["patient", "regimen", "clinic", "status", "due_from", "due_to", "overdue"]

    def filter_overdue(self, queryset: QuerySet[ScheduledDose], name: str, value: bool) -> QuerySet[ScheduledDose]:
        planned = Q(status=DoseStatus.PLANNED)
        clinics = self.listed_clinics()
        overdue = planned & before_local_today_in(clinics, queryset, "due_date", among=planned)
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def listed_clinics(self) -> list[int] | None:
        """The user's clinics (DoseViewSet lists those clinics' doses alone), or the clinic asked for if one is:
        their patients' time zones are a few index lookups (patients.selectors.clinic_patient_zones), where the
        zones of the doses on the edge of today would be a lookup per dose of a clinic's day, and their patients
        in a zone are one index range (issue 16). None without a user (the band's zones are read)."""
        clinics = request_clinics(self.request)
        asked = self.form.cleaned_data.get("clinic")
        return None if clinics is None else [c for c in clinics if asked is None or c == asked]


class LabRecheckFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=RecheckStatus.choices,
        method="filter_status",
        help_text="`overdue` includes due rechecks whose window has passed; `due` leaves them out.",
    )
    due_from = PlausibleDateFilter(field_name="due_date", lookup_expr="gte", help_text="Due on or after.")
    due_to = PlausibleDateFilter(field_name="due_date", lookup_expr="lte", help_text="Due on or before.")

    class Meta:
        model = LabRecheck
        fields = ["patient", "regimen", "status", "due_from", "due_to"]

    def filter_status(self, queryset: QuerySet[LabRecheck], name: str, value: str) -> QuerySet[LabRecheck]:
        # The stored status stays `due` until a sweep or a result changes it; the API reports a
        # due recheck whose window has closed as overdue, so the filter must agree with it.
        due = Q(status=RecheckStatus.DUE)
        # As the dose worklist's overdue: the zones of the user's clinics' patients (a few index lookups) and the
        # rechecks whose window ends on the edge of today matched against those patients as a set, not a lookup of
        # the patient's zone per recheck.
        lapsed = due & before_local_today_in(request_clinics(self.request), queryset, "window_end", among=due)
        if value == RecheckStatus.OVERDUE:
            return queryset.filter(Q(status=RecheckStatus.OVERDUE) | lapsed)
        if value == RecheckStatus.DUE:
            return queryset.filter(status=RecheckStatus.DUE).exclude(lapsed)
        return queryset.filter(status=value)
