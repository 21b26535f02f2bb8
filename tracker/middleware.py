"""Refuse NUL characters in a request's path and query string before any view runs.

PostgreSQL text cannot hold a NUL byte, so a lookup such as `?analyte=%00` or `/api/protocols/%00/`
would end in a database error (500). DRF already refuses NUL in body fields; this covers the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

NUL = "\x00"


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path:
            return JsonResponse({"detail": "The path may not contain a NUL character."}, status=400)
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                field = name.replace(NUL, "") or "query"
                return JsonResponse({field: ["may not contain a NUL character."]}, status=400)
        return self.get_response(request)
