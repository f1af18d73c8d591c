from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from catalog.api.views import ApplianceViewSet, FeedViewSet
from portal.api.tokens import ApiTokenViewSet, TokenCreateView
from portal.api.views import ProjectViewSet
from provisioning.api.hosts import HostViewSet
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

urlpatterns = [
    path("auth/token/", TokenCreateView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include(router.urls)),
]
