"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

from datetime import date

import factory
from django.contrib.auth import get_user_model

from patients.models import Clinic, ClinicMembership, Patient, Role


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    timezone = "Europe/London"
    open_weekdays = factory.LazyFunction(lambda: [0, 1, 2, 3, 4])


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


def staff_user(clinic: Clinic, role: str = Role.NURSE, username: str | None = None) -> object:
    """A user who works in `clinic` with `role`."""
    user = UserFactory(username=username) if username else UserFactory()
    ClinicMembership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
    return user


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = date(1960, 5, 17)
    sex = "female"
    email = factory.LazyAttribute(lambda p: f"{p.mrn.lower()}@example.org")
    phone = "+447700900123"
    timezone = "Europe/London"
    deficiency_cause = "pernicious_anemia"
    reminder_channel = "email"
