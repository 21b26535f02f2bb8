"""The patient's calendar feed (regimens/ical.py): not a staff page, no login; the token is the key."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from regimens import ical

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^ical/(?P<token>[^/]+)\.ics$", ical.feed, name="ical-feed"),
]
