"""The clinic admin's protocol pages (issue 12): /staff/protocols/ lists the shared protocols and the clinic's own
copies, with "Make a copy"; /staff/protocols/<id>/ shows one (a copy: retire it); /staff/protocols/<id>/phases/<key>/
localises a phase of a copy. Forms parse the input; regimens/services/protocols.py does the work, as for
/api/protocols/. Another clinic's copy is a 404, like a protocol that does not exist.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from patients.staff import admin_clinic, admin_clinics
from regimens import services
from regimens.models import Protocol, ProtocolPhase
from regimens.selectors import protocols_for, protocols_for_clinics
from regimens.services.protocols import PROMPT_MAX_LENGTH, PhaseErrors, require_clinic_admin, require_own_copy
from tracker.errors import ServiceError
from tracker.forms import NHSUKForm
from tracker.pages import requested_clinic_id, staff_page


def _visible(request: HttpRequest, pk: int) -> Protocol:
    protocol: Protocol = get_object_or_404(protocols_for(request.user).select_related("clinic"), pk=pk)
    return protocol


@staff_page
def protocol_list(request: HttpRequest) -> HttpResponse:
    clinic = admin_clinic(request.user, requested_clinic_id(request), gettext_now("manage protocols"))
    protocols = list(protocols_for_clinics([clinic.pk]).order_by("name"))
    return render(
        request,
        "regimens/protocols.html",
        {
            "clinic": clinic,
            "clinics": admin_clinics(request.user),
            "shared": [p for p in protocols if p.clinic_id is None],
            "own": [p for p in protocols if p.clinic_id is not None],
        },
    )


@staff_page
@require_POST
def protocol_copy(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = _visible(request, pk)
    clinic = admin_clinic(request.user, requested_clinic_id(request), gettext_now("copy a protocol"))
    try:
        copy = services.protocol_copy(protocol=protocol, clinic=clinic, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(f"{reverse('staff-protocols')}?clinic={clinic.pk}")
    done = gettext_now("%(name)s was copied for %(clinic)s. Its staff can start regimens on it now.")
    messages.success(request, done % {"name": protocol.name, "clinic": clinic.name})
    return redirect("staff-protocol", pk=copy.pk)


@staff_page
def protocol_detail(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = _visible(request, pk)
    clinic = protocol.clinic
    if clinic is None:
        # A shared protocol: any clinic admin may read it here (and copy it).
        clinic = admin_clinic(request.user, requested_clinic_id(request), gettext_now("manage protocols"))
    else:
        require_clinic_admin(request.user, clinic.pk, gettext_now("manage protocols"))
    return render(
        request,
        "regimens/protocol_detail.html",
        {"protocol": protocol, "clinic": clinic, "own": protocol.clinic_id is not None},
    )


@staff_page
@require_POST
def protocol_retire(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = _visible(request, pk)
    services.protocol_retire(protocol=protocol, by=request.user)
    messages.success(request, gettext_now("The protocol was retired: no new regimen starts on it."))
    return redirect("staff-protocol", pk=protocol.pk)


class PhaseForm(NHSUKForm):
    """The fields a clinic may localise on a phase of its copy; a number shows only where the phase gives a
    range for it (otherwise it stays as the shared protocol has it)."""

    dose_mcg = forms.IntegerField(
        label=_("Dose (mcg)"), min_value=1, widget=forms.NumberInput(attrs={"data-width": "5"})
    )
    spacing_value = forms.IntegerField(
        label=_("Spacing number"), min_value=1, widget=forms.NumberInput(attrs={"data-width": "4"})
    )
    end_value = forms.IntegerField(
        label=_("Ends after (doses or days)"), min_value=1, widget=forms.NumberInput(attrs={"data-width": "4"})
    )
    review_every_days = forms.IntegerField(
        label=_("Review prompt every (days)"), min_value=1, widget=forms.NumberInput(attrs={"data-width": "4"})
    )
    prompt = forms.CharField(
        label=_("Prompt shown to staff when the phase starts"),
        required=False,
        max_length=PROMPT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reason = forms.CharField(label=_("Why (kept in the protocol's history)"), required=False, max_length=100)

    def __init__(self, *args: Any, phase: ProtocolPhase, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ranges = {
            "dose_mcg": (phase.dose_min_mcg, phase.dose_max_mcg),
            "spacing_value": (phase.spacing_min, phase.spacing_max),
            "end_value": (phase.end_min, phase.end_max),
        }
        for name, (low, high) in ranges.items():
            if low is None and high is None:
                del self.fields[name]
                continue
            self.fields[name].help_text = gettext_now("From %(low)s to %(high)s (the phase's range).") % {
                "low": low if low is not None else 1,
                "high": high if high is not None else "…",
            }
        if phase.review_every_days is None:
            del self.fields["review_every_days"]
        for name in self.fields:
            if name != "reason":
                self.fields[name].initial = getattr(phase, name)

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if name != "reason"}


@staff_page
def protocol_phase(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    protocol = _visible(request, pk)
    phase = get_object_or_404(ProtocolPhase, protocol=protocol, key=key)
    # Only a clinic admin of the copy's clinic sees the form; a shared protocol is never changed here (403).
    require_own_copy(protocol, request.user, gettext_now("change a protocol"))
    form = PhaseForm(request.POST if request.method == "POST" else None, phase=phase)
    if request.method == "POST" and form.is_valid():
        try:
            services.protocol_phase_update(
                phase=phase, by=request.user, reason=form.cleaned_data["reason"], **form.changes()
            )
        except PhaseErrors as exc:
            for name, message in exc.errors.items():
                form.add_error(name if name in form.fields else None, message)
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, gettext_now("The phase was changed. Regimens already running keep theirs."))
            return redirect("staff-protocol", pk=protocol.pk)
    return render(request, "regimens/protocol_phase.html", {"protocol": protocol, "phase": phase, "form": form})
