"""A clinic's own protocols (issue 12): shared protocols (built-in or a superuser's, `clinic` empty) are changed
by superusers only, in the Django admin; a clinic admin copies one for their clinic and localises the copy's
phases within the bounds the shared protocol set, or retires the copy. The API (regimens/views.py) and the
/staff/protocols/ pages (regimens/protocol_pages.py) call these same functions.

A regimen keeps its snapshot of the protocol it started on (copy or shared), so none of this changes a
running regimen. Who and why are on the rows' history (django-simple-history).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.text import slugify

from patients.models import Clinic
from regimens.models import Protocol, ProtocolPhase, ProtocolRecheckStep
from tracker.errors import ServiceError
from tracker.permissions import CLINIC_ADMINS, has_role

# The phase fields a clinic may localise on its copy. Everything else (drug, route, spacing rule, end
# condition, gate, the ranges themselves, the cited rule) stays as the shared protocol has it.
LOCAL_PHASE_FIELDS = ("dose_mcg", "spacing_value", "end_value", "review_every_days", "prompt")
# The bounds each number is checked against: (field, lower bound field, upper bound field).
BOUNDED = (
    ("dose_mcg", "dose_min_mcg", "dose_max_mcg"),
    ("spacing_value", "spacing_min", "spacing_max"),
    ("end_value", "end_min", "end_max"),
)
PROMPT_MAX_LENGTH = 2000
CODE_MAX_LENGTH = Protocol._meta.get_field("code").max_length or 60
NAME_MAX_LENGTH = Protocol._meta.get_field("name").max_length or 200


class PhaseErrors(ServiceError):
    """Every field of a phase edit that was refused, each with its reason (one 400 names them all)."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(field, message)
        self.errors = errors

    def as_dict(self) -> dict[str, object]:
        return {name: [message] for name, message in self.errors.items()}


def require_clinic_admin(by: Any, clinic_id: int, doing: str) -> None:
    if not has_role(by, clinic_id, CLINIC_ADMINS):
        raise PermissionDenied(f"Only a clinic admin of this clinic may {doing}.")


def require_own_copy(protocol: Protocol, by: Any, doing: str) -> None:
    if protocol.clinic_id is None:
        raise PermissionDenied(
            f"'{protocol.code}' is shared by every clinic: only a superuser changes it. Make your clinic's copy "
            "and change that."
        )
    require_clinic_admin(by, protocol.clinic_id, doing)


def _copy_code(protocol: Protocol, clinic: Clinic) -> str:
    """`<code>-<clinic>`, with -2, -3 ... when the clinic copies the same protocol again."""
    tail = slugify(clinic.name)[:24].strip("-") or f"clinic-{clinic.pk}"
    base = f"{protocol.code}-{tail}"[: CODE_MAX_LENGTH - 4].strip("-")
    code, number = base, 1
    while Protocol.objects.filter(code=code).exists():
        number += 1
        code = f"{base}-{number}"
    return code


def _stamp(row: Any, by: Any, reason: str) -> None:
    """Who and why, for the history row the next save writes."""
    row._history_user = by if getattr(by, "is_authenticated", False) else None
    row._change_reason = reason[:100]


@transaction.atomic
def protocol_copy(*, protocol: Protocol, clinic: Clinic, by: Any, name: str = "", reason: str = "") -> Protocol:
    """Make `clinic`'s own copy of the shared `protocol`: the same phases (with their ranges) and recheck steps,
    a new code (`<code>-<clinic>`) and name, not built in, active. Only a clinic admin of `clinic` may."""
    require_clinic_admin(by, clinic.pk, "copy a protocol")
    # Locked: two copies of one protocol made at once get -2 and -3, not the same code (a unique violation).
    protocol = Protocol.objects.select_for_update().get(pk=protocol.pk)
    if protocol.clinic_id is not None:
        raise ServiceError("protocol", "only a shared protocol can be copied; change your clinic's copy instead")
    if not protocol.active:
        raise ServiceError("protocol", f"protocol '{protocol.code}' is retired")
    name = (name or "").strip() or f"{protocol.name} ({clinic.name})"
    if len(name) > NAME_MAX_LENGTH:
        raise ServiceError("name", f"at most {NAME_MAX_LENGTH} characters")
    why = (reason or "").strip() or f"copied from {protocol.code} for {clinic.name}"
    copy = Protocol(
        code=_copy_code(protocol, clinic),
        name=name,
        description=protocol.description,
        rules=protocol.rules,
        source=protocol.source,
        is_builtin=False,
        active=True,
        clinic=clinic,
        copied_from=protocol,
    )
    _stamp(copy, by, why)
    copy.save()
    skip = {"id", "protocol"}
    for phase in protocol.phases.order_by("order"):
        values = {f.name: getattr(phase, f.name) for f in ProtocolPhase._meta.concrete_fields if f.name not in skip}
        row = ProtocolPhase(protocol=copy, **values)
        _stamp(row, by, why)
        row.save()
    for step in protocol.recheck_steps.order_by("day", "id"):
        values = {
            f.name: getattr(step, f.name) for f in ProtocolRecheckStep._meta.concrete_fields if f.name not in skip
        }
        step_row = ProtocolRecheckStep(protocol=copy, **values)
        _stamp(step_row, by, why)
        step_row.save()
    return copy


