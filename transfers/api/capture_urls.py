"""The API routes of captures (see transfers/api/urls.py)."""

urlpatterns: list = []
