"""The API routes of captures and of the projects' VMcast tokens (see transfers/api/urls.py)."""

from django.urls import path

from transfers.api import capture_views as views

urlpatterns = [
    path("stacks/<int:pk>/capture/", views.StackCaptureView.as_view(), name="stack-capture"),
    path("captures/", views.CaptureListView.as_view(), name="capture-list"),
    path("captures/<int:pk>/", views.CaptureDetailView.as_view(), name="capture-detail"),
    path("projects/<int:pk>/vmcast/", views.VmcastView.as_view(), name="project-vmcast"),
    path("projects/<int:pk>/vmcast/rotate/", views.VmcastRotateView.as_view(), name="project-vmcast-rotate"),
]
