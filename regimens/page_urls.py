"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from regimens import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("", pages.worklist, name="worklist"),
    path("worklist.csv", pages.worklist_export, name="worklist-export"),
    path("calendar/", pages.calendar, name="calendar"),
    path("calendar/export.csv", pages.calendar_export, name="calendar-export"),
    path("doses/<int:pk>/", pages.dose_row, name="dose-row"),
    path("doses/<int:pk>/given/", pages.dose_given, name="dose-given"),
    path("doses/<int:pk>/not-given/", pages.dose_not_given, name="dose-not-given"),
]
