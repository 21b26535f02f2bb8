"""Shared API plumbing: the error format, the serializer fields every app uses, and the schema class
that documents the error responses of every operation in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone as djtz
from django.views.defaults import page_not_found
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from tracker.errors import ServiceError


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


# --- The schema --------------------------------------------------------------------------------------

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
ERROR_MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        'Field errors: {"field": ["reason", ...]}. A nested field\'s reasons start with their path '
        '("[1]: ..."); errors not about one field are under "detail" (or "non_field_errors").'
    ),
    "properties": {"detail": _STRINGS},
    "additionalProperties": _STRINGS,
}
DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'One reason: {"detail": "reason"}.',
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_DESCRIPTIONS = {
    "400": "Bad input: each field that was wrong, with the reasons.",
    "401": "No or invalid credentials: send `Authorization: Token <key>`.",
    "403": "Authenticated, but not allowed to do this (role, clinic or CSRF for session users).",
    "404": "Not found, or not one of your clinics' records (also a page past the last).",
    "409": "Conflicts with what is already recorded: the field and the reason.",
    "415": "The body is not in a media type this operation accepts.",
}
_WRITE_METHODS = {"POST", "PUT", "PATCH"}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses every operation can really answer.

    401/403 when the view needs a user, 404 on routes with an id or a page, 400 (ErrorMap) on writes and on
    lists with query parameters, 415 where there is a body. Views add what only they answer: a 409 (declared
    with extend_schema; its body is filled in here) and the safety-warning 400 (`safety_warning_actions`).
    """

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses: dict[str, Any] = operation.setdefault("responses", {})
        wanted: set[str] = set()
        if self._needs_user():
            wanted |= {"401", "403"}
        else:
            operation["security"] = []  # explicit: no credentials needed (the token endpoint)
        parameters = operation.get("parameters", [])
        if any(p.get("in") == "path" for p in parameters) or self._is_paged():
            wanted.add("404")
        if self.method in _WRITE_METHODS or any(p.get("in") == "query" for p in parameters):
            wanted.add("400")
        if "requestBody" in operation:
            wanted.add("415")
        for code in sorted(wanted):
            responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
        for code, response in responses.items():
            if code == "400" and "content" in response:
                # A view's own 400 body (the CSV import's report): any write can also answer a bad body
                # or bad field with the ErrorMap.
                for media in response["content"].values():
                    media["schema"] = {"oneOf": [media["schema"], self._error_schema(code)]}
                continue
            if "content" in response or code not in _DESCRIPTIONS:
                continue
            if not response.get("description"):
                response["description"] = _DESCRIPTIONS[code]
            response["content"] = {"application/json": {"schema": self._error_schema(code)}}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _needs_user(self) -> bool:
        checks = self.view.get_permissions()
        return any(not isinstance(check, permissions.AllowAny) for check in checks)

    def _is_paged(self) -> bool:
        paginated = getattr(self.view, "pagination_class", None) is not None
        return self.method == "GET" and paginated and self._is_list_view()

    def _warns(self) -> bool:
        actions: frozenset[str] = getattr(self.view, "safety_warning_actions", frozenset())
        return getattr(self.view, "action", None) in actions

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref

    def _error_schema(self, code: str) -> dict[str, Any]:
        if code not in ("400", "409"):
            return self._component("Detail", DETAIL_SCHEMA)
        error_map = self._component("ErrorMap", ERROR_MAP_SCHEMA)
        if code == "400" and self._warns():
            warnings = self.resolve_serializer(SafetyWarningsErrorSerializer(), "response")
            return {"oneOf": [warnings.ref, error_map]}
        return error_map


class TokenScheme(OpenApiAuthenticationExtension):
    """DRF's TokenAuthentication, described as integrators must send it (the default `Bearer` is refused)."""

    target_class = "rest_framework.authentication.TokenAuthentication"
    name = "tokenAuth"
    match_subclasses = True
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "Send the header `Authorization: Token <key>` (the prefix is `Token`, not `Bearer`); "
                "get the key from POST /api/auth/token/."
            ),
        }


def make_nullable_refs_inline(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: OpenAPI 3.0 ignores `nullable` beside an `allOf` or `oneOf` with no `type`, so
    strict generators reject a null there. Such an `allOf` property gets the referenced object inline with
    `nullable`; a `oneOf` of plain types gets `nullable` on its first one."""
    schemas: dict[str, Any] = result.get("components", {}).get("schemas", {})

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                fix(value)
            all_of = node.get("allOf")
            if node.get("nullable") and "type" not in node and isinstance(all_of, list) and len(all_of) == 1:
                ref = all_of[0].get("$ref", "")
                target = schemas.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/schemas/") else None
                if target is not None:
                    del node["allOf"]
                    node.update({key: value for key, value in target.items() if key != "description"})
                    node["nullable"] = True
            if node.get("nullable") and "type" not in node and isinstance(node.get("oneOf"), list):
                # One branch only: a null matching two branches would fail the oneOf.
                typed = [b for b in node["oneOf"] if isinstance(b, dict) and "type" in b]
                if typed and not any(b.get("nullable") for b in node["oneOf"] if isinstance(b, dict)):
                    typed[0]["nullable"] = True
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(result)
    return result

