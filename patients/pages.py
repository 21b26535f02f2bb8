"""The patient pages: search `/patients/` (and its CSV), the patient page `/patients/{id}/` and the
printable injection card `/patients/{id}/card/`.

Patients is the left-most app: it cannot import regimens, notifications or monitoring. The patient page
shows this app's own data (details, facts, medications) and the sections the apps above contribute
through `tracker.events.collect("patient.page_sections", patient=..., request=..., record=...)` (each returns
`tracker.pages.PageSection`s from its listeners); the card asks "patient.card_entries" the same way.
`record` (PatientRecord) holds what several sections read, read once for the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any, TypeVar

from django import forms
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from patients.models import LabResult, Medication, Patient, PatientFact
from tracker import events
from tracker.clock import patient_today
from tracker.exports import csv_response
from tracker.forms import NHSUKForm
from tracker.pages import CardEntry, PageSection, prescriber_here, staff_page
from tracker.permissions import staff_clinic_ids

PAGE_SIZE = 25
T = TypeVar("T")


class PatientSearchForm(NHSUKForm):
    q = forms.CharField(
        label=_("Name or MRN"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"data-width": "20", "type": "search", "autocomplete": "off"}),
    )


def patients_for(request: HttpRequest) -> QuerySet[Patient]:
    """The patients of the user's clinics (another clinic's patient does not exist for them)."""
    return Patient.objects.filter(clinic_id__in=staff_clinic_ids(request.user)).select_related("clinic")


def search_patients(request: HttpRequest, text: str) -> QuerySet[Patient]:
    queryset = patients_for(request)
    for word in text.split():
        queryset = queryset.filter(
            Q(given_name__icontains=word) | Q(family_name__icontains=word) | Q(mrn__icontains=word)
        )
    return queryset.order_by("family_name", "given_name", "id")


def _search(request: HttpRequest) -> tuple[PatientSearchForm, QuerySet[Patient]]:
    form = PatientSearchForm(request.GET or None)
    text = form.cleaned_data["q"] if form.is_valid() else ""
    return form, search_patients(request, text.strip())


@staff_page
def patient_search(request: HttpRequest) -> HttpResponse:
    form, queryset = _search(request)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "patients/search.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@staff_page
def patient_export(request: HttpRequest) -> HttpResponse:
    """The search's result as CSV (every page), cells neutralised against formulas (tracker/exports.py)."""
    _form, queryset = _search(request)
    rows = (
        (p.family_name, p.given_name, p.mrn, p.birth_date, p.get_sex_display(), p.clinic.name)
        for p in queryset.iterator(chunk_size=500)
    )
    names = (_("Family name"), _("Given name"), "MRN", _("Date of birth"), _("Sex"), _("Clinic"))
    header = [str(name) for name in names]
    return csv_response("patients.csv", header, rows)


def get_patient(request: HttpRequest, patient_id: int, queryset: QuerySet[Patient] | None = None) -> Patient:
    """The patient, if they belong to one of the user's clinics; else 404 (as in the API)."""
    queryset = patients_for(request) if queryset is None else queryset
    patient = queryset.filter(pk=patient_id).first()
    if patient is None:
        raise Http404(_("No such patient."))
    return patient


def page_patient(request: HttpRequest, patient_id: int) -> Patient:
    """`get_patient` for the patient page, with whether the patient has any fact and any medication recorded
    (`has_facts`, `has_medications`: EXISTS in the same statement), so that the page reads neither table for a
    patient with none: most have no medication, and many no fact (two statements of the page's 14 saved)."""
    queryset = patients_for(request).annotate(
        has_facts=Exists(PatientFact.objects.filter(patient=OuterRef("pk"))),
        has_medications=Exists(Medication.objects.filter(patient=OuterRef("pk"))),
    )
    return get_patient(request, patient_id, queryset)


