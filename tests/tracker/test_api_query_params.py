"""API query parameters: unknown ones are refused with a 400 naming them, page_size is honoured up to
tracker.api.MAX_PAGE_SIZE, the paged lists take `ordering`, and an invalid choice lists the valid values."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.generics import GenericAPIView
from rest_framework.test import APIClient

from regimens import services
from regimens.models import Protocol, Regimen
from tests.factories import PatientFactory
from tracker.api import MAX_PAGE_SIZE, CheckedAPIView, KnownQueryParameters

OUR_APPS = {"tracker", "patients", "regimens", "notifications", "monitoring"}

TODAY = "2026-12-01 09:00:00+00:00"

pytestmark = pytest.mark.django_db


@pytest.fixture
def regimen(patient: Any) -> Regimen:
    with time_machine.travel(TODAY, tick=False):
        return services.regimen_start(
            patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=date(2027, 1, 4)
        )


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.json()
    results: list[dict[str, Any]] = response.json()["results"]
    return results


# --- Unknown parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/doses/", "self_administered=false"),
        ("/api/regimens/", "ordering=-start_date"),  # the regimen list offers no ordering
        ("/api/alerts/", "sort=newest"),
        ("/api/notifications/", "due_after=2027-01-01T00:00:00Z"),
        ("/api/lab-results/", "analyte_code=hemoglobin"),
        ("/api/lab-rechecks/", "due_date=2027-01-01"),
        ("/api/patients/", "name=Smith"),
        ("/api/protocols/", "page_sise=2"),
    ],
)
def test_an_unknown_parameter_on_a_list_is_a_400_naming_it(api: APIClient, path: str, query: str) -> None:
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400
    name = query.split("=")[0]
    assert list(response.json()) == [name]
    assert response.json()[name][0].startswith("unknown query parameter; use one of: ")


def test_the_error_names_every_unknown_parameter_and_lists_the_accepted_ones(api: APIClient) -> None:
    response = api.get("/api/doses/?status=planned&foo=1&bar=2")

    assert response.status_code == 400
    assert sorted(response.json()) == ["bar", "foo"]
    message = response.json()["foo"][0]
    for accepted in ("due_from", "due_to", "overdue", "status", "warnings", "ordering", "page", "page_size"):
        assert accepted in message


def test_the_accepted_parameters_of_a_list_still_work(api: APIClient, regimen: Regimen) -> None:
    response = api.get(
        f"/api/doses/?regimen={regimen.pk}&status=planned&due_from=2027-01-01&due_to=2027-12-31"
        "&overdue=false&warnings=false&ordering=due_date&page=1&page_size=5&format=json"
    )

    assert len(rows(response)) == 5


def test_a_detail_route_refuses_list_filters_and_unknown_parameters(api: APIClient, regimen: Regimen) -> None:
    dose = regimen.doses.order_by("due_date").first()
    assert dose is not None

    assert api.get(f"/api/doses/{dose.pk}/").status_code == 200
    assert api.get(f"/api/doses/{dose.pk}/?format=json").status_code == 200
    for query in ("status=given", "page=2", "verbose=1"):
        response = api.get(f"/api/doses/{dose.pk}/?{query}")
        assert response.status_code == 400, query
        assert list(response.json()) == [query.split("=")[0]]


def test_an_action_refuses_unknown_parameters(clinician_api: APIClient, regimen: Regimen) -> None:
    response = clinician_api.post(f"/api/regimens/{regimen.pk}/stop/?dry_run=true", {"reason": "test"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["dry_run"]
    regimen.refresh_from_db()
    assert regimen.status == "active"


def test_an_unauthenticated_request_is_a_401_before_its_parameters_are_read(anon_api: APIClient) -> None:
    assert anon_api.get("/api/doses/?nonsense=1").status_code in (401, 403)


def test_every_api_view_of_ours_checks_its_query_parameters() -> None:
    def views(patterns: list[Any], prefix: str = "") -> list[Any]:
        found = []
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                found += views(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                cls = getattr(pattern.callback, "cls", None)
                if isinstance(cls, type) and cls.__module__.split(".")[0] in OUR_APPS:
                    found.append(cls)
        return found

    api_views = views(get_resolver().url_patterns)
    assert len(api_views) > 15
    for cls in api_views:
        if issubclass(cls, GenericAPIView):
            assert cls.filter_backends[0] is KnownQueryParameters, cls
        else:
            assert issubclass(cls, CheckedAPIView), cls


def test_a_plain_api_view_refuses_unknown_parameters(api: APIClient, patient: Any) -> None:
    assert api.get(f"/api/patients/{patient.pk}/trends/?analytes=hemoglobin").status_code == 200
    response = api.get(f"/api/patients/{patient.pk}/trends/?analyte=hemoglobin")

    assert response.status_code == 400
    assert response.json() == {"analyte": ["unknown query parameter; use one of: analytes, format"]}
    assert api.get(f"/api/patients/{patient.pk}/b12-status/?since=2027-01-01").status_code == 400


def test_the_inbox_pages_and_refuses_unknown_parameters(api: APIClient) -> None:
    assert api.get("/api/notifications/inbox/?page_size=5").status_code == 200
    response = api.get("/api/notifications/inbox/?status=sent")

    assert response.status_code == 400
    assert list(response.json()) == ["status"]


# --- Paging ---------------------------------------------------------------------------------------------


def test_page_size_is_honoured_and_kept_in_the_next_link(api: APIClient, regimen: Regimen) -> None:
    response = api.get(f"/api/doses/?regimen={regimen.pk}&page_size=2")

    assert len(rows(response)) == 2
    following = parse_qs(urlparse(response.json()["next"]).query)
    assert following["page_size"] == ["2"]
    assert following["page"] == ["2"]
    second = api.get(response.json()["next"])
    assert len(rows(second)) == 2
    assert parse_qs(urlparse(second.json()["previous"]).query)["page_size"] == ["2"]
    assert not {r["id"] for r in rows(response)} & {r["id"] for r in rows(second)}


def test_page_size_up_to_the_maximum_is_accepted(api: APIClient, regimen: Regimen) -> None:
    response = api.get(f"/api/doses/?regimen={regimen.pk}&page_size={MAX_PAGE_SIZE}")

    assert response.status_code == 200
    assert response.json()["count"] == len(rows(response))


@pytest.mark.parametrize("size", [str(MAX_PAGE_SIZE + 1), "0", "-1", "ten", "５", ""])
def test_a_page_size_outside_1_to_the_maximum_is_a_400_naming_it(api: APIClient, size: str) -> None:
    response = api.get(f"/api/patients/?page_size={size}")

    assert response.status_code == 400
    assert response.json() == {"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]}


def test_the_default_page_size_stays_50(api: APIClient, clinic: Any) -> None:
    PatientFactory.create_batch(51, clinic=clinic)

    response = api.get("/api/patients/")

    assert len(rows(response)) == 50
    assert "page_size" not in parse_qs(urlparse(response.json()["next"]).query)


# --- Ordering -------------------------------------------------------------------------------------------


def test_ordering_sorts_the_dose_list(api: APIClient, regimen: Regimen) -> None:
    ascending = [r["due_date"] for r in rows(api.get(f"/api/doses/?regimen={regimen.pk}&page_size=500"))]
    descending = [
        r["due_date"] for r in rows(api.get(f"/api/doses/?regimen={regimen.pk}&ordering=-due_date&page_size=500"))
    ]

    assert ascending == sorted(ascending)
    assert descending == sorted(ascending, reverse=True)


def test_ties_are_broken_by_id_so_pages_do_not_overlap(api: APIClient, clinic: Any) -> None:
    PatientFactory.create_batch(6, clinic=clinic, family_name="Same", birth_date=date(1950, 1, 1))

    pages = [rows(api.get(f"/api/patients/?ordering=birth_date&page_size=2&page={n}")) for n in (1, 2, 3)]

    seen = [p["id"] for page in pages for p in page]
    assert seen == sorted(seen)
    assert len(set(seen)) == 6


@pytest.mark.parametrize(
    "path", ["/api/patients/", "/api/doses/", "/api/lab-rechecks/", "/api/lab-results/", "/api/notifications/"]
)
def test_an_unknown_ordering_field_is_a_400_listing_the_fields(api: APIClient, path: str) -> None:
    response = api.get(f"{path}?ordering=-nonsense")

    assert response.status_code == 400
    message = response.json()["ordering"][0]
    assert message.startswith("unknown field -nonsense; use one of: ")
    assert "id, -id" in message


def test_the_alert_list_keeps_its_named_orderings(api: APIClient) -> None:
    assert api.get("/api/alerts/?ordering=most_severe").status_code == 200
    response = api.get("/api/alerts/?ordering=-opened_at")

    assert response.status_code == 400
    assert response.json() == {
        "ordering": ['"-opened_at" is not a valid choice; use one of: newest, oldest, most_severe.']
    }


# --- Invalid choices list the valid values ---------------------------------------------------------------


def test_an_invalid_filter_choice_lists_the_valid_values(api: APIClient) -> None:
    response = api.get("/api/doses/?status=lost")

    assert response.status_code == 400
    message = response.json()["status"][0]
    assert message.startswith('"lost" is not a valid choice; use one of: planned, ')
    assert message.endswith(".")


def test_an_invalid_multiple_choice_filter_lists_the_valid_values(api: APIClient) -> None:
    response = api.get("/api/alerts/?status=open&status=shut")

    assert response.status_code == 400
    assert response.json() == {"status": ['"shut" is not a valid choice; use one of: open, acknowledged, resolved.']}


def test_an_invalid_choice_with_a_percent_sign_is_quoted_as_sent(api: APIClient) -> None:
    response = api.get("/api/alerts/?ordering=%25s%25(x)s")

    assert response.status_code == 400
    assert response.json()["ordering"][0].startswith('"%s%(x)s" is not a valid choice; use one of: ')


def test_an_invalid_typed_choice_filter_lists_the_valid_values(api: APIClient) -> None:
    response = api.get("/api/doses/?overdue=maybe")

    assert response.status_code == 400
    assert response.json() == {"overdue": ['"maybe" is not a valid choice; use one of: true, false.']}


def test_an_invalid_serializer_choice_lists_the_valid_values(api: APIClient, clinic: Any) -> None:
    response = api.post(
        "/api/patients/",
        {
            "clinic": clinic.pk,
            "mrn": "Q-1",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "birth_date": "1960-01-01",
            "sex": "robot",
        },
        format="json",
    )

    assert response.status_code == 400
    message = response.json()["sex"][0]
    assert message.startswith('"robot" is not a valid choice; use one of: ')
    assert "female" in message
