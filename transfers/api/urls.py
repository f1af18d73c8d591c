"""The API's routes for images in and out, included ahead of the router by ``portal.api.urls``."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
