from __future__ import annotations

from patients.models import ClinicMembership


def test_it_gives_the_nurse_a_membership_of_the_clinic(nurse, clinic):
    assert ClinicMembership.objects.filter(user=nurse, clinic=clinic).exists()
