from django.urls import path, re_path

from notices import views

urlpatterns = [
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
    path("notifications/read-all/", views.notification_read_all, name="notification-read-all"),
    path("notifications/badge/", views.unread_badge, name="notification-badge"),
    # 32 random bytes, URL-safe base64 without padding (secrets.token_urlsafe(32)): 43 characters.
    re_path(r"^extend/(?P<secret>[A-Za-z0-9_-]{43})/$", views.extend_link, name="extend-link"),
]
