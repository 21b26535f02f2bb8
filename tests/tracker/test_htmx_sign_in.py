"""A page left open past the end of its session, or a form whose token is no longer good: the htmx parts of the
pages (a dose row's "Given", an alert's "Acknowledge") had the whole sign-in page, or Django's CSRF error page,
put inside the row. Now the browser loads the sign-in page whole and comes back to the page afterwards, and a
stale form reloads the page with a message (tracker/middleware.py HtmxSignInMiddleware, tracker/pages.py
csrf_failure)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.test import Client

from patients.models import Role
from regimens.models import ScheduledDose
from tests.factories import RegimenFactory, ScheduledDoseFactory, staff_user

pytestmark = pytest.mark.django_db

HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/?route=IM"}


@pytest.fixture
def dose(patient: Any) -> Any:
    return ScheduledDoseFactory(regimen=RegimenFactory(patient=patient))


def test_an_htmx_request_after_the_session_ended_loads_the_sign_in_page_whole(dose: ScheduledDose) -> None:
    response = Client().get(f"/doses/{dose.pk}/given/", **HTMX)
    # Not a redirect the XMLHttpRequest would follow (and put the sign-in page in the row): HX-Redirect, back to
    # the page the request was made from, not to the row's form.
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/?next={quote('/?route=IM', safe='')}"
    assert response.content == b""


def test_without_htmx_it_is_the_usual_redirect(dose: ScheduledDose) -> None:
    response = Client().get(f"/doses/{dose.pk}/given/")
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/doses/{dose.pk}/given/"
    assert "HX-Redirect" not in response


def test_an_htmx_request_that_owes_the_second_factor_loads_that_step_whole(
    clinic: Any, dose: ScheduledDose, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "REQUIRE_SECOND_FACTOR": True}
    cache.clear()
    staff_user(clinic, Role.CLINICIAN, username="dr-who")
    client = Client()
    assert client.post("/login/", {"username": "dr-who", "password": "pw-for-tests"}).status_code == 302
    response = client.get(f"/doses/{dose.pk}/given/", **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/login/two-factor/?next={quote('/?route=IM', safe='')}"


def test_the_page_it_comes_back_to_is_this_sites(dose: ScheduledDose) -> None:
    elsewhere: dict[str, Any] = {**HTMX, "HTTP_HX_CURRENT_URL": "https://evil.example/phish"}
    response = Client().get(f"/doses/{dose.pk}/given/", **elsewhere)
    assert response["HX-Redirect"] == f"/login/?next={quote(f'/doses/{dose.pk}/given/', safe='')}"


def test_a_stale_form_sent_by_htmx_reloads_the_page_with_a_message_and_records_nothing(
    nurse: Any, dose: ScheduledDose
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(nurse)
    response = client.post(
        f"/doses/{dose.pk}/given/", {f"dose{dose.pk}-lot_number": "A1"}, HTTP_X_CSRFTOKEN="stale", **HTMX
    )
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    dose.refresh_from_db()
    assert dose.status == "planned"
    page = client.get("/").content.decode()
    assert "This page was out of date, so it was loaded again. Nothing was recorded" in page


def test_a_stale_form_posted_as_a_page_says_what_to_do(nurse: Any, dose: ScheduledDose) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(nurse)
    response = client.post(f"/doses/{dose.pk}/given/", {f"dose{dose.pk}-lot_number": "A1"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "This form was out of date" in page and "Go back, reload the page and do it again." in page
    assert "nhsuk-header" in page  # the site's own page, not Django's plain one
