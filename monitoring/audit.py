"""The clinic's audit log: one stream, newest first, of every change to clinical data (the
django-simple-history tables of the clinical models) and every sign-in and staff change
(patients.StaffEvent), with who, when, which record and patient, and what changed (field by field); and every
bulk re-plan of planned doses (regimens.Replan rows, grouped by their batch: one re-plan call, e.g. a clinic
calendar change across many patients) as one event with the patients, regimens and doses moved, cancelled and
added in total, and its cause.

One selector for the /audit/ page, its CSV export and GET /api/audit/. It reads the history tables of
every app, so it lives in monitoring (the top app). The stream is one UNION query, paged in the database;
the field changes of a page are then read with two queries per kind of record on the page, so the
number of queries depends on the kinds shown, never on the number of rows.
"""

from __future__ import annotations

import json
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce

from notifications.models import Alert
from patients.models import (
    Clinic,
    ClosedDate,
    LabResult,
    Medication,
    Patient,
    PatientFact,
    StaffEvent,
    StaffEventKind,
)
from regimens.models import (
    LabRecheck,
    Protocol,
    ProtocolPhase,
    Regimen,
    RegimenDecision,
    Replan,
    ScheduledDose,
)


@dataclass(frozen=True)
class Source:
    """A clinical model whose history the log shows, and how its history rows reach the clinic and patient."""

    kind: str
    label: str
    model: type[Model]
    clinic_path: str
    patient_path: str | None

    @property
    def history(self) -> Any:
        return self.model.history.model  # type: ignore[attr-defined]


SOURCES = [
    Source("clinic", "Clinic", Clinic, "id", None),
    Source("closed_date", "Clinic closed date", ClosedDate, "clinic_id", None),
    Source("patient", "Patient", Patient, "clinic_id", "id"),
    Source("lab_result", "Lab result", LabResult, "patient__clinic_id", "patient_id"),
    Source("medication", "Medication", Medication, "patient__clinic_id", "patient_id"),
    Source("fact", "Clinical fact or event", PatientFact, "patient__clinic_id", "patient_id"),
    Source("regimen", "Regimen", Regimen, "patient__clinic_id", "patient_id"),
    Source("decision", "Clinician decision", RegimenDecision, "regimen__patient__clinic_id", "regimen__patient_id"),
    Source("dose", "Dose", ScheduledDose, "patient__clinic_id", "patient_id"),
    Source("recheck", "Lab recheck", LabRecheck, "patient__clinic_id", "patient_id"),
    Source("alert", "Alert", Alert, "patient__clinic_id", "patient_id"),
    # The clinic's own protocol copies (issue 12; shared protocols have no clinic, so never show here).
    Source("protocol", "Clinic's own protocol", Protocol, "clinic_id", None),
    Source("protocol_phase", "Phase of the clinic's own protocol", ProtocolPhase, "protocol__clinic_id", None),
]
BY_KIND = {source.kind: source for source in SOURCES}
SIGN_IN_KINDS = (StaffEventKind.SIGNED_IN, StaffEventKind.SIGN_IN_FAILED)
STAFF_KINDS = {"sign_in": "Sign-ins", "staff": "Staff changes"}
# regimens.Replan: a re-plan that moved or cancelled planned doses in bulk, one event per batch with the
# totals and its cause (a calendar change, a dose recorded, a regimen stopped, ...).
REPLAN_KIND = {"replan": "Dose re-plan (doses moved or cancelled)"}
KINDS = {**{s.kind: s.label for s in SOURCES}, **REPLAN_KIND, **STAFF_KINDS}
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
# Fields whose change says nothing a reader needs (timestamps every save moves, secrets).
QUIET_FIELDS = {"id", "created_at", "updated_at", "ical_token"}
MAX_PAGE_SIZE = 500
# A typed NULL: PostgreSQL reads a bare NULL in the UNION's first branch as text.
NO_ID = Cast(Value(None), BigIntegerField())
COLUMNS = ("ev_at", "ev_source", "ev_src", "ev_object", "ev_patient", "ev_actor", "ev_action")


