"""The clinic admin's staff pages: /staff/ (the list and the invitation form) and /staff/<id>/ (role,
deactivate, reactivate). Forms parse the input; the services of patients/staff.py do the work, as for
/api/staff/."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patients.models import Role
from patients.staff import (
    admin_clinic,
    admin_clinics,
    managed_memberships,
    staff_deactivate,
    staff_invite,
    staff_of,
    staff_reactivate,
    staff_set_role,
)
from tracker.errors import ServiceError
from tracker.forms import NHSUKForm
from tracker.pages import requested_clinic_id, site_url


class InviteForm(NHSUKForm):
    email = forms.EmailField(
        label=gettext_lazy("Email address"),
        help_text=gettext_lazy("We email them a link to choose their password. It is also their username."),
    )
    first_name = forms.CharField(label=gettext_lazy("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=gettext_lazy("Last name"), required=False, max_length=150)
    role = forms.ChoiceField(label=gettext_lazy("Role in this clinic"), choices=Role.choices, widget=forms.RadioSelect)


class RoleForm(NHSUKForm):
    role = forms.ChoiceField(label=gettext_lazy("Role in this clinic"), choices=Role.choices, widget=forms.RadioSelect)


@login_required
def staff_list(request: HttpRequest) -> HttpResponse:
    clinic = admin_clinic(request.user, requested_clinic_id(request), _("manage staff"))
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = staff_invite(clinic=clinic, by=request.user, site_url=site_url(request), **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request, _("%(email)s was added and emailed a link to sign in.") % {"email": membership.user.email}
            )
            return redirect(f"{request.path}?clinic={clinic.id}")
    return render(
        request,
        "patients/staff_list.html",
        {"clinic": clinic, "clinics": admin_clinics(request.user), "staff": staff_of(clinic), "form": form},
    )


@login_required
def staff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(managed_memberships(request.user), pk=pk)
    form = RoleForm(request.POST or None, initial={"role": membership.role})
    if request.method == "POST" and form.is_valid():
        try:
            staff_set_role(membership=membership, role=form.cleaned_data["role"], by=request.user)
        except ServiceError as exc:
            form.add_error("role", exc.message)
        else:
            messages.success(request, _("The role was changed."))
            return redirect("staff-detail", pk=membership.pk)
    return render(request, "patients/staff_detail.html", {"membership": membership, "form": form})


def _act(request: HttpRequest, pk: int, service: Any, done: str) -> HttpResponse:
    membership = get_object_or_404(managed_memberships(request.user), pk=pk)
    try:
        service(membership=membership, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("staff-detail", pk=membership.pk)


@login_required
@require_POST
def staff_deactivate_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, staff_deactivate, _("The account was deactivated: they can no longer sign in."))


@login_required
@require_POST
def staff_reactivate_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, staff_reactivate, _("The account was reactivated."))
