"""This app's web pages; tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from patients import staff_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("staff/", staff_pages.staff_list, name="staff"),
    path("staff/<int:pk>/", staff_pages.staff_detail, name="staff-detail"),
    path("staff/<int:pk>/deactivate/", staff_pages.staff_deactivate_page, name="staff-deactivate"),
    path("staff/<int:pk>/reactivate/", staff_pages.staff_reactivate_page, name="staff-reactivate"),
]
