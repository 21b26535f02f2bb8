"""The portal's printable card (/me/card/: the same card, from the same data, as the staff's
/patients/{id}/card/) and the patient pages in Spanish for a patient whose language is "es": portal, card,
unsubscribe page, help page and the messages after a change."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from notifications.channels import sms
from notifications.delivery import deliver_one
from notifications.models import Delivery
from notifications.unsubscribe import unsubscribe_url
from regimens.models import DoseStatus, Protocol
from regimens.services import regimen_start
from tests.conftest import page_text
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)
NOW = datetime(2027, 1, 2, 9, tzinfo=UTC)
# Words no page a patient reads may carry (SPEC: texts to patients carry no clinical detail).
CLINICAL = ("ydroxocobalamin", "mcg", "B12", "naemia", "IM", "MRN", "haemoglobin", "cianocobalamina", "anemia")


@pytest.fixture(autouse=True)
def setup(settings: Any, clock: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": "https://cobalt.example.org", "SMS_BACKEND": "memory"}
    sms.reset()
    clock.move_to(NOW)


def on_treatment(clinic: Any, **fields: Any) -> Any:
    patient = PatientFactory(clinic=clinic, email=f"{fields['given_name'].lower()}@example.org", **fields)
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    return patient


def signed_in(contact: str) -> Client:
    client = Client()
    client.post("/me/link/", {"contact": contact})
    for delivery in Delivery.objects.filter(purpose="portal_link", status="pending"):
        deliver_one(delivery.pk, now=NOW)
    paths = re.findall(r"https://cobalt\.example\.org(/me/sign-in/\S+)", "\n".join(m.body for m in mail.outbox))
    assert client.post(paths[-1]).status_code == 302
    return client


def card(response: Any) -> str:
    body = response.content.decode()
    return body[body.index('<article class="cobalt-card"') : body.index("</article>")]


def test_the_patient_prints_the_same_card_the_staff_print(clinic: Any, nurse: Any) -> None:
    clinic.phone, clinic.address = "+44 20 7946 0000", "1 River Lane\nLondon E1 1AA"
    clinic.save(update_fields=["phone", "address"])
    jo = on_treatment(clinic, given_name="Jo")
    client = signed_in("jo@example.org")
    home = client.get("/me/").content.decode()
    assert 'href="/me/card/"' in home

    page = client.get("/me/card/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    own = card(page)
    staff = Client()
    staff.force_login(nurse)
    assert own == card(staff.get(f"/patients/{jo.pk}/card/"))  # one card, one data path
    first = jo.doses.filter(status=DoseStatus.PLANNED).order_by("due_date").first()
    assert f"{first.due_date:%A} {first.due_date.day} {first.due_date:%B %Y}" in own
    assert "Injection at the clinic" in own and "Blood test" in own
    assert "+44 20 7946 0000" in own and "1 River Lane<br>London E1 1AA" in own
    body = page.content.decode()
    assert "Print my card" in body and "data-print" in body and "patients/card.js" in body  # no inline script
    assert 'class="nhsuk-header__navigation' not in body  # no staff navigation
    for word in CLINICAL:
        assert word not in page_text(body), word


def test_the_card_needs_a_portal_session_and_shows_only_the_patient(clinic: Any, nurse: Any) -> None:
    on_treatment(clinic, given_name="Jo", family_name="Jones")
    on_treatment(clinic, given_name="Sam", family_name="Smith")
    assert Client().get("/me/card/")["Location"] == "/me/"
    staff = Client()
    staff.force_login(nurse)
    assert staff.get("/me/card/")["Location"] == "/me/"  # a staff login is not a patient
    page = signed_in("sam@example.org").get("/me/card/").content.decode()
    assert "Sam Smith" in page and "Jones" not in page


def test_the_card_query_count_does_not_grow_with_appointments(
    clinic: Any, django_assert_max_num_queries: Any
) -> None:
    PatientFactory(clinic=clinic, given_name="Al", email="al@example.org")  # nothing planned
    al = signed_in("al@example.org")
    with django_assert_max_num_queries(12):
        assert b"No appointment is booked yet" in al.get("/me/card/").content
    jo = on_treatment(clinic, given_name="Jo")
    assert jo.doses.count() >= 10
    client = signed_in("jo@example.org")
    with django_assert_max_num_queries(12):
        client.get("/me/card/")


def test_a_spanish_speaking_patient_sees_the_portal_in_spanish(clinic: Any) -> None:
    on_treatment(clinic, given_name="Ana", language="es")
    client = signed_in("ana@example.org")
    home = client.get("/me/")
    body = home.content.decode()
    assert '<html lang="es"' in body or 'lang="es"' in body
    for spanish in ("Hola, Ana", "Sus próximas citas", "Recordatorios", "Guardar mis preferencias",
                    "Añadir a mi calendario", "Cerrar sesión", "Citas anteriores", "Su tarjeta de citas",
                    "Saltar al contenido principal", "Por mensaje de texto", "Sin recordatorios"):
        assert spanish in body, spanish
    for english in ("Hello", "Your next appointments", "Save my choices", "Sign out", "Add to my calendar"):
        assert english not in body, english
    assert "lunes 4 de enero de 2027" in body  # dates as Spanish writes them
    assert "Pida cita un día entre el " in body and re.search(r"entre el \d+ de \w+ y el \d+ de \w+ de 2027", body)

    card = client.get("/me/card/").content.decode()
    assert "Imprimir mi tarjeta" in card and "lunes 4 de enero de 2027" in card
    assert "Ayuda con los recordatorios" in client.get("/me/help/").content.decode()

    saved = client.post("/me/reminders/", {"reminder_channel": "sms", "language": "es"}, follow=True)
    assert "Hemos guardado sus preferencias de recordatorios." in saved.content.decode()
    moved = client.post("/me/calendar-link/", follow=True)
    assert "Tiene un enlace de calendario nuevo." in moved.content.decode()
    errors = client.post("/me/reminders/", {"reminder_channel": "pigeon", "language": "es"})
    assert errors.status_code == 400 and "Hay un problema" in errors.content.decode()


def test_choosing_english_switches_the_portal_and_its_message(clinic: Any) -> None:
    on_treatment(clinic, given_name="Ana", language="es")
    client = signed_in("ana@example.org")
    saved = client.post("/me/reminders/", {"reminder_channel": "email", "language": "en"}, follow=True)
    body = saved.content.decode()
    assert "Your reminder choices are saved." in body and "Hello Ana" in body


def test_the_unsubscribe_page_is_in_the_patients_language(clinic: Any) -> None:
    ana = on_treatment(clinic, given_name="Ana", language="es")
    path = unsubscribe_url(ana.pk).split("cobalt.example.org", 1)[-1]
    asked = Client().get(path).content.decode()
    assert "Dejar de recibir recordatorios" in asked and "Stop reminders" not in asked
    done = Client().post(path, {"List-Unsubscribe": "One-Click"}).content.decode()
    assert "Ya no recibirá más recordatorios" in done
    for word in CLINICAL:
        assert word not in page_text(asked) and word not in page_text(done), word


def test_every_patient_page_string_has_a_spanish_text() -> None:
    """The catalogue covers every string the patient pages mark for translation (a new English string
    without its Spanish would show in English to a Spanish-speaking patient)."""
    from pathlib import Path

    from django.utils import translation

    root = Path(__file__).resolve().parents[2] / "notifications" / "templates" / "notifications" / "patient"
    pattern = re.compile(r"""\{% translate (?:"([^"]*)"|'([^']*)')(?! context)""")
    strings = {a or b for path in root.glob("*.html") for a, b in pattern.findall(path.read_text())}
    assert len(strings) > 40
    with translation.override("es"):
        untranslated = sorted(s for s in strings if translation.gettext(s) == s and s not in ("Error:",))
        dated = translation.pgettext("date format on patients' pages", "l j F Y")
    assert untranslated == []
    assert dated == r"l j \d\e F \d\e Y"
