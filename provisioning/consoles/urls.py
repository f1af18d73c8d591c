"""Routes of the console pages; ``portal.urls`` includes them at the root."""

from django.urls import path

from provisioning.consoles import views

urlpatterns = [
    path("instances/<int:pk>/screen/", views.instance_screen, name="instance-screen"),
    path("instances/<int:pk>/serial/", views.instance_serial, name="instance-serial"),
]
