from django.urls import path

from usage import views

urlpatterns = [
    path("projects/<int:pk>/usage/", views.project_usage, name="project-usage"),
]
