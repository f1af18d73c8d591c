"""Web routes for uploads, exports, captures and the projects' own VMcasts."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
