"""Web routes of captures and of the projects' own VMcasts (see transfers/urls.py)."""

from django.urls import path

from transfers import capture_views, vmcast_views

urlpatterns = [
    path("stacks/<int:pk>/capture/", capture_views.stack_capture, name="stack-capture"),
    path("vmcast/<int:project_id>/<str:token>/feed.xml", vmcast_views.vmcast_feed, name="vmcast-feed"),
    path(
        "vmcast/<int:project_id>/<str:token>/images/<int:version_id>.qcow2",
        vmcast_views.vmcast_image,
        name="vmcast-image",
    ),
]
