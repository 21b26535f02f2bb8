"""The OpenAPI schema: the schema class that documents the error responses of every operation in one place,
the `Token` authentication scheme and the postprocessing that makes nullable objects generator-friendly.

Apart from tracker/api.py because drf-spectacular's AutoSchema imports DRF's generic views, whose class
attributes read REST_FRAMEWORK's DEFAULT_FILTER_BACKENDS, which live in tracker/api.py: one module would
import itself half-initialised.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions, serializers

from tracker.api import SafetyWarningsErrorSerializer

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
    # Documented by the throttled views themselves (the token endpoint); the body is {detail}.
    "429": "Too many requests: wait the seconds in Retry-After.",
}
_WRITE_METHODS = {"POST", "PUT", "PATCH"}
# Request text, as DRF's CharField reads it: no NUL character (TEXT) and, where blank is refused, at least
# one character Python's str.strip() keeps (DRF trims first), spelt out since JSON Schema's \s (ECMA 262)
# and Python's whitespace differ (\x1c-\x1f, \x85, \ufeff).
_SPACES = "\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT = "^[^\x00]*$"
TEXT_NOT_BLANK = f"^[^\x00]*[^\x00{_SPACES}][^\x00]*$"


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
        for parameter in parameters:
            # Every integer query parameter of this API is a row id or a page number: 0 and below are a 400.
            schema = parameter.get("schema", {})
            if parameter.get("in") == "query" and schema.get("type") == "integer":
                schema.setdefault("minimum", 1)
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

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        # A list that may not be empty says so (drf-spectacular leaves allow_empty=False out).
        if isinstance(field, serializers.ListSerializer | serializers.ListField) and not field.allow_empty:
            if meta.get("type") == "array":
                meta.setdefault("minItems", 1)
        # Text: DRF refuses a NUL character, and trims text before checking that it is not blank ("\t"
        # alone is blank). Say both, unless the field states its own pattern.
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.read_only
            and meta.get("type") == "string"
            and "format" not in meta
            and "enum" not in meta
        ):
            blank_refused = not field.allow_blank and field.trim_whitespace
            meta.setdefault("pattern", TEXT_NOT_BLANK if blank_refused else TEXT)
        return meta

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
    """The API's token authentication (knox's, tracker/authentication.py), described as integrators must send
    it (the default `Bearer` is refused)."""

    target_class = "tracker.authentication.ExpiringTokenAuthentication"
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

