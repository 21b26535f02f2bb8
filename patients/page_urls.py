"""This app's web pages (patients/pages.py, staff_pages.py, labs/pages.py); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from patients import pages, staff_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("patients/", pages.patient_search, name="patient-search"),
    path("patients/export.csv", pages.patient_export, name="patient-export"),
    path("patients/<int:patient_id>/", pages.patient_page, name="patient"),
    path("patients/<int:patient_id>/card/", pages.injection_card, name="patient-card"),
    path("staff/", staff_pages.staff_list, name="staff"),
    path("staff/<int:pk>/", staff_pages.staff_detail, name="staff-detail"),
    path("staff/<int:pk>/deactivate/", staff_pages.staff_deactivate_page, name="staff-deactivate"),
    path("staff/<int:pk>/reactivate/", staff_pages.staff_reactivate_page, name="staff-reactivate"),
    path("", include("patients.labs.page_urls")),
]
