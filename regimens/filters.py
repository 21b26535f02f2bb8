"""Query filters for regimens, doses and lab rechecks (django-filter)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone as djtz

from regimens.models import DoseStatus, LabRecheck, RecheckStatus, Regimen, RegimenStatus, ScheduledDose
from tracker.api import IdFilter, PlausibleDateFilter
from tracker.clock import local_date


def before_local_today(queryset: QuerySet[Any], date_field: str, now: datetime | None = None) -> Q:
    """A condition "`date_field` is before today in the row's patient's time zone".

    "Today" differs by zone (it is already tomorrow in Auckland), but only within the band of local dates
    that exist somewhere on earth now (UTC-12 to UTC+14: at most three dates). A date before the band is
    before every patient's today; one after it, after every patient's today; only rows dated inside the band
    need their patient's zone: one date comparison per distinct local date, over the zones of the rows in
    that band (a short index range, never a read of every row). Plain date comparisons work on every
    database and use the due-date indexes.
    """
    now = now or djtz.now()
    earliest, latest = (now - timedelta(hours=12)).date(), (now + timedelta(hours=14)).date()
    band = queryset.filter(**{f"{date_field}__gte": earliest, f"{date_field}__lt": latest})
    zones = band.order_by().values_list("patient__timezone", flat=True).distinct()
    by_today: dict[date, list[str]] = defaultdict(list)
    for zone in zones:
        by_today[local_date(now, zone)].append(zone)
    in_band = Q(pk__in=[])
    for today, zone_names in by_today.items():
        in_band |= Q(patient__timezone__in=zone_names, **{f"{date_field}__lt": today})
    return Q(**{f"{date_field}__lt": latest}) & (Q(**{f"{date_field}__lt": earliest}) | in_band)


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
        overdue = Q(status=DoseStatus.PLANNED) & before_local_today(queryset, "due_date")
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


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
        lapsed = Q(status=RecheckStatus.DUE) & before_local_today(queryset, "window_end")
        if value == RecheckStatus.OVERDUE:
            return queryset.filter(Q(status=RecheckStatus.OVERDUE) | lapsed)
        if value == RecheckStatus.DUE:
            return queryset.filter(status=RecheckStatus.DUE).exclude(lapsed)
        return queryset.filter(status=value)
