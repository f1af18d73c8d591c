from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from catalog import views as catalog_views
from portal import account_views, dashboard_views, own_account_views, policy_views, sign_in_views
from provisioning import template_views
from provisioning import views as stack_views

urlpatterns = [
    # The dashboard answers to both names: "home" is what older links and LOGIN_REDIRECT_URL use.
    path("", dashboard_views.dashboard, name="dashboard"),
    path("", dashboard_views.dashboard, name="home"),
    path("account/", own_account_views.account_page, name="account"),
    path("account/tokens/", account_views.token_list, name="account-tokens"),
    path("account/tokens/<int:pk>/revoke/", account_views.token_revoke, name="account-token-revoke"),
    path("projects/<int:pk>/members/", account_views.project_members, name="project-members"),
    path("projects/<int:pk>/members/role/", account_views.member_role, name="project-member-role"),
    path("projects/<int:pk>/members/remove/", account_views.member_remove, name="project-member-remove"),
    path("projects/<int:pk>/policy/", policy_views.project_policy, name="project-policy"),
    path("login/", sign_in_views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Ahead of the admin's own route, so its sign-in answers 429 with Retry-After too.
    path("admin/login/", sign_in_views.admin_sign_in),
    path("catalog/", catalog_views.catalog_index, name="catalog"),
    path("catalog/feeds/", catalog_views.feed_subscribe, name="feed-subscribe"),
    path("catalog/feeds/<int:pk>/", catalog_views.feed_status, name="feed-status"),
    path("catalog/feeds/<int:pk>/retry/", catalog_views.feed_retry, name="feed-retry"),
    path("catalog/feeds/<int:pk>/remove/", catalog_views.feed_remove, name="feed-remove"),
    path("catalog/appliances/<int:pk>/", catalog_views.appliance_detail, name="appliance-detail"),
    path("catalog/versions/<int:pk>/download/", catalog_views.version_image_retry, name="version-image-retry"),
    path("hosts/", stack_views.host_overview, name="host-overview"),
    path("stacks/", stack_views.stack_list, name="stack-list"),
    path("stacks/launch/", stack_views.stack_launch, name="stack-launch"),
    path("stacks/<int:pk>/", stack_views.stack_detail, name="stack-detail"),
    path("stacks/<int:pk>/status/", stack_views.stack_status, name="stack-status"),
    path("stacks/<int:pk>/lease/", stack_views.stack_renew_lease, name="stack-renew-lease"),
    path("stacks/<int:pk>/delete/", stack_views.stack_delete, name="stack-delete"),
    path("templates/", template_views.template_list, name="template-list"),
    path("templates/new/", template_views.template_create, name="template-create"),
    path("templates/<int:pk>/", template_views.template_launch, name="template-launch"),
    path("templates/<int:pk>/edit/", template_views.template_edit, name="template-edit"),
    path("templates/<int:pk>/delete/", template_views.template_delete, name="template-delete"),
    path("", include("provisioning.consoles.urls")),
    path("", include("notices.urls")),
    path("", include("usage.urls")),
    path("", include("transfers.urls")),
    path("", include("provisioning.stack_action_urls")),
    path("", include("provisioning.resize_page_urls")),
    path("", include("provisioning.host_urls")),
    path("", include("metrics.urls")),
    path("", include("metrics.page_urls")),
    path("admin/", admin.site.urls),
    # Namespaced so the router's names (stack-list, stack-detail...) never shadow the web pages'.
    path("api/v1/", include(("portal.api.urls", "api"), namespace="api")),
]

# The API answers its error body even for a failure outside DRF (see the module).
handler500 = "portal.error_views.server_error"
