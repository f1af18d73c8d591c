"""Web routes of uploads (see transfers/urls.py)."""

from django.urls import path

from transfers import upload_views

urlpatterns = [
    path("catalog/upload/", upload_views.upload_new, name="upload-new"),
    path("catalog/upload/<uuid:pk>/delete/", upload_views.upload_delete, name="upload-delete"),
]