@dataclass(frozen=True)
class AuditQuery:
    clinic: Clinic
    person: int | None = None
    patient: int | None = None
    kinds: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None


def _bounds(query: AuditQuery, field: str) -> Q:
    """The period as instants: from the start of `start` to the end of `end`, clinic days."""
    zone = zoneinfo.ZoneInfo(query.clinic.timezone)
    condition = Q()
    if query.start:
        condition &= Q(**{f"{field}__gte": datetime(query.start.year, query.start.month, query.start.day, tzinfo=zone)})
    if query.end:
        after = query.end + timedelta(days=1)
        condition &= Q(**{f"{field}__lt": datetime(after.year, after.month, after.day, tzinfo=zone)})
    return condition


def _history_rows(source: Source, query: AuditQuery) -> QuerySet[Any]:
    rows = source.history.objects.filter(**{source.clinic_path: query.clinic.id}).annotate(
        ev_at=F("history_date"),
        ev_source=Value(source.kind, output_field=CharField()),
        ev_src=F("history_id"),
        ev_object=Cast("id", BigIntegerField()),
        ev_patient=F(source.patient_path) if source.patient_path else NO_ID,
        ev_actor=F("history_user_id"),
        ev_action=F("history_type"),
    )
    if query.person:
        rows = rows.filter(history_user_id=query.person)
    if query.patient:
        rows = rows.filter(**{source.patient_path: query.patient}) if source.patient_path else rows.none()
    return rows.filter(_bounds(query, "history_date")).values_list(*COLUMNS)


def _staff_rows(query: AuditQuery, kinds: set[str]) -> QuerySet[Any]:
    wanted: list[str] = []
    if "sign_in" in kinds:
        wanted += list(SIGN_IN_KINDS)
    if "staff" in kinds:
        wanted += [k for k in StaffEventKind.values if k not in SIGN_IN_KINDS]
    # Sign-ins belong to no clinic: they show in the log of each clinic the account works in.
    rows = StaffEvent.objects.filter(
        Q(clinic=query.clinic) | Q(clinic__isnull=True, subject__memberships__clinic=query.clinic), kind__in=wanted
    )
    if query.person:
        rows = rows.filter(Q(actor_id=query.person) | Q(subject_id=query.person))
    if query.patient:
        rows = rows.none()
    return (
        rows.filter(_bounds(query, "at"))
        .annotate(
            ev_at=F("at"),  # the annotations in COLUMNS order: UNION matches columns by position
            ev_source=Value("staff_event", output_field=CharField()),
            ev_src=F("id"),
            ev_object=F("subject_id"),
            ev_patient=NO_ID,
            ev_actor=F("actor_id"),
            ev_action=F("kind"),
        )
        .values_list(*COLUMNS)
    )


def _replan_rows(query: AuditQuery) -> QuerySet[Any]:
    """The re-plans as one event per batch (every regimen one re-plan call touched; a row written before
    batches existed is its own event): when (the latest row), who, the first row's id (describe reads the
    batch through it), and the regimen and patient when the batch touched only one."""
    rows = Replan.objects.filter(patient__clinic_id=query.clinic.id)
    if query.person:
        rows = rows.filter(user_id=query.person)
    if query.patient:
        # The whole batch of a re-plan that touched the patient (the event then shows its totals).
        touched = Replan.objects.filter(patient__clinic_id=query.clinic.id, patient_id=query.patient)
        rows = rows.filter(
            Q(batch__in=touched.filter(batch__isnull=False).values("batch"))
            | Q(pk__in=touched.filter(batch__isnull=True).values("pk"))
        )
    single = Q(regimens=1)
    return (
        rows.filter(_bounds(query, "at"))
        .values(group=Coalesce(Cast("batch", CharField()), Cast("id", CharField())))
        .annotate(
            regimens=Count("id"),
            patients=Count("patient_id", distinct=True),
        )
        .annotate(
            ev_at=Max("at"),
            ev_source=Value("replan", output_field=CharField()),
            ev_src=Min("id"),
            ev_object=Case(When(single, then=Cast(Min("regimen_id"), BigIntegerField())), default=NO_ID),
            ev_patient=Case(When(Q(patients=1), then=Cast(Min("patient_id"), BigIntegerField())), default=NO_ID),
            ev_actor=Min("user_id"),
            ev_action=Value("replanned", output_field=CharField()),
        )
        .values_list(*COLUMNS)
    )


