"""Web routes of captures (see transfers/urls.py)."""

urlpatterns: list = []
