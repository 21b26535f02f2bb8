"""CSV import of lab results, shared by `POST /api/lab-results/import/` and the `import_lab_results`
management command. Columns are documented in docs/lab-results.md.

Two passes: every row is parsed and checked first (the same checks as the API, from
patients/labs/services.py) and the errors are collected as {row, field, message}, row numbers as a
spreadsheet shows them (the header is row 1). Then, unless there were errors and the caller did not
ask to keep the valid rows, the rows are written with bulk inserts (10,000 rows take seconds) in
one transaction, under one import batch id; each affected patient is evaluated once after commit.
"""

from __future__ import annotations

import csv
import io
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone as djtz
from simple_history.utils import bulk_create_with_history

from patients.labs.services import PatientContext, ResultInput, build_lab_result, check_times, patient_contexts
from patients.models import Clinic, LabResult, Patient, ResultSource
from tracker import events
from tracker.clock import EARLIEST_YEAR, LATEST_YEAR, plausible_offset
from tracker.errors import ServiceError

REQUIRED_COLUMNS = ("analyte", "value", "unit", "collected_at")
PATIENT_COLUMNS = ("mrn", "patient_id")
OPTIONAL_COLUMNS = ("reported_at", "ref_low", "ref_high", "lab", "note")
KNOWN_COLUMNS = (*PATIENT_COLUMNS, *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)

# A guard against a wrong file (a whole LIS extract), not a performance limit.
MAX_ROWS = 100_000
BATCH_SIZE = 1000
PROGRESS_EVERY = 250

# progress(stage, done, total): stage is "checking" or "writing".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    import_batch: str = ""
    errors: list[RowError] = field(default_factory=list)
    # Row numbers (as `RowError.row`) that passed every check: written when `created` counts them, else
    # refused only because other rows were (the import page reports each row; the API reports errors).
    accepted_rows: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "import_batch": self.import_batch,
            "errors": [error.as_dict() for error in self.errors],
        }


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without Excel's byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ServiceError("file", f"is not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None


def read_text(data: bytes | str) -> str:
    """The file's text, refused (ServiceError "file") when it is not UTF-8 or holds a NUL character."""
    text = decode(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    nul = text.find("\x00")
    if nul >= 0:
        # PostgreSQL text cannot hold NUL: a NUL in a note or lab name was a database error (a 500).
        line = text.count("\n", 0, nul) + 1
        raise ServiceError("file", f"contains a NUL character (line {line}); a CSV file is plain text")
    return text


def _when(text: str, column: str, patient: Patient, now: datetime, end_of_day: bool) -> datetime:
    """An ISO 8601 date-time with offset, or a date. A date means the start of that day in the patient's
    time zone (for reported_at: the end of that day, or now if that is earlier)."""
    text = text.strip()
    try:
        if not text.isascii():
            raise ValueError(text)  # fromisoformat also reads full-width and Arabic-Indic digits
        if len(text) == 10:
            day = date.fromisoformat(text)
        else:
            moment = datetime.fromisoformat(text)
            if djtz.is_naive(moment):
                raise ServiceError(column, f"{text!r} has no time zone offset; write e.g. 2027-01-04T09:30:00+00:00")
            _check_plausible(column, text, moment.year)
            if not plausible_offset(moment):
                raise ServiceError(column, f"{text!r} has a time zone offset no place uses (-12:00 to +14:00)")
            return moment
    except ValueError:
        raise ServiceError(
            column, f"{text!r} is not an ISO 8601 date (2027-01-04) or date-time with offset (2027-01-04T09:30+00:00)"
        ) from None
    _check_plausible(column, text, day.year)
    if not end_of_day:
        return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(patient.timezone))
    next_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zoneinfo.ZoneInfo(patient.timezone))
    end = next_day - timedelta(seconds=1)
    return min(end, now)


