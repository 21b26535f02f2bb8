"""Write services for lab results: one result, a panel of results, and the shared checks the CSV
import (patients/labs/importer.py) reuses row by row.

The numbers come from the pure modules: patients/labs/analytes.py (codes, LOINC, exact unit conversion,
plausibility bounds) and patients/labs/reference_ranges.py (RULES §5.2 defaults, critical limits,
`interpret`). This module only translates rows to and from them, checks times, and writes.

Every problem is reported against the field that caused it ("unit", "results[2].ref_low"); a panel
is all or nothing, and nothing is written when any result of it is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone as djtz
from rest_framework.exceptions import PermissionDenied

from patients.labs import analytes, reference_ranges
from patients.models import FactKind, Interpretation, LabResult, Patient, PatientFact, ResultSource
from tracker import events
from tracker.bulk import locked_row
from tracker.clock import CLOCK_SKEW, local_date
from tracker.errors import ConflictError, ServiceError

# LabResult.value_canonical / ref_low / ref_high are stored with 6 decimal places: the two
# conversions that do not terminate (B12 pmol/L / 0.738, folate nmol/L / 2.266) are rounded here,
# once, so the value interpreted is the value stored.
STORED_PLACES = Decimal("0.000001")

# Column widths of LabResult, checked here so a long value is a 400 naming the field, not a 500.
MAX_LENGTHS = {"value": 40, "unit": 30, "lab": 100, "note": 500}


class LabResultErrors(ServiceError):
    """Several fields refused at once (a panel with two bad rows reports both)."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        first_field, first_message = errors[0]
        super().__init__(first_field, first_message)
        self.errors = list(errors)

    def as_dict(self) -> dict[str, object]:
        body: dict[str, list[str]] = {}
        for name, message in self.errors:
            body.setdefault(name, []).append(message)
        return dict(body)


@dataclass(frozen=True)
class ResultInput:
    """One result as the lab reported it. `value` is a number or the text the lab sent; `ref_low`
    and `ref_high` are the reporting lab's range, in `unit`."""

    analyte: str
    value: Any
    unit: str = ""
    ref_low: Any = None
    ref_high: Any = None
    note: str = ""


@dataclass
class PatientContext:
    """What interpretation needs to know about a patient (loaded once per patient, not per row). `pregnancies`
    None: read on the first question (one result: only when a pregnancy would change its range)."""

    patient: Patient
    pregnancies: list[PatientFact] | None = field(default_factory=list)

    def pregnant_on(self, day: date) -> bool:
        if self.pregnancies is None:
            self.pregnancies = list(_pregnancies([self.patient.pk]))
        # RULES §5.2 / L-8: a recorded pregnancy (not one checked and absent) covering the day.
        return any(
            not fact.absent
            and (fact.onset_date is None or fact.onset_date <= day)
            and (fact.end_date is None or fact.end_date >= day)
            for fact in self.pregnancies
        )


def patient_contexts(patients: Iterable[Patient]) -> dict[int, PatientContext]:
    """Contexts for many patients with one query for their pregnancies."""
    by_pk = {patient.pk: patient for patient in patients}
    pregnancies: dict[int, list[PatientFact]] = {pk: [] for pk in by_pk}
    for fact in _pregnancies(list(by_pk)):
        pregnancies[fact.patient_id].append(fact)
    return {pk: PatientContext(patient, pregnancies[pk]) for pk, patient in by_pk.items()}


def _pregnancies(patient_ids: list[int]) -> Any:
    return PatientFact.objects.filter(patient_id__in=patient_ids, kind=FactKind.PREGNANCY, absent=False)


def _stored(number: Decimal) -> Decimal:
    return number.quantize(STORED_PLACES, rounding=ROUND_HALF_UP)


