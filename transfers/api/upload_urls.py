"""The API routes of uploads (see transfers/api/urls.py): the tus endpoint and one upload's address."""

from django.urls import path

from transfers.api.upload_views import UploadDetailView, UploadListView

urlpatterns = [
    path("uploads/", UploadListView.as_view(), name="upload-list"),
    path("uploads/<uuid:pk>/", UploadDetailView.as_view(), name="upload-detail"),
]
