"""Monitoring listens to what the other apps announce (tracker/events.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from monitoring import evaluation, inputs, patient_sections, queue, safety
from regimens.schedule import LabContext
from tracker import events
from tracker.errors import SafetyWarning
from tracker.pages import PageSection


def _marked(warnings: list[SafetyWarning]) -> list[SafetyWarning]:
    return [replace(w, hard_stop=w.code in safety.HARD_STOP_CODES) for w in warnings]


@events.listen("regimen.starting")
def regimen_starting(**kw: Any) -> list[SafetyWarning]:
    return _marked(safety.regimen_start_warnings(**kw))


@events.listen("regimen.started")
def regimen_started(**kw: Any) -> None:
    safety.after_regimen_started(**kw)


@events.listen("regimen.stopping")
def regimen_stopping(**kw: Any) -> list[SafetyWarning]:
    return _marked(safety.regimen_stop_warnings(**kw))


@events.listen("regimen.stopped")
def regimen_stopped(**kw: Any) -> None:
    safety.after_regimen_stopped(**kw)


@events.listen("regimen.reviewed")
def regimen_reviewed(**kw: Any) -> None:
    safety.after_review_recorded(**kw)


@events.listen("dose.administering")
def dose_administering(**kw: Any) -> list[SafetyWarning]:
    return _marked(safety.administration_warnings(**kw))


@events.provide("patient.page_administration_data")
def page_administration_data(*, record: Any, regimens: list[Any]) -> patient_sections.PageAdministrationData:
    """What the warnings of the patient page's planned doses read, answered from the page's own rows (no query)."""
    return patient_sections.PageAdministrationData(record, regimens)


@events.listen("doses.administering_many")
def doses_administering_many(**kw: Any) -> list[tuple[int, SafetyWarning]]:
    """The warnings of many planned doses at once (the worklist), from a fixed number of queries."""
    return [(pk, _marked([w])[0]) for pk, w in safety.pending_warnings_many(**kw)]


@events.listen("dose.recorded")
def dose_recorded(**kw: Any) -> None:
    safety.after_dose_recorded(**kw)


@events.listen("medication.starting")
def medication_starting(**kw: Any) -> list[SafetyWarning]:
    return _marked(safety.medication_warnings(**kw))


@events.listen("medication.recorded")
def medication_recorded(**kw: Any) -> None:
    safety.after_medication_recorded(**kw)


@events.listen_in_transaction("patient.changed")
def patient_changing(*, patient_id: int) -> None:
    """A result, medication, fact or dose is being written: when a worker will run the rules, the marker that says
    so commits with the write (monitoring/queue.py)."""
    if queue.in_worker():
        queue.mark(patient_id)


@events.listen("patient.changed")
def patient_changed(*, patient_id: int) -> None:
    """A result, medication, fact or dose was committed: run the monitoring rules for the patient, here or (an API
    write with COBALT_EVALUATE_IN_WORKER) in a worker."""
    if queue.in_worker():
        queue.dispatch(patient_id)
    else:
        evaluation.evaluate_patient(patient_id)


@events.provide("lab_context")
def lab_context(*, patient: Any, t0: date | None) -> LabContext:
    return inputs.lab_context(patient, t0)


@events.listen("patient.page_sections")
def patient_page_sections(*, patient: Any, request: Any, record: Any) -> list[PageSection]:
    """The patient page's warnings and lab results (monitoring/patient_sections.py)."""
    return patient_sections.patient_sections(patient=patient, request=request, record=record)


@events.listen("patient.lab_entry_sections")
def lab_entry_sections(*, patient: Any, request: Any) -> list[PageSection]:
    """The information prompts (RULES S-7, S-14; §10 V-15) above the lab entry form (monitoring/patient_sections.py)."""
    return patient_sections.lab_entry_sections(patient=patient)


@events.provide("lab_context_loader")
def lab_context_loader(*, patients: Any) -> Any:
    """`lab_context` of many patients read in two queries (regimens' bulk re-plans)."""
    return inputs.lab_context_loader(patients)
