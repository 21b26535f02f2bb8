"""Regimens listen to what patients announce (tracker/events.py)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from patients.models import Clinic, Patient
from regimens import jobs, pages
from regimens.models import ReplanJob, ScheduledDose
from regimens.services.planning import replan_regimens
from tracker import events
from tracker.pages import CardEntry, PageSection


@events.provide("clinic.calendar_changed")
def replan_clinic(*, clinic: Clinic, user: Any = None, background: bool = True) -> ReplanJob | None:
    """A clinic's calendar changed (inside its transaction): re-plan the planned doses of its active regimens, at
    once, or (more than COBALT_CALENDAR_SYNC_MAX_REGIMENS of them, and `background`) by a Celery job in batches
    (regimens/jobs.py), which is returned."""
    ids = list(jobs.clinic_regimens(clinic.pk).values_list("pk", flat=True))
    cause = f"clinic calendar changed ({clinic.name})"
    if background and len(ids) > jobs.sync_max_regimens():
        return jobs.replan_job_create(clinic=clinic, cause=cause, total=len(ids), user=user)
    replan_regimens(ids, cause=cause)
    return None


@receiver(post_save, sender=Patient)
def move_doses_with_patient(*, instance: Patient, created: bool, **kwargs: Any) -> None:
    """Keep ScheduledDose.clinic (denormalised for the worklist) equal to the patient's clinic: a patient moved
    to another clinic takes their doses along, in the same transaction (one UPDATE; none when nothing moved)."""
    fields = kwargs.get("update_fields")
    if created or kwargs.get("raw") or (fields is not None and "clinic" not in fields):
        return
    ScheduledDose.objects.filter(patient_id=instance.pk).exclude(clinic_id=instance.clinic_id).update(
        clinic_id=instance.clinic_id
    )


@events.listen("patient.page_sections")
def patient_page_sections(*, patient: Any, request: Any, record: Any) -> list[PageSection]:
    """The patient page's regimen timeline, rechecks and clinician actions (regimens/pages.py)."""
    return pages.patient_section(patient=patient, request=request, record=record)


@events.listen("patient.card_entries")
def patient_card_entries(*, patient: Any) -> list[CardEntry]:
    """The next clinic appointments and blood tests on the patient's injection card."""
    return pages.card_entries(patient=patient)
