"""The demo's two clinics, their calendars and staff, and the superuser; each printed login is a `Login`.

Idempotent: clinics are keyed on name and users on username, so a second run finds them and changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.utils import timezone as djtz

from patients.models import Clinic, ClinicMembership, Role
from patients.services import clinic_update_calendar

# Demo-only logins, printed at the end on purpose; the command refuses to run in production.
DEMO_PASSWORD = "cobalt-demo"  # noqa: S105
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "cobalt-admin"  # noqa: S105
CLINIC_ADMIN_GROUP = "Clinic admins"


class Login(NamedTuple):
    username: str
    password: str
    role: str
    clinic: str


# England and Wales bank holidays around "today" (2025-2027); only those within a year of the
# run date are stored, so the demo calendar stays small but always has holidays to plan around.
UK_BANK_HOLIDAYS: dict[date, str] = {
    date(2025, 12, 25): "Christmas Day",
    date(2025, 12, 26): "Boxing Day",
    date(2026, 1, 1): "New Year's Day",
    date(2026, 4, 3): "Good Friday",
    date(2026, 4, 6): "Easter Monday",
    date(2026, 5, 4): "Early May bank holiday",
    date(2026, 5, 25): "Spring bank holiday",
    date(2026, 8, 31): "Summer bank holiday",
    date(2026, 12, 25): "Christmas Day",
    date(2026, 12, 28): "Boxing Day (substitute day)",
    date(2027, 1, 1): "New Year's Day",
    date(2027, 3, 26): "Good Friday",
    date(2027, 3, 29): "Easter Monday",
    date(2027, 5, 3): "Early May bank holiday",
    date(2027, 5, 31): "Spring bank holiday",
    date(2027, 8, 30): "Summer bank holiday",
    date(2027, 12, 27): "Christmas Day (substitute day)",
    date(2027, 12, 28): "Boxing Day (substitute day)",
}


@dataclass(frozen=True)
class ClinicSeed:
    name: str
    slug: str
    mrn_prefix: str
    open_weekdays: list[int]
    phone: str
    email: str
    # Christmas-only clinics close fewer days; the filter keeps the demo's two calendars distinct.
    holiday_filter: tuple[str, ...] = ()


CLINICS = [
    ClinicSeed(
        name="Riverside Haematology",
        slug="riverside",
        mrn_prefix="RVH",
        open_weekdays=[0, 1, 2, 3, 4],
        phone="+447700900100",
        email="riverside.haematology@example.org",
    ),
    ClinicSeed(
        name="Northgate Medical Centre",
        slug="northgate",
        mrn_prefix="NMC",
        open_weekdays=[0, 2, 4],
        phone="+447700900200",
        email="northgate.medical@example.org",
        holiday_filter=("Christmas", "Boxing", "New Year"),
    ),
]

# (username suffix, role) per clinic; the clinician becomes the clinic's lead.
STAFF = [
    ("nurse", Role.NURSE),
    ("nurse2", Role.NURSE),
    ("clinician", Role.CLINICIAN),
    ("admin", Role.ADMIN),
]
STAFF_NAMES = {
    "riverside": [("Grace", "Okafor"), ("Tom", "Hughes"), ("Priya", "Raman"), ("Helen", "Marsh")],
    "northgate": [("Sean", "Doyle"), ("Aisha", "Begum"), ("David", "Lindqvist"), ("Carol", "Pryce")],
}


def ensure_clinic(seed: ClinicSeed) -> Clinic:
    clinic, created = Clinic.objects.get_or_create(
        name=seed.name,
        defaults={
            "timezone": "Europe/London",
            "open_weekdays": seed.open_weekdays,
            "phone": seed.phone,
            "email": seed.email,
        },
    )
    if created:
        today = djtz.localdate()
        holidays = [
            day
            for day, note in UK_BANK_HOLIDAYS.items()
            if abs((day - today).days) <= 365 and (not seed.holiday_filter or note.startswith(seed.holiday_filter))
        ]
        # Through the service, so the calendar rule (re-plan on change) is the product's own.
        clinic_update_calendar(clinic=clinic, closed_dates=holidays)
        notes = {day: note for day, note in UK_BANK_HOLIDAYS.items() if day in holidays}
        for closed in clinic.closed_dates.all():
            closed.note = notes.get(closed.date, "")
            closed.save(update_fields=["note"])
    return clinic


def ensure_staff(seed: ClinicSeed, clinic: Clinic) -> list[Login]:
    """The clinic's staff logins (and memberships); the clinician becomes the clinic's lead."""
    user_model = get_user_model()
    group = clinic_admin_group()
    rows: list[Login] = []
    for (suffix, role), (first, last) in zip(STAFF, STAFF_NAMES[seed.slug], strict=True):
        username = f"{seed.slug}-{suffix}"
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.org"},
        )
        if created:
            user.password = demo_password_hash()
            # Clinic admins run the clinic in the web app (/dashboard/, /staff/, /audit/); the Django admin is
            # the superuser's (tracker/admin_site.py), so no demo login but `admin` gets is_staff.
            user.save()
            if role == Role.ADMIN:
                user.groups.add(group)
        ClinicMembership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
        if role == Role.CLINICIAN and clinic.lead_id is None:
            clinic.lead = user
            clinic.save(update_fields=["lead"])
        rows.append(Login(username, DEMO_PASSWORD, Role(role).label, clinic.name))
    return rows


@cache
def demo_password_hash() -> str:
    """DEMO_PASSWORD hashed once (with its own salt) for every demo login: the hasher is slow on purpose, a third of
    a second per login, and the demo's logins all share one password anyway."""
    return make_password(DEMO_PASSWORD)


def clinic_admin_group() -> Group:
    group, created = Group.objects.get_or_create(name=CLINIC_ADMIN_GROUP)
    if created:
        wanted = Permission.objects.filter(
            content_type__app_label__in=["patients", "regimens", "notifications"],
            codename__regex=r"^(view|change|add)_",
        ).exclude(content_type__model__startswith="historical")
        group.permissions.set(wanted)
    return group


def ensure_superuser() -> Login:
    user_model = get_user_model()
    if not user_model.objects.filter(username=ADMIN_USERNAME).exists():
        user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.org", ADMIN_PASSWORD)
    return Login(ADMIN_USERNAME, ADMIN_PASSWORD, "Superuser (Django admin)", "all clinics")


def staff_of(clinic: Clinic) -> dict[str, list[Any]]:
    """The clinic's users by role, oldest membership first."""
    staff: dict[str, list[Any]] = {role: [] for role in Role.values}
    for membership in ClinicMembership.objects.filter(clinic=clinic).select_related("user").order_by("id"):
        staff[membership.role].append(membership.user)
    return staff