def _check_plausible(column: str, text: str, year: int) -> None:
    # As the API's AwareDateTimeField: 0001-01-01 cannot be moved into a patient's zone (a 500 before).
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ServiceError(column, f"{text!r} is not a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


def _header(reader: Any) -> tuple[dict[str, int], list[RowError]]:
    try:
        names = next(reader)
    except StopIteration:
        raise ServiceError("file", "is empty: it needs a header row and one row per result") from None
    columns: dict[str, int] = {}
    errors: list[RowError] = []
    for index, raw in enumerate(names):
        name = raw.strip().casefold()
        if not name:
            continue
        if name not in KNOWN_COLUMNS:
            errors.append(RowError(1, raw, f"unknown column {raw!r}; the columns are {', '.join(KNOWN_COLUMNS)}"))
        elif name in columns:
            errors.append(RowError(1, name, f"column {name!r} appears twice"))
        else:
            columns[name] = index
    if not any(name in columns for name in PATIENT_COLUMNS):
        errors.append(RowError(1, "mrn", "a column mrn (or patient_id) is required"))
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            errors.append(RowError(1, name, f"a column {name} is required"))
    return columns, errors


@dataclass
class _Row:
    number: int
    cells: dict[str, str]


def _patients(clinic: Clinic, rows: list[_Row]) -> tuple[dict[str, Patient], dict[int, Patient]]:
    mrns = {row.cells.get("mrn", "") for row in rows} - {""}
    ids = {int(row.cells["patient_id"]) for row in rows if row.cells.get("patient_id", "").isdigit()}
    wanted = Q(pk__in=[])
    if mrns:
        wanted |= Q(mrn__in=mrns)
    if ids:
        wanted |= Q(pk__in=ids)
    found = Patient.objects.filter(clinic=clinic).filter(wanted)
    by_mrn: dict[str, Patient] = {}
    by_id: dict[int, Patient] = {}
    for patient in found:
        by_mrn[patient.mrn] = patient
        by_id[patient.pk] = patient
    return by_mrn, by_id


def _patient_for(row: _Row, clinic: Clinic, by_mrn: dict[str, Patient], by_id: dict[int, Patient]) -> Patient:
    mrn = row.cells.get("mrn", "")
    given_id = row.cells.get("patient_id", "")
    if given_id:
        if not given_id.isdigit() or int(given_id) not in by_id:
            raise ServiceError("patient_id", f"no patient {given_id!r} in {clinic.name}")
        patient = by_id[int(given_id)]
        if mrn and patient.mrn != mrn:
            raise ServiceError("mrn", f"{mrn!r} is not the MRN of patient {given_id} ({patient.mrn})")
        return patient
    if not mrn:
        raise ServiceError("mrn", "is required (or patient_id)")
    if mrn not in by_mrn:
        raise ServiceError("mrn", f"no patient with MRN {mrn!r} in {clinic.name}")
    return by_mrn[mrn]


def _check_row(
    row: _Row,
    *,
    clinic: Clinic,
    by_mrn: dict[str, Patient],
    by_id: dict[int, Patient],
    contexts: dict[int, PatientContext],
    now: datetime,
    user: Any,
    batch: str,
) -> LabResult:
    cells = row.cells
    patient = _patient_for(row, clinic, by_mrn, by_id)
    collected_at = _when(cells.get("collected_at", ""), "collected_at", patient, now, end_of_day=False)
    reported_text = cells.get("reported_at", "")
    reported_at = _when(reported_text, "reported_at", patient, now, end_of_day=True) if reported_text else None
    if reported_at is not None and len(reported_text.strip()) == 10:
        # A report date on the collection day is not "before collection" for want of a time.
        reported_at = max(reported_at, collected_at)
    problems = check_times(patient=patient, collected_at=collected_at, reported_at=reported_at, now=now)
    if problems:
        raise ServiceError(*problems[0])
    return build_lab_result(
        context=contexts[patient.pk],
        item=ResultInput(
            analyte=cells.get("analyte", ""),
            value=cells.get("value", ""),
            unit=cells.get("unit", ""),
            ref_low=cells.get("ref_low") or None,
            ref_high=cells.get("ref_high") or None,
            note=cells.get("note", ""),
        ),
        collected_at=collected_at,
        reported_at=reported_at,
        lab=cells.get("lab", ""),
        source=ResultSource.IMPORTED,
        entered_by=user,
        import_batch=batch,
    )


def import_lab_results(
    *,
    data: bytes | str,
    clinic: Clinic,
    user: Any = None,
    keep_valid: bool = False,
    progress: Progress | None = None,
    before_commit: Callable[[], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Check every row of a CSV file and write the results: all of them, or (with `keep_valid`) the
    valid ones. Raises ServiceError("file", ...) only for a file that is not a readable CSV.
    `before_commit` runs inside the write's transaction after the last row: whatever it raises undoes the
    whole write (a job uses it to check it still owns the import)."""
    text = read_text(data)
    now = now or djtz.now()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        columns, errors = _header(reader)
        rows = [
            _Row(reader.line_num, {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()})
            for cells in reader
            if any(cell.strip() for cell in cells)
        ]
    except csv.Error as exc:
        raise ServiceError("file", f"is not a readable CSV file (line {reader.line_num}: {exc})") from None
    if len(rows) > MAX_ROWS:
        raise ServiceError("file", f"has {len(rows)} rows; import at most {MAX_ROWS} at a time")
    report = ImportReport(rows=len(rows), errors=errors)
    if errors:  # the header is wrong: no row can be read reliably
        return report
    if not rows:
        report.errors.append(RowError(2, "file", "the file has a header but no results"))
        return report
    batch = uuid.uuid4().hex
    by_mrn, by_id = _patients(clinic, rows)
    contexts = patient_contexts({**by_id}.values())
    valid: list[LabResult] = []
    for done, row in enumerate(rows, start=1):
        try:
            valid.append(
                _check_row(
                    row,
                    clinic=clinic,
                    by_mrn=by_mrn,
                    by_id=by_id,
                    contexts=contexts,
                    now=now,
                    user=user,
                    batch=batch,
                )
            )
            report.accepted_rows.append(row.number)
        except ServiceError as exc:
            report.errors.append(RowError(row.number, exc.field, exc.message))
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == len(rows)):
            progress("checking", done, len(rows))
    if (report.errors and not keep_valid) or not valid:
        return report
    if progress is not None:
        # Said before the transaction: a job's progress written from here on is seen only at its commit.
        progress("writing", 0, len(valid))
    with transaction.atomic():
        for start in range(0, len(valid), BATCH_SIZE):
            chunk = valid[start : start + BATCH_SIZE]
            bulk_create_with_history(chunk, LabResult, batch_size=BATCH_SIZE, default_user=_user_or_none(user))
            if progress is not None:
                progress("writing", start + len(chunk), len(valid))
        for patient_id in sorted({result.patient_id for result in valid}):
            events.announce_on_commit("patient.changed", patient_id=patient_id)
        if before_commit is not None:
            before_commit()
    report.created = len(valid)
    report.import_batch = batch
    return report


def _user_or_none(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def clinic_for(user: Any, clinic: Clinic | None, clinic_ids: list[int]) -> Clinic:
    """The clinic whose MRNs an API import uses: the one given, or the user's only clinic."""
    if clinic is not None:
        return clinic
    if len(clinic_ids) != 1:
        raise ServiceError("clinic", "you work in more than one clinic: say which clinic's MRNs the file uses")
    return Clinic.objects.get(pk=clinic_ids[0])
