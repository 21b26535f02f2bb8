"""A clinic's staff, as its clinic admins run it: which clinic an admin acts on, invitations, roles,
deactivation (services), and the staff list (selector). The API (patients/staff_views.py) and the
/staff/ page (patients/pages.py) call these same functions.

A clinic admin acts only on memberships of the clinics where they are an admin, and never touches the
Django flags `is_superuser` and `is_staff` (the Django admin stays a tool for superusers).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from patients.models import Clinic, ClinicMembership, Role, StaffEvent, StaffEventKind
from tracker.authentication import token_revoke_all
from tracker.errors import ServiceError


def admin_clinics(user: Any) -> list[Clinic]:
    """The clinics where `user` is a clinic admin, by name."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Clinic.objects.filter(memberships__user=user, memberships__role=Role.ADMIN).order_by("name"))


def admin_clinic(user: Any, clinic_id: int | None, doing: str) -> Clinic:
    """The clinic `clinic_id` (default: the user's first clinic as an admin) if `user` is its admin.
    Another clinic's id is a 404, as another clinic's patient is; staff who are not its admin get 403."""
    memberships = {
        m.clinic_id: m
        for m in ClinicMembership.objects.filter(user=user).select_related("clinic").order_by("clinic__name")
    }
    if clinic_id is None:
        admin_of = [m for m in memberships.values() if m.role == Role.ADMIN]
        if not admin_of:
            raise PermissionDenied(f"Only a clinic admin may {doing}.")
        return admin_of[0].clinic
    membership = memberships.get(clinic_id)
    if membership is None:
        raise Http404("No such clinic.")
    if membership.role != Role.ADMIN:
        raise PermissionDenied(f"Only a clinic admin of this clinic may {doing}.")
    return membership.clinic


# --- The staff list (selector) --------------------------------------------------------------------------


def staff_of(clinic: Clinic) -> QuerySet[ClinicMembership]:
    """The clinic's staff memberships with their users, by name."""
    return (
        ClinicMembership.objects.filter(clinic=clinic)
        .select_related("user", "clinic")
        .order_by("user__last_name", "user__first_name", "user__username", "id")
    )


def managed_memberships(user: Any) -> QuerySet[ClinicMembership]:
    """The memberships `user` may act on: those of the clinics where they are a clinic admin."""
    return ClinicMembership.objects.filter(
        clinic__in=Clinic.objects.filter(memberships__user=user, memberships__role=Role.ADMIN)
    ).select_related("user", "clinic")


# --- Services ---------------------------------------------------------------------------------------------


def _record(kind: str, *, by: Any, membership: ClinicMembership, **details: Any) -> None:
    """The audit log's row of a staff change (patients.StaffEvent), in the change's transaction."""
    StaffEvent.objects.create(
        at=timezone.now(),
        kind=kind,
        actor=by,
        subject=membership.user,
        username=membership.user.get_username(),
        clinic=membership.clinic,
        details=details,
    )


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ServiceError("role", f'"{role}" is not a valid choice; use one of: {", ".join(Role.values)}.')


def _check_admin_of(by: Any, clinic: Clinic, doing: str) -> None:
    if not ClinicMembership.objects.filter(user=by, clinic=clinic, role=Role.ADMIN).exists():
        raise PermissionDenied(f"Only a clinic admin of this clinic may {doing}.")


def _check_not_privileged(user: Any) -> None:
    # The Django admin's accounts (superusers, staff) are run by superusers, not by clinic admins.
    if user.is_superuser or user.is_staff:
        raise PermissionDenied("This account is a Django administrator's; only a superuser may change it.")


@transaction.atomic
def staff_invite(
    *, clinic: Clinic, email: str, role: str, by: Any, site_url: str, first_name: str = "", last_name: str = ""
) -> ClinicMembership:
    """Add the person with `email` to the clinic's staff with `role` and email them a link.

    Someone new gets an account (username: the email) without a password; the link in the email sets
    it, through Django's password-reset token (tracker/pages.py ResetConfirmView), and works once, for
    PASSWORD_RESET_TIMEOUT. Someone who already has an account (in another clinic) is added to this
    clinic and told so. Nothing changes on the account's Django flags (superuser, staff)."""
    _check_admin_of(by, clinic, "invite staff")
    _check_role(role)
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ServiceError("email", "enter an email address, like name@example.org.") from exc
    User = get_user_model()  # noqa: N806
    user = User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("id").first()
    if user is not None and ClinicMembership.objects.filter(user=user, clinic=clinic).exists():
        raise ServiceError("email", "this person already works in this clinic.")
    new = user is None
    if user is None:
        user = User(username=email.lower(), email=email, first_name=first_name.strip(), last_name=last_name.strip())
        user.set_unusable_password()
        user.save()
    membership = ClinicMembership.objects.create(user=user, clinic=clinic, role=role)
    _record(StaffEventKind.INVITED, by=by, membership=membership, role=role, email=email, new_account=new)
    transaction.on_commit(lambda: _send_invitation(user, clinic, role, site_url, new))
    return membership