class PatientRecord:
    """What several sections of the patient page read about the patient, each read once for the page: their
    facts (the facts section, the safety warnings, the prompts, the Hb band in pregnancy), their lab results
    (the trend charts, the table of results, the platelet count S-2 reads), what an app shares among its
    own readers (`shared`: regimens' rows, read by the regimens section and monitoring's), and the users the
    page's rows name (who recorded, gave, closed, decided; an inbox message's account: `name_users`, read once
    by `attach_users`)."""

    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self._shared: dict[str, Any] = {}
        self._named: list[tuple[Any, str]] = []

    @cached_property
    def facts(self) -> list[PatientFact]:
        """Every fact recorded of the patient, the latest recorded first (who recorded each: `attach_users`)."""
        if getattr(self.patient, "has_facts", True) is False:  # page_patient found none
            return []
        facts = list(self.patient.facts.order_by("-recorded_at", "-id"))
        self.name_users(facts, "recorded_by")
        return facts

    @cached_property
    def lab_results(self) -> list[LabResult]:
        """Every lab result of the patient (those entered in error too), the latest collected first (who entered
        each: `attach_users`)."""
        results = list(LabResult.objects.filter(patient=self.patient).order_by("-collected_at", "-id"))
        self.name_users(results, "entered_by")
        return results

    def shared(self, key: str, load: Callable[[], T]) -> T:
        """`load()`, called once for the page whoever asks first for `key`."""
        if key not in self._shared:
            self._shared[key] = load()
        value: T = self._shared[key]
        return value

    def name_users(self, rows: Iterable[Any], *fields: str) -> None:
        """The page shows the user that each of `rows`' `fields` (foreign keys to the user model) names:
        `attach_users` sets them on the rows from one read for the whole page, where a join of the users table in
        each section's query (nine of them) cost more than the read (the ORM's compiling of each join)."""
        self._named.extend((row, field) for row in rows for field in fields)

    def attach_users(self) -> None:
        """Set the users asked for by `name_users` on their rows (as select_related would have, with only the
        username the page shows), in one query (none when no row names anyone); before the sections render."""
        ids = {getattr(row, f"{field}_id") for row, field in self._named} - {None}
        if ids:
            user_model = get_user_model()
            users = {user.pk: user for user in user_model.objects.filter(pk__in=ids).only(user_model.USERNAME_FIELD)}
            for row, field in self._named:
                user = users.get(getattr(row, f"{field}_id"))
                if user is not None:
                    setattr(row, field, user)
        self._named.clear()


@staff_page
def patient_page(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = page_patient(request, patient_id)
    today = patient_today(patient)
    record = PatientRecord(patient)
    medications = list(patient.medications.all()) if getattr(patient, "has_medications", True) else []
    own = PageSection(
        order=50,
        anchor="facts",
        title=_("Facts and medications"),
        template="patients/sections/facts.html",
        context={"facts": record.facts, "medications": medications, "today": today},
    )
    sections = sorted(
        [own, *events.collect("patient.page_sections", patient=patient, request=request, record=record)],
        key=lambda section: section.order,
    )
    record.attach_users()
    shared = {"patient": patient, "today": today, "prescriber": prescriber_here(request, patient.clinic_id)}
    rendered = [
        (section, render_to_string(section.template, {**shared, **section.context}, request=request))
        for section in sections
    ]
    return render(
        request,
        "patients/patient.html",
        {
            "patient": patient,
            "age": patient.age_on(today),
            "today": today,
            "sections": rendered,
        },
    )


def card_entries(patient: Patient) -> list[CardEntry]:
    entries: list[CardEntry] = events.collect("patient.card_entries", patient=patient)
    return sorted(entries, key=lambda entry: (entry.on, entry.kind))


@staff_page
def injection_card(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The card handed to the patient: the next appointments and blood tests, and the clinic's contact, in
    the patient's language. No diagnosis, drug or lab value (SPEC: texts to patients carry no clinical
    detail), so it is safe to lose on a bus."""
    patient = get_patient(request, patient_id)
    return render(request, "patients/card.html", card_context(patient))


def card_context(patient: Patient) -> dict[str, Any]:
    """What the card template (patients/_card.html) shows: the staff page above and the patient's own
    portal (/me/card/, notifications/portal.py) print the same card from this."""
    return {
        "patient": patient,
        "clinic": patient.clinic,
        "entries": card_entries(patient),
        "language": patient.language if patient.language in ("en", "es") else "en",
    }
