"""The yardsticks of bench/results.py that go through the same HTTP stack as Cobalt (routed only by
bench/bare_urls.py, which results.py installs as ROOT_URLCONF for those measurements alone; never part of the
application):

- the lab-result POST's: a bare DRF create view over the same model (a minimal ModelSerializer and
  CreateAPIView, the project's default authentication and IsAuthenticated), reached through the same test
  client and middleware as `/api/lab-results/` (issue 16: "a bare create"). It checks no clinic, converts and
  interprets nothing, re-plans and evaluates nothing;
- the dose POST's: a bare DRF update view of the same dose row (`administered_at` validated, the row read and
  written as given by the user; no lock, no order or warnings check, no re-plan, no marker);
- the reads' (the worklist, the patient page, the dashboard): the bare indexed SQL of the same rows plus their
  JSON encoding (issue 16's yardstick), served by a view behind the same middleware and the same
  authentication as the page or endpoint it stands beside (a token for the API, the session for the page),
  so that the ratio compares Cobalt's own work with the least any view must do to return those rows.
  results.py registers each read's bare work in BARE_READS under its row key;
- an HTML page's other yardstick (docs/scaling.md, "What 2x would take on the patient page", option 3): the same
  bare SQL rendered by a minimal Django template instead of JSON (the site's layout, base.html, and one plain table
  per table read, every column of every row), behind the same session sign-in. results.py registers the rows
  under the row key in BARE_PAGE_ROWS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.template import engines
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients.models import LabResult
from regimens.models import ScheduledDose

# Row key -> the bare work of that read: runs its indexed SQL and returns the JSON of what it read.
BARE_READS: dict[str, Callable[[], str]] = {}
# Row key -> a page's bare SQL: the rows it read, by table (bare_page_html renders them).
BARE_PAGE_ROWS: dict[str, Callable[[], dict[str, list[dict[str, Any]]]]] = {}
BARE_PAGE_TEMPLATE = (
    '{% extends "base.html" %}{% block content %}{% for table, rows in tables %}<h2>{{ table }}</h2>'
    "<table>{% for row in rows %}<tr>{% for value in row.values %}<td>{{ value }}</td>{% endfor %}</tr>{% endfor %}"
    "</table>{% endfor %}{% endblock %}"
)


def _bare_json(key: str) -> HttpResponse:
    work = BARE_READS.get(key)
    if work is None:
        raise Http404(key)
    return HttpResponse(work(), content_type="application/json")


class BareLabResultSerializer(serializers.ModelSerializer[LabResult]):
    # The same request body as /api/lab-results/ ("value", "unit"), stored as entered.
    value = serializers.CharField(source="value_as_entered", max_length=40)
    unit = serializers.CharField(source="unit_as_entered", max_length=30)

    class Meta:
        model = LabResult
        fields = ["id", "patient", "analyte", "value", "unit", "collected_at"]


class BareLabResultCreate(generics.CreateAPIView[LabResult]):
    serializer_class = BareLabResultSerializer
    permission_classes = [IsAuthenticated]
    queryset = LabResult.objects.all()


class BareDoseSerializer(serializers.ModelSerializer[ScheduledDose]):
    class Meta:
        model = ScheduledDose
        fields = ["id", "status", "administered_at"]
        read_only_fields = ["status"]
        extra_kwargs = {"administered_at": {"required": True}}


class BareDoseAdminister(generics.UpdateAPIView[ScheduledDose]):
    """POST {administered_at}: the dose row updated as given, as a bare partial update."""

    serializer_class = BareDoseSerializer
    permission_classes = [IsAuthenticated]
    queryset = ScheduledDose.objects.all()

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def perform_update(self, serializer: serializers.BaseSerializer[ScheduledDose]) -> None:
        serializer.save(status="given", administered_by=self.request.user)


class BareApiRead(APIView):
    """An API read's bare work behind the project's default (token) authentication."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request, key: str) -> HttpResponse:
        return _bare_json(key)


@login_required
def bare_page_read(request: HttpRequest, key: str) -> HttpResponse:
    """A page's bare work behind the session sign-in."""
    return _bare_json(key)


@login_required
def bare_page_html(request: HttpRequest, key: str) -> HttpResponse:
    """A page's bare SQL rendered by the minimal template BARE_PAGE_TEMPLATE (the layout and a table per table read),
    behind the session sign-in."""
    rows = BARE_PAGE_ROWS.get(key)
    if rows is None:
        raise Http404(key)
    return HttpResponse(_bare_page_template().render({"tables": list(rows().items())}, request))


@functools.cache
def _bare_page_template() -> Any:
    """Compiled once, as the cached template loader keeps the site's own templates."""
    return engines["django"].from_string(BARE_PAGE_TEMPLATE)
