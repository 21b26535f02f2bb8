"""Shared API plumbing: the error format, the serializer fields every app uses, the query-parameter rules
of every list (paging, ordering, unknown parameters refused, invalid choices listing the valid ones) and the
schema class that documents the error responses of every operation in one place."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone as djtz
from django.views.defaults import page_not_found
from django_filters import fields as filter_fields
from django_filters import filters as django_filters
from django_filters.filterset import BaseFilterSet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from tracker.clock import EARLIEST_YEAR, LATEST_YEAR, plausible_offset
from tracker.errors import ServiceError
from tracker.permissions import staff_clinic_ids


def error_map(data: Any) -> dict[str, Any]:
    """Any 400 body as the documented ErrorMap: {"field": ["reason", ...]}, one level deep.

    The top-level keys stay as DRF names them; a nested serializer's or a list item's errors become
    messages that carry their path ("[1]: Ensure this value is less than or equal to 6.").
    """
    if isinstance(data, Mapping):
        return {str(name): _messages(value) for name, value in data.items()}
    return {"detail": _messages(data)}


def _messages(value: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [f"{path}: {value}" if path else value]
    messages: list[str] = []
    if isinstance(value, Mapping):
        for name, inner in value.items():
            if name == api_settings.NON_FIELD_ERRORS_KEY:
                key = path
            elif isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
                key = f"{path}[{name}]"
            else:
                key = f"{path}.{name}" if path else str(name)
            messages.extend(_messages(inner, key))
    elif isinstance(value, Sequence):
        for index, inner in enumerate(value):
            if isinstance(inner, str):
                messages.append(f"{path}: {inner}" if path else inner)
            elif inner:
                messages.extend(_messages(inner, f"{path}[{index}]"))
    else:
        messages.append(f"{path}: {value}" if path else str(value))
    return messages


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus service errors and Django validation errors as 4xx JSON.

    Every 400 and 409 body names the field and the reason: {"field": ["reason"]}. Errors that are not
    about one field use the key "detail" (or DRF's "non_field_errors" for a serializer's own checks).
    401, 403, 404 and 415 answer {"detail": "reason"}.
    """
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, UnsupportedMediaType):
        request = context.get("request")
        sent = (getattr(request, "content_type", "") or "").split(";")[0].strip()
        accepted = sorted({parser.media_type for parser in getattr(request, "parsers", None) or []})
        # DRF's message names only what was sent; say what this endpoint takes.
        advice = f" Send the body as {' or '.join(accepted)}." if accepted else ""
        exc = UnsupportedMediaType(sent, detail=f'Unsupported media type "{sent}" in request.{advice}')
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_400_BAD_REQUEST:
        # One shape for every 400, whatever raised it: a parse error's {"detail": "..."} and a nested
        # serializer's errors become the one-level map the schema documents (ErrorMap).
        response.data = error_map(response.data)
    return response


# What the schema says of a date or time in EARLIEST_YEAR..LATEST_YEAR (1900..2199): JSON Schema has no
# bounds for a format, so the year is a pattern on the text.
PLAUSIBLE_YEAR_PATTERN = "^(19[0-9]{2}|2[01][0-9]{2})-"
assert (EARLIEST_YEAR, LATEST_YEAR) == (1900, 2199), "PLAUSIBLE_YEAR_PATTERN states these years"


