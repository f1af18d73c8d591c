"""Web routes of uploads (see transfers/urls.py)."""

urlpatterns: list = []
