"""The portal's routes plus a plain Django view under /api/ that fails (for tests/portal/test_error_pages.py)."""

from tests.portal.test_error_pages import api_urlpatterns as urlpatterns

handler500 = "portal.error_views.server_error"

__all__ = ["handler500", "urlpatterns"]
