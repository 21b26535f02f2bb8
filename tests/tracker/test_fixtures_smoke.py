from __future__ import annotations

from patients.models import ClinicMembership, Role


def test_it_gives_the_nurse_a_membership_of_the_clinic(nurse, clinic):
    assert ClinicMembership.objects.filter(user=nurse, clinic=clinic).exists()


def test_it_gives_each_role_its_own_member_of_the_clinic(nurse, clinician, clinic_admin, clinic):
    roles = dict(ClinicMembership.objects.filter(clinic=clinic).values_list("user__username", "role"))

    assert roles == {"nurse": Role.NURSE, "clinician": Role.CLINICIAN, "clinic-admin": Role.ADMIN}


def test_it_logs_each_api_client_in_as_its_role(nurse_api, clinician_api, admin_api, nurse, clinician, clinic_admin):
    for api, user in ((nurse_api, nurse), (clinician_api, clinician), (admin_api, clinic_admin)):
        response = api.get("/api/patients/")

        assert response.status_code == 200
        assert response.wsgi_request.user == user


def test_it_puts_the_other_patient_in_another_clinic(patient, other_patient):
    assert other_patient.clinic != patient.clinic