@extend_schema_field({"type": "string", "format": "date-time", "pattern": PLAUSIBLE_YEAR_PATTERN})
class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset: a naive time is ambiguous across zones.

    Years outside EARLIEST_YEAR..LATEST_YEAR are refused: nothing Cobalt records happens then, and a time
    at the edge of the calendar (0001-01-01, 9999-12-31) cannot be moved into a patient's zone.
    """

    EARLIEST_YEAR = EARLIEST_YEAR
    LATEST_YEAR = LATEST_YEAR

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "must include a time zone offset, e.g. 2027-01-04T10:30:00+00:00",
        "range": f"must be a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}",
        "offset": "has a time zone offset no place uses: offsets run from -12:00 to +14:00",
    }

    def enforce_timezone(self, value: datetime) -> datetime:
        if djtz.is_naive(value):
            self.fail("naive")
        if not self.EARLIEST_YEAR <= value.year <= self.LATEST_YEAR:
            self.fail("range")
        if not plausible_offset(value):
            self.fail("offset")
        return super().enforce_timezone(value)


class PlausibleDateField(forms.DateField):
    """A filter's date (YYYY-MM-DD, ASCII digits) between the years AwareDateTimeField accepts: 9999-12-31
    would overflow when a filter adds a day, 0001-01-01 when it moves into a patient's zone."""

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str) and not value.isascii():
            raise DjangoValidationError("must be a date written with the digits 0-9, e.g. 2027-01-04", code="invalid")
        day: date | None = super().to_python(value)
        if day is not None and not AwareDateTimeField.EARLIEST_YEAR <= day.year <= AwareDateTimeField.LATEST_YEAR:
            raise DjangoValidationError(
                f"must be a date between the years {AwareDateTimeField.EARLIEST_YEAR} and "
                f"{AwareDateTimeField.LATEST_YEAR}",
                code="invalid",
            )
        return day


# A query parameter's schema for a date PlausibleDateField reads (OpenApiParameter's type).
PLAUSIBLE_DATE_SCHEMA = {"type": "string", "format": "date", "pattern": PLAUSIBLE_YEAR_PATTERN}


@extend_schema_field(PLAUSIBLE_DATE_SCHEMA)
class PlausibleDateFilter(django_filters.DateFilter):
    field_class = PlausibleDateField


@extend_schema_field(PLAUSIBLE_DATE_SCHEMA)
class PlausibleDateSerializerField(serializers.DateField):
    """A serializer's date (a query parameter's: the dashboard's and the audit log's period) in the years
    AwareDateTimeField accepts, written with the digits 0-9: a period's day at the edge of the calendar overflowed
    when a day was added to it."""

    default_error_messages = {
        **serializers.DateField.default_error_messages,
        "range": f"must be a date between the years {EARLIEST_YEAR} and {LATEST_YEAR}",
    }

    def to_internal_value(self, value: Any) -> date:
        if isinstance(value, str) and not value.isascii():
            self.fail("invalid", format="YYYY-MM-DD")
        day: date = super().to_internal_value(value)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            self.fail("range")
        return day


class IdField(forms.Field):
    """A filter's row id: a whole number from 1 written with the digits 0-9. Django's IntegerField would
    also read "1.0" and full-width digits; a DecimalField (NumberFilter's) reads "0.5" and then matches
    nothing, so a typo answered an empty list as if the filter had been applied."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        text = str(value)
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise DjangoValidationError("must be an id: a whole number from 1", code="invalid")
        return int(text)


@extend_schema_field({"type": "integer", "minimum": 1})
class IdFilter(django_filters.NumberFilter):
    """`?clinic=3`: an id (IdField), documented as an integer from 1."""

    field_class = IdField


class StrictBooleanField(forms.Field):
    """A filter's true or false. django-filter's BooleanFilter reads "null", "unknown" or "maybe" as no
    filter at all, so the whole list came back as if the filter had been applied (issue 12, schemathesis).
    Its own widget, whatever the filter asks for: the REST framework filter's BooleanWidget would turn
    "maybe" into None before this field saw it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["widget"] = forms.TextInput
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise DjangoValidationError(f'"{value}" is not a valid choice; use one of: true, false.', code="invalid")


EMPTY_PARAMETER = "is empty; give a value or leave the parameter out"


def refuse_empty_filters(request: Request, filterset: Any) -> None:
    """`?due_to=` or `?patient=` (given, but empty) is a 400: django-filter reads an empty value as no
    filter, so the whole list came back as if the date, id or choice had been applied. Free text
    (`?protocol=`, `?search=`) keeps reading an empty value as unset."""
    empty = []
    for name, field in filterset.form.fields.items():
        if name not in request.query_params or isinstance(field, forms.CharField):
            continue
        declared = filterset.filters[name].extra.get("choices") if name in filterset.filters else None
        if isinstance(declared, list | tuple) and any(choice[0] == "" for choice in declared):
            continue  # "" is one of the choices (a blank interpretation): documented, so accepted
        if any(value == "" for value in request.query_params.getlist(name)):
            empty.append(name)
    if empty:
        raise ValidationError({name: [EMPTY_PARAMETER] for name in empty})


