"""Web routes of exports (see transfers/urls.py)."""

urlpatterns: list = []
