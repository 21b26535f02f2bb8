"""Run inside `manage.py shell` on `make run`'s demo database (tests/tracker/test_demo_on_sqlite.py): every route
without a parameter, a patient page and the overdue worklist, as the demo clinic's admin, nurse and clinician.
Prints one JSON line: how many pages were asked and those that answered 5xx or raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from patients.models import Patient

SKIP = ("logout", "sign-out")


def routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def main() -> None:
    paths = sorted(
        {"/" + r for r in routes(get_resolver().url_patterns) if not any(c in r for c in "<(^")}
        - {"/" + r for r in routes(get_resolver().url_patterns) if any(s in r for s in SKIP)}
    )
    patient = Patient.objects.filter(clinic__name__icontains="riverside").order_by("id").first()
    assert patient is not None
    paths += [f"/patients/{patient.pk}/", f"/api/patients/{patient.pk}/", "/api/doses/?overdue=true"]
    failures = []
    for username in ("riverside-admin", "riverside-nurse", "riverside-clinician"):
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        for path in paths:
            try:
                status = client.get(path, HTTP_HOST="127.0.0.1").status_code
            except Exception as error:  # noqa: BLE001 (reported, then asserted on by the test)
                failures.append([username, path, f"{type(error).__name__}: {error}"[:300]])
                continue
            if status >= 500:
                failures.append([username, path, status])
    print(json.dumps({"asked": len(paths) * 3, "failures": failures}))
