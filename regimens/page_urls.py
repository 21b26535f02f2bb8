"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from regimens import pages, protocol_pages, worklist_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("", worklist_pages.worklist, name="worklist"),
    path("worklist.csv", worklist_pages.worklist_export, name="worklist-export"),
    path("calendar/", worklist_pages.calendar, name="calendar"),
    path("calendar/export.csv", worklist_pages.calendar_export, name="calendar-export"),
    path("calendar/replan/<int:pk>/", pages.replan_job, name="replan-job"),
    path("doses/<int:pk>/", worklist_pages.dose_row, name="dose-row"),
    path("doses/<int:pk>/given/", worklist_pages.dose_given, name="dose-given"),
    path("doses/<int:pk>/appointment-time/", worklist_pages.dose_appointment_time, name="dose-appointment-time"),
    path("doses/<int:pk>/not-given/", worklist_pages.dose_not_given, name="dose-not-given"),
    path("patients/<int:patient_id>/regimens/new/", pages.regimen_start, name="regimen-start"),
    path("regimens/<int:regimen_id>/stop/", pages.regimen_stop, name="regimen-stop"),
    path("regimens/<int:regimen_id>/end-phase/", pages.regimen_end_phase, name="regimen-end-phase"),
    path("regimens/<int:regimen_id>/review/", pages.regimen_review, name="regimen-review"),
    path("regimens/<int:regimen_id>/confirm-gate/", pages.regimen_confirm_gate, name="regimen-confirm-gate"),
    path(
        "regimens/<int:regimen_id>/shorten-interval/", pages.regimen_shorten_interval, name="regimen-shorten-interval"
    ),
    path("rechecks/<int:recheck_id>/done/", pages.recheck_complete, name="recheck-complete"),
    path("rechecks/<int:recheck_id>/cancel/", pages.recheck_cancel, name="recheck-cancel"),
    path("doses/<int:dose_id>/entered-in-error/", pages.dose_entered_in_error, name="dose-entered-in-error"),
    path("staff/protocols/", protocol_pages.protocol_list, name="staff-protocols"),
    path("staff/protocols/<int:pk>/", protocol_pages.protocol_detail, name="staff-protocol"),
    path("staff/protocols/<int:pk>/copy/", protocol_pages.protocol_copy, name="staff-protocol-copy"),
    path("staff/protocols/<int:pk>/retire/", protocol_pages.protocol_retire, name="staff-protocol-retire"),
    path("staff/protocols/<int:pk>/phases/<slug:key>/", protocol_pages.protocol_phase, name="staff-protocol-phase"),
]