def audit_stream(query: AuditQuery) -> QuerySet[Any]:
    """Every matching event as (at, source, src_id, object_id, patient, actor, action), newest first."""
    kinds = set(query.kinds) or set(KINDS)
    parts = [_history_rows(BY_KIND[kind], query).order_by() for kind in KINDS if kind in kinds and kind in BY_KIND]
    if "replan" in kinds:
        parts.append(_replan_rows(query).order_by())
    if kinds & set(STAFF_KINDS):
        parts.append(_staff_rows(query, kinds).order_by())
    first, *rest = parts
    return first.union(*rest, all=True).order_by("-ev_at", "-ev_src") if rest else first.order_by("-ev_at", "-ev_src")


def audit_page(query: AuditQuery, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """One page of the log: {count, results}, each result with its field changes."""
    stream = audit_stream(query)
    rows = list(stream[offset : offset + limit])
    return {"count": stream.count(), "results": describe(rows)}


def describe(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The events of `rows` (audit_stream's tuples) for people: names, the record, what changed."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for _at, source, src_id, *_rest in rows:
        by_source[source].append(src_id)
    changes: dict[tuple[str, int], tuple[list[dict[str, Any]], str]] = {}
    for kind, ids in by_source.items():
        if kind in BY_KIND:
            changes.update(_changes(BY_KIND[kind], ids))
    staff = StaffEvent.objects.in_bulk(by_source.get("staff_event", []))
    replans, batches = _replans(by_source.get("replan", []))
    user_ids = {row[5] for row in rows if row[5]} | {e.subject_id for e in staff.values() if e.subject_id}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids)}
    patients = {
        p.pk: p
        for p in Patient.objects.filter(pk__in={row[4] for row in rows if row[4]}).only(
            "family_name", "given_name", "mrn"
        )
    }
    results = []
    for at, source, src_id, object_id, patient_id, actor_id, action in rows:
        actor = users.get(actor_id)
        patient = patients.get(patient_id)
        entry: dict[str, Any] = {
            "id": f"{source}:{src_id}",
            "at": at.isoformat(),
            "actor": {"id": actor.pk, "username": actor.get_username()} if actor else None,
            "patient": {"id": patient.pk, "name": f"{patient.family_name}, {patient.given_name}", "mrn": patient.mrn}
            if patient
            else None,
        }
        if source == "staff_event":
            event = staff[src_id]
            subject = users.get(event.subject_id) if event.subject_id else None
            entry.update(
                kind="sign_in" if event.kind in SIGN_IN_KINDS else "staff",
                action=event.kind,
                record={
                    "model": "user",
                    "id": event.subject_id,
                    "label": event.username or (subject and subject.get_username()) or "",
                },
                changes=[
                    {"field": key, "from": value.get("from"), "to": value.get("to")}
                    if isinstance(value, dict)
                    else {"field": key, "from": None, "to": value}
                    for key, value in event.details.items()
                ],
                reason="",
            )
        elif source == "replan":
            replan = replans[src_id]
            totals = batches.get((replan.batch, replan.clinic_id)) if replan.batch else None
            if totals is None:  # a row written before batches existed: an event of its own
                totals = {"regimens": 1, "patients": 1, "moved": len(replan.moved),
                          "cancelled": len(replan.cancelled), "added": replan.added}  # fmt: skip
            one = totals["regimens"] == 1
            entry.update(
                kind="replan",
                action="replanned",
                record={"model": "regimen", "id": replan.regimen_id, "label": f"Regimen #{replan.regimen_id}"}
                if one
                else {"model": "regimen", "id": None, "label": f"{totals['regimens']} regimens"},
                changes=[
                    {"field": "patients", "from": None, "to": totals["patients"]},
                    {"field": "regimens", "from": None, "to": totals["regimens"]},
                    {"field": "doses moved", "from": None, "to": totals["moved"]},
                    {"field": "doses cancelled", "from": None, "to": totals["cancelled"]},
                    {"field": "doses added", "from": None, "to": totals["added"]},
                ],
                reason=replan.cause,
            )
        else:
            diff, reason = changes.get((source, src_id), ([], ""))
            entry.update(
                kind=source,
                action=ACTIONS.get(action, action),
                record={"model": source, "id": object_id, "label": f"{BY_KIND[source].label} #{object_id}"},
                changes=diff,
                reason=reason,
            )
        results.append(entry)
    return results


class JSONArrayLength(Func):
    """The length of a JSON array column (PostgreSQL's jsonb_array_length, SQLite's json_array_length)."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="json_array_length", **extra)


def _replans(ids: list[int]) -> tuple[dict[int, Any], dict[tuple[Any, int], dict[str, int]]]:
    """The first Replan row of each batch on the page (by id), and each batch's totals within the row's
    clinic (keyed by batch and clinic): two queries, however many rows the batches hold."""
    if not ids:
        return {}, {}
    rows = Replan.objects.annotate(clinic_id=F("patient__clinic_id")).in_bulk(ids)
    totals = (
        Replan.objects.filter(batch__in={r.batch for r in rows.values() if r.batch})
        .values("batch", "patient__clinic_id")
        .annotate(
            regimens=Count("id"),
            patients=Count("patient_id", distinct=True),
            moved=Sum(JSONArrayLength("moved")),
            cancelled=Sum(JSONArrayLength("cancelled")),
            total_added=Sum("added"),
        )
    )
    batches = {
        (t["batch"], t["patient__clinic_id"]): {
            "regimens": t["regimens"],
            "patients": t["patients"],
            "moved": t["moved"] or 0,
            "cancelled": t["cancelled"] or 0,
            "added": t["total_added"] or 0,
        }
        for t in totals
    }
    return rows, batches


def _text(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _changes(source: Source, history_ids: list[int]) -> dict[tuple[str, int], tuple[list[dict[str, Any]], str]]:
    history = source.history
    previous = history.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id")).order_by("-history_id")
    records = list(
        history.objects.filter(history_id__in=history_ids).annotate(
            previous_id=Subquery(previous.values("history_id")[:1])
        )
    )
    before = history.objects.in_bulk([r.previous_id for r in records if r.previous_id])
    # A field the history leaves out (e.g. Regimen.planned_lab_inputs, derived data) has no change to show.
    kept = {f.attname for f in history._meta.concrete_fields}
    fields = [f for f in source.model._meta.concrete_fields if f.name not in QUIET_FIELDS and f.attname in kept]
    out = {}
    for record in records:
        old = before.get(record.previous_id) if record.previous_id else None
        diff = []
        if record.history_type != "-":
            for field in fields:
                new_value = getattr(record, field.attname)
                old_value = getattr(old, field.attname) if old is not None else None
                if old is None and new_value in (None, "", [], {}):
                    continue
                if old is None or new_value != old_value:
                    diff.append({"field": field.name, "from": _text(old_value), "to": _text(new_value)})
        out[(source.kind, record.history_id)] = (diff, record.history_change_reason or "")
    return out
