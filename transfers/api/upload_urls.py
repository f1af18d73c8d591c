"""The API routes of uploads (see transfers/api/urls.py)."""

urlpatterns: list = []