def _text(value: Any) -> str:
    """The value as entered: JSON numbers keep their shortest spelling (12.1, not 12.0999…)."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value).strip()


def check_times(
    *, patient: Patient, collected_at: datetime, reported_at: datetime | None, now: datetime, prefix: str = ""
) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    latest = now + CLOCK_SKEW
    if djtz.is_naive(collected_at):
        errors.append((f"{prefix}collected_at", "must include a time zone offset, e.g. 2027-01-04T09:30:00+00:00"))
        return errors
    if collected_at > latest:
        errors.append((f"{prefix}collected_at", f"{collected_at.isoformat()} is in the future"))
    elif local_date(collected_at, patient.timezone) < patient.birth_date:
        errors.append((f"{prefix}collected_at", f"is before the patient's birth date ({patient.birth_date})"))
    if reported_at is not None:
        if djtz.is_naive(reported_at):
            errors.append((f"{prefix}reported_at", "must include a time zone offset, e.g. 2027-01-05T14:00:00+00:00"))
        elif reported_at < collected_at:
            errors.append((f"{prefix}reported_at", "is before collected_at: a result is reported after collection"))
        elif reported_at > latest:
            errors.append((f"{prefix}reported_at", f"{reported_at.isoformat()} is in the future"))
    return errors


def _convert(analyte: analytes.Analyte, value: Any, unit: str, name: str, prefix: str) -> Decimal:
    try:
        return _stored(analytes.to_canonical(analyte, value, unit))
    except analytes.AnalyteError as exc:
        # A unit problem stays on "unit"; a value problem is named after the input that carried it.
        raise ServiceError(prefix + (exc.field if exc.field == "unit" else name), exc.message) from None


def _interpretation(
    analyte: analytes.Analyte,
    value: Decimal,
    ref_low: Decimal | None,
    ref_high: Decimal | None,
    context: PatientContext,
    collected_on: date,
) -> str:
    critical_low, critical_high = reference_ranges.critical_limits(analyte.code)
    if ref_low is not None or ref_high is not None:
        # RULES §3.2 / §5.2: the reporting lab's own range always wins (a one-sided range, such as
        # MMA "<= 400 nmol/L", is used as sent: no limit on the other side).
        band: reference_ranges.ReferenceRange | None = reference_ranges.ReferenceRange(ref_low, ref_high, "lab")
    else:
        patient = context.patient
        sex, age = cast(reference_ranges.Sex, patient.sex), patient.age_on(collected_on)
        band = reference_ranges.default_range(analyte.code, sex, age)
        # A pregnancy is looked up only where it changes the range (RULES §5.2: hemoglobin).
        if band != reference_ranges.default_range(analyte.code, sex, age, True) and context.pregnant_on(collected_on):
            band = reference_ranges.default_range(analyte.code, sex, age, True)
    if band is None:
        # No range: only a critical limit can still be applied (e.g. Hb < 70 g/L at any age).
        band = reference_ranges.ReferenceRange(None, None, "none")
        verdict = reference_ranges.interpret(value, band, critical_low, critical_high)
        return verdict if verdict.startswith("critically_") else Interpretation.UNKNOWN.value
    return reference_ranges.interpret(value, band, critical_low, critical_high)


def build_lab_result(
    *,
    context: PatientContext,
    item: ResultInput,
    collected_at: datetime,
    reported_at: datetime | None = None,
    lab: str = "",
    source: str = ResultSource.ENTERED,
    entered_by: Any = None,
    import_batch: str = "",
    prefix: str = "",
) -> LabResult:
    """An unsaved, checked and interpreted LabResult. Raises ServiceError naming the first bad field
    (prefixed, e.g. "results[2]."). Times are checked separately (`check_times`)."""
    try:
        analyte = analytes.resolve(item.analyte)
    except analytes.AnalyteError as exc:
        raise ServiceError(prefix + "analyte", exc.message) from None
    code = item.analyte.strip() if isinstance(item.analyte, str) else ""
    # RULES §7.1: always store the lab's own LOINC if supplied, else the preferred one.
    loinc = code if code in analyte.loinc_codes else analyte.loinc
    value_text = _text(item.value)
    unit = item.unit.strip() if isinstance(item.unit, str) else ""
    for name, text in (("value", value_text), ("unit", unit), ("lab", lab), ("note", item.note)):
        if len(text) > MAX_LENGTHS[name]:
            raise ServiceError(prefix + name, f"is longer than {MAX_LENGTHS[name]} characters")
    if value_text == "":
        raise ServiceError(prefix + "value", "is required")
    collected_on = local_date(collected_at, context.patient.timezone)
    result = LabResult(
        patient=context.patient,
        analyte=analyte.code,
        loinc=loinc,
        value_as_entered=value_text,
        unit_as_entered=unit,
        unit_canonical=analyte.canonical_unit,
        collected_at=collected_at,
        reported_at=reported_at,
        source=source,
        lab=lab.strip(),
        note=item.note.strip(),
        import_batch=import_batch,
        entered_by=entered_by if getattr(entered_by, "is_authenticated", False) else None,
    )
    if analyte.kind == analytes.QUALITATIVE:
        if unit:
            raise ServiceError(prefix + "unit", f"{analyte.code} is present or absent: leave the unit empty")
        for name, given in (("ref_low", item.ref_low), ("ref_high", item.ref_high)):
            if given not in (None, ""):
                raise ServiceError(prefix + name, f"{analyte.code} is reported as present or absent: it has no range")
        try:
            presence = analytes.to_presence(analyte, value_text)
        except analytes.AnalyteError as exc:
            raise ServiceError(prefix + "value", exc.message) from None
        result.presence = presence
        result.interpretation = presence
        return result
    if isinstance(item.value, bool) or not isinstance(item.value, int | float | str | Decimal):
        raise ServiceError(prefix + "value", f"must be a number, not {item.value!r}")
    value = _convert(analyte, item.value, unit, "value", prefix)
    ref_low = None if item.ref_low in (None, "") else _convert(analyte, item.ref_low, unit, "ref_low", prefix)
    ref_high = None if item.ref_high in (None, "") else _convert(analyte, item.ref_high, unit, "ref_high", prefix)
    if ref_low is not None and ref_high is not None and ref_low > ref_high:
        raise ServiceError(prefix + "ref_low", f"{item.ref_low} is above ref_high {item.ref_high}")
    result.value_canonical = value
    result.ref_low = ref_low
    result.ref_high = ref_high
    result.interpretation = _interpretation(analyte, value, ref_low, ref_high, context, collected_on)
    return result


def _check_patient(patient: Patient, prefix: str = "") -> None:
    if patient.sex not in reference_ranges.SEXES:  # pragma: no cover - the model's choices guard this
        raise ServiceError(prefix + "patient", f"has an unknown sex {patient.sex!r}")


def lab_panel_create(
    *,
    patient: Patient,
    collected_at: datetime,
    results: Sequence[ResultInput],
    reported_at: datetime | None = None,
    lab: str = "",
    entered_by: Any = None,
    now: datetime | None = None,
) -> list[LabResult]:
    """Store several results from one sample (one collection time): all of them, or none.

    Every refused result is reported at once, as "results[i].field".
    """
    if not results:
        raise ServiceError("results", "give at least one result")
    _check_patient(patient)
    now = now or djtz.now()
    errors = check_times(patient=patient, collected_at=collected_at, reported_at=reported_at, now=now)
    if len(lab) > MAX_LENGTHS["lab"]:
        errors.append(("lab", f"is longer than {MAX_LENGTHS['lab']} characters"))
    if errors:
        raise LabResultErrors(errors)
    context = patient_contexts([patient])[patient.pk]
    built: list[LabResult] = []
    for index, item in enumerate(results):
        try:
            built.append(
                build_lab_result(
                    context=context,
                    item=item,
                    collected_at=collected_at,
                    reported_at=reported_at,
                    lab=lab,
                    entered_by=entered_by,
                    prefix=f"results[{index}].",
                )
            )
        except ServiceError as exc:
            errors.append((exc.field, exc.message))
    if errors:
        raise LabResultErrors(errors)
    with transaction.atomic():
        for result in built:
            result.save()
        events.announce_on_commit("patient.changed", patient_id=patient.pk)
    return built


def lab_result_create(**kwargs: Any) -> LabResult:
    """Store one lab result (see lab_result_record); the stored row, new or the identical one already there."""
    return lab_result_record(**kwargs)[0]


def lab_result_record(
    *,
    patient: Patient,
    analyte: str,
    value: Any,
    unit: str,
    collected_at: datetime,
    reported_at: datetime | None = None,
    ref_low: Any = None,
    ref_high: Any = None,
    lab: str = "",
    note: str = "",
    entered_by: Any = None,
    now: datetime | None = None,
) -> tuple[LabResult, bool]:
    """Store one lab result, converted to the canonical unit and interpreted (RULES §5.2, §5.3). Returns the
    row and whether it is new.

    A result identical to one already stored (same patient, analyte, collection time, value, source and lab,
    not entered in error) is not stored twice: a client that repeats a POST whose answer it lost (or twenty
    at once) gets the row already there (issue 12). The patient's row lock makes concurrent repeats wait.
    """
    _check_patient(patient)
    now = now or djtz.now()
    errors = check_times(patient=patient, collected_at=collected_at, reported_at=reported_at, now=now)
    if errors:
        raise LabResultErrors(errors)
    context = PatientContext(patient, pregnancies=None)
    result = build_lab_result(
        context=context,
        item=ResultInput(analyte=analyte, value=value, unit=unit, ref_low=ref_low, ref_high=ref_high, note=note),
        collected_at=collected_at,
        reported_at=reported_at,
        lab=lab,
        entered_by=entered_by,
    )
    with transaction.atomic():
        locked_row(Patient, patient.pk)
        existing = _identical(result)
        if existing is not None:
            return existing, False
        result.save()
        events.announce_on_commit("patient.changed", patient_id=patient.pk)
    return result, True


def _identical(result: LabResult) -> LabResult | None:
    """The first stored result of the patient identical to `result` (analyte, collection time, value or presence,
    source, lab) and not entered in error. Written out, not built with the ORM, which took longer to build the
    statement than PostgreSQL to run it, on the path of every lab result stored (issue 16)."""
    ops = connection.ops
    value = result.value_canonical
    field = LabResult._meta.get_field("value_canonical")
    params: list[Any] = [result.patient_id, result.analyte, ops.adapt_datetimefield_value(result.collected_at)]
    if value is None:
        same_value = "value_canonical IS NULL"
    else:
        same_value = "value_canonical = %s"
        params.append(ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places))  # type: ignore[attr-defined]
    params += [result.presence, result.source, result.lab]
    sql = (
        f"SELECT * FROM {LabResult._meta.db_table} WHERE patient_id = %s AND analyte = %s AND collected_at = %s"  # noqa: S608
        f" AND {same_value} AND presence = %s AND source = %s AND lab = %s AND error_recorded_at IS NULL"
        " ORDER BY id LIMIT 1"
    )
    found = list(LabResult.objects.raw(sql, params))
    return found[0] if found else None


def lab_result_mark_entered_in_error(
    *, result: LabResult, reason: str, user: Any = None, clinician: bool = False
) -> LabResult:
    """RULES §10 V-14: mark a lab result entered in error (wrong patient, wrong value, wrong sample).

    A clinician may always; whoever entered or imported it only within ENTERED_IN_ERROR_RECORDER_DAYS [P].
    The row stays visible with who, when and why; no rule reads it any more (monitoring reads results with
    error_recorded_at unset only), and the monitoring evaluation that runs after the commit re-evaluates
    the patient: alerts it opened resolve, rechecks it alone completed are due again, the recheck plan that
    followed from it is recomputed.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the result is wrong (e.g. entered on the wrong patient)")
    with transaction.atomic():
        result = LabResult.objects.select_for_update().get(pk=result.pk)
        if result.error_recorded_at is not None:
            if result.error_reason == reason[:500]:
                return result
            raise ConflictError("entered_in_error", "this result was already marked entered in error")
        if not clinician:
            days = int(settings.COBALT["ENTERED_IN_ERROR_RECORDER_DAYS"])
            author = getattr(user, "pk", None)
            if author is None or result.entered_by_id != author:
                raise PermissionDenied(
                    "Only a clinician or the person who entered this result may mark it entered in error."
                )
            if djtz.now() - result.created_at > timedelta(days=days):
                raise PermissionDenied(
                    f"This result was entered more than {days} days ago: only a clinician may mark it entered in error."
                )
        result.error_reason = reason[:500]
        result.error_recorded_at = djtz.now()
        result.error_recorded_by = user if getattr(user, "is_authenticated", False) else None
        result.save(update_fields=["error_reason", "error_recorded_at", "error_recorded_by"])
        events.announce_on_commit("patient.changed", patient_id=result.patient_id)
    return result
