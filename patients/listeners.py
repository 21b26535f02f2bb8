"""Sign-ins and failed sign-ins, recorded for the audit log (patients.StaffEvent), and the patient id range
the sweeps shard by (tracker/sweeps.py). Connected in PatientsConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Max, Min
from django.dispatch import receiver
from django.utils import timezone

from patients.models import Patient, StaffEvent, StaffEventKind
from tracker import events


def _ip(request: Any) -> str | None:
    return getattr(request, "META", {}).get("REMOTE_ADDR") or None


@receiver(user_logged_in, dispatch_uid="cobalt-audit-signed-in")
def signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    StaffEvent.objects.create(
        at=timezone.now(),
        kind=StaffEventKind.SIGNED_IN,
        actor=user,
        subject=user,
        username=user.get_username(),
        ip_address=_ip(request),
    )


@receiver(user_login_failed, dispatch_uid="cobalt-audit-sign-in-failed")
def sign_in_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # `credentials` has the password already masked by Django; only the username is kept.
    username = str(credentials.get("username") or "")[:150]
    User = get_user_model()  # noqa: N806
    StaffEvent.objects.create(
        at=timezone.now(),
        kind=StaffEventKind.SIGN_IN_FAILED,
        subject=User.objects.filter(username=username).first() if username else None,
        username=username,
        ip_address=_ip(request),
    )


@events.provide("patients.id_range")
def patient_id_range() -> tuple[int, int] | None:
    """(lowest, highest) patient id, None without patients: the sweeps cut their shards from it (one query)."""
    bounds = Patient.objects.aggregate(lo=Min("id"), hi=Max("id"))
    return None if bounds["lo"] is None else (int(bounds["lo"]), int(bounds["hi"]))
