"""The stack page's resize form (POST only), included at the site's root by ``portal.urls``."""

from django.urls import path

from provisioning import resize_views

urlpatterns = [path("stacks/<int:pk>/resize/", resize_views.stack_resize, name="stack-resize")]