def acknowledge_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=60),
        required=False,
        help_text="Codes of the safety warnings the user has seen and accepts (e.g. lifelong_therapy_stopped).",
    )


# --- Query parameters --------------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 50
# Not a clinical number: a bound on the work one request can ask for (a page of 500 doses or lab results
# renders in well under a second); integrators page through anything longer.
MAX_PAGE_SIZE = 500


class Pagination(PageNumberPagination):
    """`page` and `page_size` (1..MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE). A page_size that is not a whole
    number in that range is refused with a 400 naming it rather than clamped: a client that asked for 1000
    rows and silently got 500 would think it had seen them all. `next` and `previous` keep the page size."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # isascii: "５".isdigit() is True and int() reads it; a page size is plain digits.
        size = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationError({self.page_size_query_param: [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
        return size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Rows per page: 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); outside that range a 400."
                )
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class Ordering(OrderingFilter):
    """`?ordering=field,-other` on the lists that name `ordering_fields` (none elsewhere: DRF's default would
    offer every serializer field). An unknown field is a 400 naming it, not dropped; the primary key breaks
    ties so that pages neither repeat nor skip rows."""

    def _fields(self, view: Any) -> list[str]:
        return list(getattr(view, "ordering_fields", None) or [])

    def _pattern(self, view: Any) -> str:
        """The whole parameter: known fields, each maybe with `-`, separated by commas (or nothing)."""
        term = f"-?({'|'.join(re.escape(name) for name in self._fields(view))})"
        return f"^({term}(,{term})*)?$"

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw and any(not term or term != term.strip() for term in raw.split(",")):
            # DRF would strip spaces and skip empty terms ("name,,id", " name"); the schema's pattern
            # (_pattern) does not allow them, so neither does the API. Unknown fields: remove_invalid_fields.
            raise ValidationError({self.ordering_param: ["must be fields separated by commas, with no spaces"]})
        return super().get_ordering(request, queryset, view)

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        if not self._fields(view):
            return queryset
        return super().filter_queryset(request, queryset, view)  # type: ignore[no-any-return]

    def remove_invalid_fields(
        self, queryset: QuerySet[Any], fields: Iterable[str], view: Any, request: Request
    ) -> list[str]:
        allowed = self._fields(view)
        terms = [term for term in fields if term]
        if not terms:
            return []
        unknown = [term for term in terms if term.removeprefix("-") not in allowed]
        if unknown:
            choices = ", ".join(f"{name}, -{name}" for name in allowed)
            raise ValidationError({self.ordering_param: [f"unknown field {', '.join(unknown)}; use one of: {choices}"]})
        if not any(term.removeprefix("-") in ("id", "pk") for term in terms):
            terms.append("-pk" if terms[0].startswith("-") else "pk")
        return terms

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        allowed = self._fields(view)
        if not allowed:
            return []
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": (
                    f"Comma-separated fields to sort by, `-` for descending: {', '.join(allowed)}. "
                    "Ties are broken by id."
                ),
                "schema": {"type": "string", "pattern": self._pattern(view)},
            }
        ]


def is_list_request(request: Request, view: Any) -> bool:
    """Whether the request lists rows (and so reads the list's filters, search, ordering and paging), rather than
    addressing one row by its id (a detail route or a detail action such as a dose's `administer`)."""
    action = getattr(view, "action", None)
    if action is None:
        return request.method == "GET" and getattr(view, "lookup_url_kwarg", None) not in view.kwargs
    # A GET action on the collection (e.g. the inbox) pages like the list itself.
    return action == "list" or (request.method == "GET" and getattr(view, "detail", None) is False)


def accepted_query_parameters(request: Request, queryset: QuerySet[Any], view: Any) -> set[str]:
    """The query parameters `view` reads for this request: on a list its filters (django-filter's names,
    e.g. due_from), search and ordering where the view has them, and paging; on any route `format` and the
    names the view declares in `query_parameters` for its action (documented there with extend_schema)."""
    action = getattr(view, "action", None)
    names = set(getattr(view, "query_parameters", {}).get(action, ()))
    if api_settings.URL_FORMAT_OVERRIDE:
        names.add(api_settings.URL_FORMAT_OVERRIDE)
    if not is_list_request(request, view):
        return names
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset = backend.get_filterset(request, queryset, view)
            if filterset is not None:
                names |= set(_form_names(filterset.form.fields.items()))
        elif isinstance(backend, SearchFilter) and getattr(view, "search_fields", None):
            names.add(backend.search_param)
        elif isinstance(backend, OrderingFilter) and getattr(view, "ordering_fields", None):
            names.add(backend.ordering_param)
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        names |= {name for name in (paginator.page_query_param, paginator.page_size_query_param) if name}
    return names


def _form_names(fields: Iterable[tuple[str, Any]]) -> Iterable[str]:
    for name, field in fields:
        # A range filter reads name_min and name_max (its widget's suffixes), not name itself.
        suffixes = getattr(field.widget, "suffixes", None)
        yield from ([f"{name}_{suffix}" if suffix else name for suffix in suffixes] if suffixes else [name])


class KnownQueryParameters(BaseFilterBackend):
    """A query parameter the route does not read is a 400 naming it: a misspelt filter or an ordering the
    list does not offer would otherwise return every row as if it had been applied. First of every view's
    filter_backends (DEFAULT_FILTER_BACKENDS, and any view that sets its own)."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        refuse_unknown_query_parameters(request, accepted_query_parameters(request, queryset, view))
        return queryset


def clinic_scoped(queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """`queryset` narrowed to the rows of the user's clinics, found by the model's shape (the kernel imports
    no app): a clinic itself, a row with a `clinic`, or a row with a `patient`. A model that says
    `shared_without_clinic = True` (a protocol: a clinic's own copy has its clinic) is every clinic's where its
    clinic is empty, unlike, e.g., a sign-in event with no clinic; other models (analytes) are shared by every
    clinic and stay whole."""
    model = queryset.model
    ids = staff_clinic_ids(user)
    names = {field.name for field in model._meta.get_fields()}
    if model._meta.label == "patients.Clinic":
        return queryset.filter(pk__in=ids)
    if "clinic" in names:
        if getattr(model, "shared_without_clinic", False):
            return queryset.filter(Q(clinic__isnull=True) | Q(clinic__in=ids))
        return queryset.filter(clinic__in=ids)
    if "patient" in names:
        return queryset.filter(patient__clinic__in=ids)
    return queryset


class ClinicScopedFilterBackend(DjangoFilterBackend):
    """django-filter's backend whose choice filters (`?patient=`, `?regimen=`, `?clinic=`) only accept the
    user's own clinics' rows: another clinic's patient id is the same 400 ("Select a valid choice") as an id
    that does not exist, so filters cannot be used to list which ids exist elsewhere (issue 12).

    The filterset of a request is made once: KnownQueryParameters reads its parameter names, then this backend
    filters with it (the same request, view and queryset), and building a filterset and its form is a good part
    of a short list's time (issue 16)."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        # One row addressed by its id: KnownQueryParameters accepted none of the filters' names, so the filterset
        # would filter nothing; it is not built (a good part of a dose POST's time, issue 16).
        if not is_list_request(request, view):
            return queryset
        filtered: QuerySet[Any] = super().filter_queryset(request, queryset, view)
        return filtered

    def get_filterset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        made: dict[tuple[int, int], tuple[QuerySet[Any], Any]] = request.__dict__.setdefault("_cobalt_filtersets", {})
        key = (id(view), id(queryset))  # the queryset is kept with its filterset: its id names no other meanwhile
        if key in made:
            return made[key][1]
        filterset = super().get_filterset(request, queryset, view)
        made[key] = (queryset, filterset)
        if filterset is None:
            return None
        filterset._form = filterset_form(filterset)
        # Only the choice filters given are scoped here: one left out is never checked against its rows (its empty
        # value cleans to None), and scoping costs an ORM filter each (a join for `regimen`). to_html scopes them all.
        scope_choice_filters(filterset, request.user, given_only=True)
        refuse_empty_filters(request, filterset)
        return filterset

    def to_html(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        """The browsable API's filter form lists each choice filter's rows: the user's clinics' alone."""
        filterset = self.get_filterset(request, queryset, view)
        if filterset is not None:
            scope_choice_filters(filterset, request.user, given_only=False)
        return super().to_html(request, queryset, view)


def scope_choice_filters(filterset: Any, user: Any, *, given_only: bool) -> None:
    """Narrow the rows of the filterset's choice fields (`?patient=`, `?regimen=`) to the user's clinics
    (clinic_scoped): those given in the query alone, or every one not yet narrowed."""
    form = filterset.form
    done: set[str] = filterset.__dict__.setdefault("_cobalt_scoped", set())
    for name, field in form.fields.items():
        choices = getattr(field, "queryset", None)
        if name in done or not isinstance(choices, QuerySet) or (given_only and form.add_prefix(name) not in form.data):
            continue
        field.queryset = clinic_scoped(choices, user)
        done.add(name)


# A FilterSet class's form class, built once: django-filter builds it anew for each filterset (a new field per filter
# and a new class), a good part of a short list's time (issue 16). Each form still copies its fields (as every Django
# form does), so ClinicScopedFilterBackend scopes the copies. Weak keys: django-filter makes a class per request for a
# view with `filterset_fields`.
_FORM_CLASSES: weakref.WeakKeyDictionary[type[Any], type[forms.Form]] = weakref.WeakKeyDictionary()


def filterset_form(filterset: Any) -> forms.Form:
    """The form that `filterset.form` would build, from the form class its FilterSet class built the first time. A
    class whose form depends on the request (its own get_form_class, or a filter's queryset made from the request)
    builds its own each time."""
    cls = type(filterset)
    form_class = _FORM_CLASSES.get(cls)
    if form_class is None:
        form_class = filterset.get_form_class()
        if cls.get_form_class is BaseFilterSet.get_form_class and not any(
            callable(getattr(filter_, "queryset", None)) for filter_ in filterset.filters.values()
        ):
            _FORM_CLASSES[cls] = form_class
    if filterset.is_bound:
        return form_class(filterset.data, prefix=filterset.form_prefix)
    return form_class(prefix=filterset.form_prefix)


def refuse_unknown_query_parameters(request: Request, accepted: Iterable[str]) -> None:
    accepted = set(accepted)
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        hint = f"use one of: {', '.join(sorted(accepted))}" if accepted else "this route takes none"
        raise ValidationError({name: [f"unknown query parameter; {hint}"] for name in unknown})


class CheckedAPIView(APIView):
    """An APIView (no queryset, so no filter backends) that refuses query parameters it does not read, as
    KnownQueryParameters does for the viewsets. `query_parameters` names them per HTTP method ("get"),
    documented with extend_schema; `format` is always accepted."""

    query_parameters: ClassVar[Mapping[str, Sequence[str]]] = {}
    # Parameters of free text, where an empty value means "not given"; any other parameter given empty
    # (`?since=`, `?clinic=`) is a 400, as for the lists' filters (refuse_empty_filters): DRF's serializers
    # would read it as left out.
    text_query_parameters: ClassVar[frozenset[str]] = frozenset()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first: 401/403 before 400
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            return  # dispatch answers 405 with Allow: a method the view lacks reads no query parameters
        accepted = set(self.query_parameters.get(method, ()))
        if api_settings.URL_FORMAT_OVERRIDE:
            accepted.add(api_settings.URL_FORMAT_OVERRIDE)
        refuse_unknown_query_parameters(request, accepted)
        empty = [
            name for name in sorted(accepted - self.text_query_parameters) if "" in request.query_params.getlist(name)
        ]
        if empty:
            raise ValidationError({name: [EMPTY_PARAMETER] for name in empty})


# --- Invalid choices name the valid ones ------------------------------------------------------------------


def invalid_choice_message(value: object, choices: Iterable[object]) -> str:
    valid = ", ".join(str(choice) for choice in choices if choice not in ("", None))
    return f'"{value}" is not a valid choice; use one of: {valid}.'


class _ListingChoices:
    """For django-filter's choice fields: the invalid-choice error lists the valid values."""

    def validate(self, value: Any) -> None:
        try:
            super().validate(value)  # type: ignore[misc]
        except DjangoValidationError as exc:
            if getattr(exc, "code", None) != "invalid_choice":
                raise
            bad = (exc.params or {}).get("value", value)
            choices = [key for key, _label in self.choices]  # type: ignore[attr-defined]
            # django-filter renders the message with `message % params`: a "%" in the value must stay literal.
            message = invalid_choice_message(bad, choices).replace("%", "%%")
            raise DjangoValidationError(message, code="invalid_choice") from None


class ListingChoiceField(_ListingChoices, filter_fields.ChoiceField):
    pass


class ListingMultipleChoiceField(_ListingChoices, filter_fields.MultipleChoiceField):
    pass


class ListingTypedChoiceField(_ListingChoices, forms.TypedChoiceField):
    pass


def install_choice_messages() -> None:
    """Every choice error, in a serializer or a filter, lists the valid values: `"x" is not a valid choice;
    use one of: a, b, c.` Set once at start-up (TrackerConfig.ready) rather than field by field."""
    django_filters.ChoiceFilter.field_class = ListingChoiceField
    django_filters.MultipleChoiceFilter.field_class = ListingMultipleChoiceField
    django_filters.TypedChoiceFilter.field_class = ListingTypedChoiceField
    django_filters.BooleanFilter.field_class = StrictBooleanField
    if getattr(serializers.ChoiceField.to_internal_value, "lists_choices", False):
        return
    original = serializers.ChoiceField.to_internal_value

    def to_internal_value(self: serializers.ChoiceField, data: Any) -> Any:
        try:
            return original(self, data)
        except serializers.ValidationError as exc:
            if exc.get_codes() != ["invalid_choice"]:
                raise
            message = invalid_choice_message(data, self.choice_strings_to_values)
            raise serializers.ValidationError(message, code="invalid_choice") from None

    to_internal_value.lists_choices = True  # type: ignore[attr-defined]
    serializers.ChoiceField.to_internal_value = to_internal_value  # type: ignore[method-assign,assignment]


_ASCII_FIELDS: tuple[type[serializers.Field], ...] = (
    serializers.IntegerField,
    serializers.DecimalField,
    serializers.FloatField,
    serializers.DateField,
    serializers.DateTimeField,
)


def install_ascii_numbers() -> None:
    """Numbers, dates and times written as text take the digits 0-9 only: Python's int(), Decimal() and
    Django's date parsing also read full-width ("１２０") and Arabic-Indic ("١٢٠") digits, which a person
    checking the record would not read as the number stored (issue 12). Set once at start-up."""
    for field_class in _ASCII_FIELDS:
        original = field_class.__dict__.get("to_internal_value")
        if original is None or getattr(original, "ascii_only", False):
            continue

        def to_internal_value(self: serializers.Field, data: Any, _original: Any = original) -> Any:
            if isinstance(data, str) and not data.isascii():
                raise serializers.ValidationError("must be written with the digits 0-9 (ASCII)", code="invalid")
            return _original(self, data)

        to_internal_value.ascii_only = True  # type: ignore[attr-defined]
        field_class.to_internal_value = to_internal_value  # type: ignore[method-assign]


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: under /api/ a path no route matches (GET /api/patients/abc/) answers the documented
    {"detail": ...} JSON, like a 404 raised inside a view; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return page_not_found(request, exception or Http404())


class SafetyWarningSerializer(serializers.Serializer[Any]):
    """A point-of-care safety warning, as in the 400 body of a write that needs it acknowledged."""

    code = serializers.CharField(help_text="Put this in `acknowledge` to proceed, e.g. im_injection_low_platelets.")
    rule = serializers.CharField(help_text="The RULES id, e.g. S-2 (docs/clinical-reference.md).")
    message = serializers.CharField()
    details = serializers.DictField(help_text="The evidence, e.g. the platelet count, its date and the suggestion.")


class SafetyWarningsErrorSerializer(serializers.Serializer[Any]):
    """The 400 body of a write that raises safety warnings nobody acknowledged (tracker.errors)."""

    acknowledge = serializers.ListField(
        child=serializers.CharField(), help_text="Why the write was refused: the codes to acknowledge."
    )
    warnings = SafetyWarningSerializer(many=True, help_text="Repeat the request with each code in `acknowledge`.")
