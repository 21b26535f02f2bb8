"""Shared API plumbing: the error format and the serializer fields every app uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone as djtz
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tracker.errors import ServiceError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus service errors and Django validation errors as 4xx JSON.

    Every error body names the field and the reason: {"field": ["reason"]}. Errors that
    are not about one field use the key "detail".
    """
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset: a naive time is ambiguous across zones.

    Years outside EARLIEST_YEAR..LATEST_YEAR are refused: nothing Cobalt records happens then, and a time
    at the edge of the calendar (0001-01-01, 9999-12-31) cannot be moved into a patient's zone.
    """

    EARLIEST_YEAR = 1900
    LATEST_YEAR = 2199

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "must include a time zone offset, e.g. 2027-01-04T10:30:00+00:00",
        "range": f"must be a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}",
    }

    def enforce_timezone(self, value: datetime) -> datetime:
        if djtz.is_naive(value):
            self.fail("naive")
        if not self.EARLIEST_YEAR <= value.year <= self.LATEST_YEAR:
            self.fail("range")
        return super().enforce_timezone(value)


def acknowledge_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=60),
        required=False,
        help_text="Codes of the safety warnings the user has seen and accepts (e.g. lifelong_therapy_stopped).",
    )