def invitation_link(user: Any, site_url: str) -> str:
    """The link that sets the password: the password-reset confirmation page, with a one-use token."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return f"{site_url}{reverse('password_reset_confirm', kwargs={'uidb64': uid, 'token': token})}"


def _send_invitation(user: Any, clinic: Clinic, role: str, site_url: str, new: bool) -> None:
    context = {
        "user": user,
        "clinic": clinic,
        "role": Role(role).label,
        "new": new,
        "link": invitation_link(user, site_url) if new else f"{site_url}{reverse('login')}",
    }
    subject = render_to_string("patients/staff_invitation_subject.txt", context).strip()
    body = render_to_string("patients/staff_invitation_email.txt", context)
    send_mail(subject, body, None, [user.email])


@transaction.atomic
def staff_set_role(*, membership: ClinicMembership, role: str, by: Any) -> ClinicMembership:
    """Change the person's role in this clinic (nurse, clinician, clinic admin). The clinic always
    keeps at least one clinic admin."""
    _check_role(role)
    membership = ClinicMembership.objects.select_for_update().select_related("user", "clinic").get(pk=membership.pk)
    _check_admin_of(by, membership.clinic, "change a role")
    _check_not_privileged(membership.user)
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(membership)
    if membership.role != role:
        _record(StaffEventKind.ROLE_CHANGED, by=by, membership=membership, role={"from": membership.role, "to": role})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def _keep_an_admin(leaving: ClinicMembership) -> None:
    others = ClinicMembership.objects.filter(clinic=leaving.clinic, role=Role.ADMIN, user__is_active=True).exclude(
        pk=leaving.pk
    )
    if not others.exists():
        raise ServiceError("role", "the clinic must keep at least one active clinic admin.")


@transaction.atomic
def staff_deactivate(*, membership: ClinicMembership, by: Any) -> ClinicMembership:
    """Stop the person's access now: their account is deactivated (no sign-in; open sessions end on
    their next request, as Django refuses an inactive user) and their API tokens are deleted, so a
    token stops working at once. The membership stays, so the staff list and the audit log still
    show them; `staff_reactivate` undoes it.

    An account that also works in a clinic this admin does not run is left alone (another clinic's
    staff): a superuser deactivates it."""
    membership = ClinicMembership.objects.select_for_update().select_related("user", "clinic").get(pk=membership.pk)
    _check_admin_of(by, membership.clinic, "deactivate staff")
    user = membership.user
    _check_not_privileged(user)
    if user.pk == by.pk:
        raise ServiceError("user", "you cannot deactivate your own account.")
    elsewhere = ClinicMembership.objects.filter(user=user).exclude(
        clinic__in=Clinic.objects.filter(memberships__user=by, memberships__role=Role.ADMIN)
    )
    if elsewhere.exists():
        raise PermissionDenied("This person also works in another clinic; only a superuser may deactivate them.")
    if membership.role == Role.ADMIN:
        _keep_an_admin(membership)
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        _record(StaffEventKind.DEACTIVATED, by=by, membership=membership)
    token_revoke_all(user.pk)
    return membership


@transaction.atomic
def staff_reactivate(*, membership: ClinicMembership, by: Any) -> ClinicMembership:
    """Let a deactivated person sign in again (with their password; a new API token is theirs to ask for)."""
    membership = ClinicMembership.objects.select_for_update().select_related("user", "clinic").get(pk=membership.pk)
    _check_admin_of(by, membership.clinic, "reactivate staff")
    _check_not_privileged(membership.user)
    if not membership.user.is_active:
        membership.user.is_active = True
        membership.user.save(update_fields=["is_active"])
        _record(StaffEventKind.REACTIVATED, by=by, membership=membership)
    return membership
