from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from catalog.api.views import ApplianceViewSet, FeedViewSet
from notices.api import NotificationViewSet
from portal.api.docs import ApiDocsView
from portal.api.errors import api_not_found
from portal.api.policy import ProjectPolicyView
from portal.api.tokens import ApiTokenViewSet, TokenCreateView
from portal.api.views import ProjectViewSet
from provisioning.api.flavors import FlavorViewSet
from provisioning.api.hosts import HostViewSet
from provisioning.api.operations import OperationViewSet
from provisioning.api.templates import TemplateViewSet
from provisioning.api.views import StackViewSet
from provisioning.consoles.api import InstanceViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("feeds", FeedViewSet, basename="feed")
router.register("appliances", ApplianceViewSet, basename="appliance")
router.register("hosts", HostViewSet, basename="host")
router.register("stacks", StackViewSet, basename="stack")
router.register("templates", TemplateViewSet, basename="template")
router.register("instances", InstanceViewSet, basename="instance")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("operations", OperationViewSet, basename="operation")
router.register("flavors", FlavorViewSet, basename="flavor")

urlpatterns = [
    path("auth/token/", TokenCreateView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The schema as a page for people, in the portal's layout: Swagger UI from drf_spectacular_sidecar's
    # static files. The split view serves its start-up script as a file (?script), so the page has no
    # inline script for a CSP to allow. (drf-spectacular's Redoc page is left out: its template loads
    # Google's web fonts.)
    path("docs/", ApiDocsView.as_view(url_name="api:api-schema"), name="api-docs"),
    path("projects/<int:pk>/policy/", ProjectPolicyView.as_view(), name="project-policy"),
    path("projects/<int:pk>/usage/", include("usage.api_urls")),
    path("", include("transfers.api.urls")),
    # Operators' day two, ahead of the router (its stacks/{id}/ and instances/{id}/ routes).
    path("", include("provisioning.api.migration_urls")),
    path("", include("provisioning.api.evacuation_urls")),
    path("", include("provisioning.api.resize_urls")),
    path("", include("metrics.api_urls")),
    path("", include(router.urls)),
    # Any other path under the API answers in the API's error body, not with the site's HTML page.
    re_path(r"^.*/$", api_not_found),  # without the slash, Django first redirects to it (APPEND_SLASH)
]
