"""Pages of what guests and hosts used: an instance's charts."""

from django.urls import path

from metrics import views

urlpatterns = [
    path("instances/<int:pk>/", views.instance_detail, name="instance-detail"),
]