def _check_number(phase: ProtocolPhase, name: str, low_name: str, high_name: str, value: Any) -> str | None:
    """Why `value` cannot be the copy's `name`, or None: within the phase's own range (bounds copied as they
    were), and where the phase gives no range, only the value it has."""
    current = getattr(phase, name)
    if value == current:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return "must be a whole number of at least 1"
    low, high = getattr(phase, low_name), getattr(phase, high_name)
    if low is None and high is None:
        return f"this phase gives no range for it, so it stays {current}; a superuser sets the ranges"
    if (low is not None and value < low) or (high is not None and value > high):
        shown = f"{low if low is not None else 1}–{high}" if high is not None else f"at least {low}"
        return f"must be within the phase's range: {shown}"
    return None


def _review_limit() -> int:
    # RULES §1.3 rule 3: a neurological loading phase with no review within 21 days escalates (MEDIUM); a review
    # interval longer than that setting would always escalate before the first prompt.
    return int(settings.COBALT["NEURO_REVIEW_MEDIUM_AFTER_DAYS"])


def _check_review(phase: ProtocolPhase, value: Any) -> str | None:
    current = phase.review_every_days
    if value == current:
        return None
    if current is None:
        return "this phase has no review prompt; a clinic's copy cannot add one"
    limit = _review_limit()
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        # A review prompt cannot be removed either: it is what makes the phase the §1.3 neurological loading phase.
        return f"must be a whole number of days from 1 to {limit} (RULES §1.3: a review is due within {limit} days)"
    return None


def _check_prompt(phase: ProtocolPhase, value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value) > PROMPT_MAX_LENGTH:
        return f"at most {PROMPT_MAX_LENGTH} characters"
    if phase.prompt.strip() and not value.strip():
        # RULES §1.3 rule 4 (the neurological loading phase's specialist advice) and the like: say it differently,
        # never not at all.
        return "this phase's prompt can be reworded but not removed"
    return None


@transaction.atomic
def protocol_phase_update(*, phase: ProtocolPhase, by: Any, reason: str = "", **changes: Any) -> ProtocolPhase:
    """Localise a phase of a clinic's own copy: dose, spacing number and end value within the phase's ranges
    (which stay as copied), the review interval, the prompt. Every field refused is named with its reason and
    nothing is written then. Only a clinic admin of the copy's clinic may; a shared protocol never changes here."""
    phase = ProtocolPhase.objects.select_for_update().select_related("protocol").get(pk=phase.pk)
    require_own_copy(phase.protocol, by, "change a protocol")
    unknown = sorted(set(changes) - set(LOCAL_PHASE_FIELDS))
    if unknown:
        raise PhaseErrors({name: "a clinic cannot change this field of a protocol" for name in unknown})
    if not changes:
        raise ServiceError("detail", f"change at least one of: {', '.join(LOCAL_PHASE_FIELDS)}")
    errors: dict[str, str] = {}
    for name, low, high in BOUNDED:
        if name in changes:
            problem = _check_number(phase, name, low, high, changes[name])
            if problem:
                errors[name] = problem
    if "review_every_days" in changes:
        problem = _check_review(phase, changes["review_every_days"])
        if problem:
            errors["review_every_days"] = problem
    if "prompt" in changes:
        problem = _check_prompt(phase, changes["prompt"])
        if problem:
            errors["prompt"] = problem
    if errors:
        raise PhaseErrors(errors)
    changed = [name for name, value in changes.items() if getattr(phase, name) != value]
    if changed:
        for name in changed:
            setattr(phase, name, changes[name])
        _stamp(phase, by, (reason or "").strip() or f"localised by {phase.protocol.clinic}")
        phase.save(update_fields=changed)
    return phase


@transaction.atomic
def protocol_retire(*, protocol: Protocol, by: Any, reason: str = "") -> Protocol:
    """Retire a clinic's own copy: no new regimen starts on it; the regimens running on it keep their snapshot.
    Retiring a retired copy changes nothing."""
    protocol = Protocol.objects.select_for_update().get(pk=protocol.pk)
    require_own_copy(protocol, by, "retire a protocol")
    if protocol.active:
        protocol.active = False
        _stamp(protocol, by, (reason or "").strip() or "retired")
        protocol.save(update_fields=["active"])
    return protocol
