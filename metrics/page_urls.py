"""Pages of what guests and hosts used: an instance's charts."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
