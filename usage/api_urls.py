"""The usage API's route, included under ``projects/<int:pk>/usage/`` by ``portal.api.urls``."""

from django.urls import path

from usage.api import ProjectUsageView

urlpatterns = [path("", ProjectUsageView.as_view(), name="project-usage")]
