"""The API routes of exports (see transfers/api/urls.py)."""

urlpatterns: list = []
