"""Settings for the portal, read from the environment (see portal/env.py for the helpers).

With nothing set, the portal runs on embedded defaults: SQLite, the django-q2 ORM broker and
the in-memory channel layer. Set DATABASE_URL and REDIS_URL for PostgreSQL and Redis.
"""

from __future__ import annotations

from pathlib import Path

from portal.env import (
    database_from_url,
    env_bool,
    env_endpoint_host,
    env_int,
    env_list,
    env_matching,
    env_network,
    env_path,
    env_str,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("PORTAL_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)
# A development key is only acceptable when DEBUG is on; production must set its own.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-insecure-key-change-me" if DEBUG else None)
# This portal's name on everything it shares with other portals: libvirt objects on a host, task
# queues in a broker, cache keys and channel groups in a Redis. Its shape is what keeps names
# unambiguous between deployments (see provisioning.naming).
DEPLOYMENT_NAME = env_matching(
    "PORTAL_DEPLOYMENT",
    "portal",
    pattern=r"(?=.{1,16}$)[a-z0-9]+(-[a-z0-9]+)*",
    explain="at most 16 lowercase letters and digits, with single '-' between them",
)
# Not "localhost" by default: that is where stack endpoints are published (ENDPOINT_HOST below).
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Published guest ports are content a tenant controls: they live on a host name of their own, never
# one the portal answers to, or a tenant's page could read the portal's cookies and open its
# websockets as its users. Empty: each host's public address (then none may be a portal host name).
# An IPv4 address here is also what the ports are bound to (one host, e.g. 127.0.0.2 on a laptop).
ENDPOINT_HOST = env_endpoint_host("PORTAL_ENDPOINT_HOST", "localhost", portal_hosts=ALLOWED_HOSTS)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI for /api/v1/docs/, served from our static files, not a CDN
    "django_q",
    "channels",
    "portal",
    "catalog",
    "provisioning",
    "notices",
    "usage",
    "transfers",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.web_errors.PortalErrorMiddleware",
    "portal.time_zone.UserTimeZoneMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Workers and the web server share the file. WAL lets readers go on during a write;
    # IMMEDIATE transactions take the write lock up front, so a writer waits its turn (timeout)
    # instead of failing with "database is locked" when it upgrades from reading.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database is a file beside this one, not Django's in-memory default: tests that launch
    # from several threads or a worker process need every connection on one file, with the busy
    # timeout (a shared in-memory database locks whole tables and fails at once instead of waiting).
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}.test"}
else:
    # Django's own cursors bind parameters on the client and never prepare; placement's claim runs
    # through a server-binding cursor on every launch, and is prepared after this many runs on a
    # connection instead of planned each time. Off (PORTAL_DB_PREPARED_STATEMENTS=0) behind a pooler
    # that hands each transaction another server connection and does not track prepared statements.
    DATABASES["default"]["OPTIONS"].setdefault(
        "prepare_threshold", 5 if env_bool("PORTAL_DB_PREPARED_STATEMENTS", True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite cannot enforce "one shared subscription per URL" (NULLS NOT DISTINCT); the feed
# service checks for duplicates itself, so the embedded default loses nothing.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django's renderings of moments (the admin above all) in portal.moments' way, with the zone.
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Front-end assets come from npm (package.json) rather than being vendored into the tree.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/novnc", BASE_DIR / "node_modules" / "@novnc" / "novnc"),
    ("vendor/xterm", BASE_DIR / "node_modules" / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", BASE_DIR / "node_modules" / "@xterm" / "addon-fit"),
    ("vendor/tus", BASE_DIR / "node_modules" / "tus-js-client" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# How many reverse proxies of ours stand in front of daphne. Each appends the address it was
# reached from to X-Forwarded-For, so the client is the Nth entry from the right; with 0 the
# header is never read (a client can write anything in it). See portal/client_address.py.
TRUSTED_PROXIES = env_int("PORTAL_TRUSTED_PROXIES", 0, minimum=0, maximum=10)

# HTTPS (README "TLS"). On: cookies only travel over TLS and browsers are told to use nothing
# else (HSTS, sent on HTTPS responses only). Behind our proxies, the nearest one's
# X-Forwarded-Proto says whether the client used TLS; it must set (not append) that header.
# With no proxy trusted, daphne terminates TLS itself and no header is believed.
HTTPS = env_bool("PORTAL_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS or env_bool("DJANGO_SECURE_COOKIES", False)  # the older name, cookies only
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
SECURE_HSTS_SECONDS = _HSTS_SECONDS if HTTPS else 0
# Not on by default: stack endpoints may be published on subdomains over plain HTTP.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PORTAL_HSTS_INCLUDE_SUBDOMAINS", False) and HTTPS
SECURE_HSTS_PRELOAD = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS and TRUSTED_PROXIES else None
SECURE_SSL_REDIRECT = env_bool("PORTAL_SSL_REDIRECT", False) and HTTPS

REDIS_URL = redis_url()
# Cache keys and channel-layer groups in a shared Redis start with this.
CHANNEL_PREFIX = env_str("PORTAL_CHANNEL_PREFIX", DEPLOYMENT_NAME)

# "shared": state every process must see alike (the sign-in throttle's counters). Redis when
# configured, else a table in the database (`manage.py createcachetable`). MAX_ENTRIES is high
# because culling a full table drops live entries, and flooding it must not reset anyone's count.
# "default" stays per process: django-q2 writes its cluster stats there twice a second, which on
# the SQLite default would take the database's write lock each time.
if REDIS_URL:
    _SHARED_CACHE = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CHANNEL_PREFIX,  # several portals may share one Redis
    }
else:
    _SHARED_CACHE = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "portal_cache",
        "KEY_PREFIX": CHANNEL_PREFIX,
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": _SHARED_CACHE,
}

# Password guessing (portal/sign_in_throttle.py): failed sign-ins allowed in any window of
# SIGN_IN_WINDOW_SECONDS, per client address and per account, on every sign-in path.
AUTHENTICATION_BACKENDS = ["portal.sign_in_throttle.ThrottledModelBackend"]
SIGN_IN_WINDOW_SECONDS = env_int("PORTAL_SIGN_IN_WINDOW", 15 * 60, minimum=1, maximum=24 * 3600)
SIGN_IN_FAILURES_PER_ADDRESS = env_int("PORTAL_SIGN_IN_FAILURES_PER_ADDRESS", 30, minimum=1, maximum=200)
SIGN_IN_FAILURES_PER_ACCOUNT = env_int("PORTAL_SIGN_IN_FAILURES_PER_ACCOUNT", 10, minimum=1, maximum=200)

API_TOKEN_DAYS = env_int("PORTAL_API_TOKEN_DAYS", 30, minimum=1)

# Background work: django-q2. The ORM broker needs nothing besides the database; Redis is
# faster and is used whenever REDIS_URL is set.
TASK_TIMEOUT_SECONDS = env_int("PORTAL_TASK_TIMEOUT", 1800, minimum=10)
# A job (build, feed import) that has made no progress for longer than any task may run lost its
# worker: the watchdogs end it.
WORKER_GONE_AFTER_SECONDS = TASK_TIMEOUT_SECONDS + 120
# How long a shut-down waits for a guest to power itself off (ACPI) before cutting its power.
SHUTDOWN_TIMEOUT_SECONDS = env_int("PORTAL_SHUTDOWN_TIMEOUT", 60, minimum=1, maximum=3600)
# Four clusters, each with a queue and workers of its own (portal/task_queues.py says what runs
# where): "control" keeps leases, teardowns, watchdogs and hosts going whatever tenants queue, and
# runs the schedules (django-q2 gives schedules to the cluster named like Q_CLUSTER["name"]);
# "builds", "downloads" (appliance images) and "imports" (feeds) take the tenants' work, the last
# two waiting on servers tenants name. `manage.py workers` runs them all. Every queue's name starts
# with TASK_QUEUE, the deployment by default, so portals sharing a Redis never take each other's
# tasks (which they could not read either: each signs its tasks with its own secret key).
TASK_QUEUE = env_matching(
    "PORTAL_TASK_QUEUE",
    DEPLOYMENT_NAME,
    pattern=r"(?=.{1,16}$)[a-z0-9]+(-[a-z0-9]+)*",
    explain="at most 16 lowercase letters and digits, with single '-' between them",
)
# "." cannot occur in a deployment's name, so no portal's control queue is another's builds queue.
TASK_CLUSTERS = {
    name: TASK_QUEUE if name == "control" else f"{TASK_QUEUE}.{name}"
    for name in ("control", "builds", "downloads", "imports")
}
# Feed imports and image downloads one project may have queued or running at once; more are refused
# (imports) or wait (downloads) until one ends. Below the workers, so one project never holds them all.
IMPORT_WORKERS = env_int("PORTAL_IMPORT_WORKERS", 2, minimum=1, maximum=64)
IMPORTS_PER_PROJECT = env_int("PORTAL_IMPORTS_PER_PROJECT", max(1, IMPORT_WORKERS - 1), minimum=1, maximum=64)
DOWNLOAD_WORKERS = env_int("PORTAL_DOWNLOAD_WORKERS", 2, minimum=1, maximum=64)
DOWNLOADS_PER_PROJECT = env_int("PORTAL_DOWNLOADS_PER_PROJECT", max(1, DOWNLOAD_WORKERS - 1), minimum=1, maximum=64)
Q_CLUSTER = {
    "name": TASK_CLUSTERS["control"],
    "workers": env_int("PORTAL_CONTROL_WORKERS", 2, minimum=1, maximum=64),
    "timeout": TASK_TIMEOUT_SECONDS,
    "retry": TASK_TIMEOUT_SECONDS + 60,  # must exceed timeout, or a slow task is handed out twice
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": 0.1,
    "sync": env_bool("PORTAL_TASKS_SYNC", False),
    # What differs per cluster; a qcluster started with Q_CLUSTER_NAME=<name> takes these.
    "ALT_CLUSTERS": {
        TASK_CLUSTERS["builds"]: {"workers": env_int("PORTAL_WORKERS", 2, minimum=1, maximum=64)},
        TASK_CLUSTERS["downloads"]: {"workers": DOWNLOAD_WORKERS},
        TASK_CLUSTERS["imports"]: {"workers": IMPORT_WORKERS},
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Websocket fan-out: in-memory within one process by default, Redis across processes.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Several portals may share one Redis; their groups must not meet.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.PortalAutoSchema",  # documents the error answers too
    "EXCEPTION_HANDLER": "portal.api.errors.api_exception_handler",
    # DRF's JSON parser, with a size cap, a depth cap and no unpaired surrogates (see the module).
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stack portal API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request and response shapes differ (read-only fields, blank checks): one component each.
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page (/api/v1/docs/) loads Swagger UI from drf_spectacular_sidecar's static files, not a
    # CDN; no validatorUrl, or Swagger UI would send the schema's address to validator.swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Several models have a field named "status"; each choice set keeps a name that says whose it is.
    "ENUM_NAME_OVERRIDES": {
        "StackStatusEnum": "provisioning.models.Status",
        "UploadStatusEnum": "transfers.models.Upload.Status",
    },
}

# Catalog: where downloaded appliance images are cached, and how far untrusted input may go.
IMAGE_CACHE_DIR = env_path("PORTAL_IMAGE_CACHE", VAR_DIR / "images")
FEED_MAX_BYTES = env_int("PORTAL_FEED_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# How much of the catalog feeds may fill: the appliance versions one feed may list (a feed with more
# is refused whole, and says so), the feeds one project (or the shared catalog) may subscribe, and
# the items an import writes per transaction (short ones, so sign-ins, launches and workers never
# wait long behind an import; on SQLite a long one makes their writes fail with "database is locked").
FEED_MAX_ITEMS = env_int("PORTAL_FEED_MAX_ITEMS", 500, minimum=1, maximum=100_000)
FEEDS_PER_PROJECT = env_int("PORTAL_FEEDS_PER_PROJECT", 20, minimum=1, maximum=10_000)
FEED_IMPORT_BATCH_ITEMS = env_int("PORTAL_FEED_IMPORT_BATCH", 100, minimum=1, maximum=10_000)
IMAGE_MAX_BYTES = env_int("PORTAL_IMAGE_MAX_BYTES", 8 * 1024**3, minimum=1024)
IMAGE_MAX_VIRTUAL_BYTES = env_int("PORTAL_IMAGE_MAX_VIRTUAL_BYTES", 256 * 1024**3, minimum=1024)
FETCH_TIMEOUT_SECONDS = env_int("PORTAL_FETCH_TIMEOUT", 30, minimum=1)
# Hosts a feed or image may be fetched from even though they resolve to private/loopback addresses.
FETCH_ALLOWED_PRIVATE_HOSTS = env_list("PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS", [])
# Local folders that file:// feeds and images may be read from; anything else is refused.
FETCH_FILE_ROOTS = [Path(p).resolve() for p in env_list("PORTAL_FETCH_FILE_ROOTS", [])]
# Wall-clock deadlines for a whole fetch (so a server dripping bytes cannot hold a worker). An image
# download gets at most half the task timeout: the same task still verifies, converts and uploads it.
FETCH_FEED_DEADLINE_SECONDS = env_int(
    "PORTAL_FETCH_FEED_DEADLINE", min(120, TASK_TIMEOUT_SECONDS // 4), minimum=1, maximum=TASK_TIMEOUT_SECONDS // 2
)
FETCH_IMAGE_DEADLINE_SECONDS = env_int(
    "PORTAL_FETCH_IMAGE_DEADLINE", TASK_TIMEOUT_SECONDS // 2, minimum=1, maximum=TASK_TIMEOUT_SECONDS // 2
)
# What an image may grow to once converted to qcow2 (measured before converting: a small compressed
# qcow2 can expand to tens of GiB), and what all cached images together may take; least recently
# used images no instance needs are evicted to make room.
IMAGE_MAX_CONVERTED_BYTES = env_int("PORTAL_IMAGE_MAX_CONVERTED_BYTES", 2 * IMAGE_MAX_BYTES, minimum=1024 * 1024)
IMAGE_CACHE_MAX_BYTES = env_int(
    "PORTAL_IMAGE_CACHE_MAX_BYTES", max(64 * 1024**3, 2 * IMAGE_MAX_CONVERTED_BYTES), minimum=IMAGE_MAX_CONVERTED_BYTES
)
# Images in and out (transfers/): uploads being received, finished exports kept for download (each
# for EXPORT_KEEP_SECONDS, then removed), and an upload left unfinished that long is dropped.
UPLOAD_DIR = env_path("PORTAL_UPLOAD_DIR", VAR_DIR / "uploads")
UPLOAD_KEEP_SECONDS = env_int("PORTAL_UPLOAD_KEEP", 24 * 3600, minimum=60)
EXPORT_DIR = env_path("PORTAL_EXPORT_DIR", VAR_DIR / "exports")
EXPORT_KEEP_SECONDS = env_int("PORTAL_EXPORT_KEEP", 24 * 3600, minimum=60)
# Uploads (transfers/uploads.py): unfinished uploads one project may have at once, and the most one
# tus PATCH may carry. daphne holds a request's whole body in memory before the portal reads any of
# it (measured: a 256 MiB body took 270 MiB), so clients send a file in parts of at most this size
# (the upload page does) and a proxy in front should refuse larger bodies.
UPLOADS_PER_PROJECT = env_int("PORTAL_UPLOADS_PER_PROJECT", 3, minimum=1, maximum=100)
UPLOAD_CHUNK_BYTES = env_int("PORTAL_UPLOAD_CHUNK_BYTES", 16 * 1024**2, minimum=64 * 1024, maximum=1024**3)
# Captured stacks (transfers/capture.py): each tier's disk is copied here while its capture runs, then
# kept in the image cache as a version of the project's own catalog; nothing stays here afterwards.
CAPTURE_DIR = env_path("PORTAL_CAPTURE_DIR", VAR_DIR / "captures")

# Provisioning
# Stack templates one project may keep (shared ones, written by operators, are not counted). What
# each template may hold is fixed in provisioning/template_limits.py.
TEMPLATES_PER_PROJECT = env_int("PORTAL_TEMPLATES_PER_PROJECT", 100, minimum=1, maximum=10_000)
# Snapshots one stack may keep (each lives inside its tiers' disks and slows their writes a little).
SNAPSHOTS_PER_STACK = env_int("PORTAL_SNAPSHOTS_PER_STACK", 10, minimum=1, maximum=100)
# A base image's copy in a host's pool that no instance on that host needs, and that no build has
# used for this long, is removed by the reconciler (the next build there uploads it again).
BASE_VOLUME_IDLE_SECONDS = env_int("PORTAL_BASE_VOLUME_IDLE", 24 * 3600, minimum=0)
# Idle stacks (provisioning/services/idle.py), in projects that set idle_after_seconds: a tier whose
# guest used more than this share of one vCPU since the last minute's sample is busy; a stack idle
# long enough is warned this long before it is shelved (at most half its project's idle period).
IDLE_CPU_PERCENT = env_int("PORTAL_IDLE_CPU_PERCENT", 5, minimum=1, maximum=100)
IDLE_WARNING_SECONDS = env_int("PORTAL_IDLE_WARNING", 1800, minimum=0)
# Consoles (provisioning/consoles): open sessions per user. The browser origins (exact
# scheme://host:port) allowed to open any of the portal's websockets besides its own pages
# (portal/socket_origin.py); the endpoints' host is never let in.
CONSOLE_MAX_OPEN_PER_USER = env_int("PORTAL_CONSOLE_MAX_PER_USER", 5, minimum=1, maximum=100)
CONSOLE_ALLOWED_ORIGINS = env_list("PORTAL_CONSOLE_ALLOWED_ORIGINS", CSRF_TRUSTED_ORIGINS)
# libvirt transports a host may be registered with: full URIs (allowed exactly) or schemes. Never
# qemu+ext; and each transport takes only the parameters listed in provisioning/host_uris.py. Not
# libvirt's test driver either: a test:///<path> URI makes the portal read that file.
HOST_TRANSPORTS = env_list(
    "PORTAL_HOST_TRANSPORTS", ["qemu:///system", "qemu+unix", "qemu+ssh", "qemu+libssh2", "qemu+tls"]
)
# Pauses (seconds) before calling a host that did not answer again, where the call is safe to
# repeat (removing a stack's domains, disks and network); a delete that still fails is retried by
# the lease sweep later, with pauses that grow (provisioning/services/lifecycle.py).
DRIVER_RETRY_DELAYS = (1.0, 4.0)
PUBLISH_PORT_RANGE = (
    env_int("PORTAL_PORT_MIN", 20000, minimum=1024, maximum=65535),
    env_int("PORTAL_PORT_MAX", 29999, minimum=1024, maximum=65535),
)
# Private stack networks: one subnet per stack out of this range (isolated, so ranges may repeat
# across hosts; they are kept distinct per host so addresses in logs stay unambiguous).
STACK_NETWORK_RANGE = env_network("PORTAL_STACK_NETWORKS", "10.240.0.0/16")
STACK_SUBNET_PREFIX = env_int("PORTAL_STACK_SUBNET_PREFIX", 24, minimum=16, maximum=28)
# Where placement puts a new stack among the hosts with room: "spread" (the emptiest host, so load and
# failures spread out) or "pack" (the fullest, so whole hosts stay free for big stacks or maintenance).
PLACEMENT = env_matching(
    "PORTAL_PLACEMENT", "spread", pattern="spread|pack", explain="spread (emptiest host first) or pack (fullest first)"
)
MIN_LEASE_SECONDS = 60  # a lease (and a project's longest lease) is never shorter than this
DEFAULT_LEASE_SECONDS = env_int("PORTAL_DEFAULT_LEASE", 4 * 3600, minimum=60)
MAX_LEASE_SECONDS = env_int("PORTAL_MAX_LEASE", 7 * 24 * 3600, minimum=60)
DEFAULT_STORAGE_POOL = env_str("PORTAL_STORAGE_POOL", "portal")
DEFAULT_STORAGE_POOL_PATH = env_str("PORTAL_STORAGE_POOL_PATH", "/var/lib/libvirt/images/portal")

# Notices (notices/): warnings before a lease ends, by mail, in the portal and to a project's webhook.
# Mail and webhook bodies link back to the portal at this address (scheme, host, port; no slash at the end).
PORTAL_BASE_URL = env_matching(
    "PORTAL_BASE_URL",
    "http://127.0.0.1:8000",
    pattern=r"https?://[^/?#\s]+(/[^?#\s]*[^/?#\s])?",
    explain="an http:// or https:// address without query, fragment or trailing slash",
)
# Mail goes to files under the data folder (one per message) unless an SMTP server is named.
EMAIL_HOST = env_str("PORTAL_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("PORTAL_EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("PORTAL_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = env_str("PORTAL_EMAIL_PASSWORD", "")
    # STARTTLS on the submission port by default; PORTAL_EMAIL_TLS=1 for TLS from the start (port 465).
    EMAIL_USE_SSL = env_bool("PORTAL_EMAIL_TLS", False)
    EMAIL_USE_TLS = env_bool("PORTAL_EMAIL_STARTTLS", not EMAIL_USE_SSL)
    if EMAIL_USE_SSL and EMAIL_USE_TLS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("set at most one of PORTAL_EMAIL_TLS and PORTAL_EMAIL_STARTTLS")
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_TIMEOUT = env_int("PORTAL_EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
DEFAULT_FROM_EMAIL = env_str("PORTAL_EMAIL_FROM", "stackportal@localhost")
# A webhook delivery's whole POST (look-up, connect, send, answer) must fit in this; it runs on the
# control cluster, beside lease expiry, so a slow receiver may not hold a worker long.
WEBHOOK_DEADLINE_SECONDS = env_int("PORTAL_WEBHOOK_DEADLINE", 5, minimum=1, maximum=30)

# Usage and cost (usage/): what a stack costs per hour of holding each unit, in CURRENCY (ISO 4217).
# A running stack pays for vCPUs, memory and disks, a shelved one for its disks; snapshots for their space.
_PRICE = {"pattern": r"[0-9]{1,6}(\.[0-9]{1,9})?", "explain": "a price per unit-hour, e.g. 0.02"}
PRICE_VCPU_HOUR = env_matching("PORTAL_PRICE_VCPU_HOUR", "0.01", **_PRICE)
PRICE_MEMORY_GIB_HOUR = env_matching("PORTAL_PRICE_MEMORY_GIB_HOUR", "0.005", **_PRICE)
PRICE_DISK_GIB_HOUR = env_matching("PORTAL_PRICE_DISK_GIB_HOUR", "0.0002", **_PRICE)
PRICE_SNAPSHOT_GIB_HOUR = env_matching("PORTAL_PRICE_SNAPSHOT_GIB_HOUR", "0.0001", **_PRICE)
CURRENCY = env_matching("PORTAL_CURRENCY", "EUR", pattern="[A-Z]{3}", explain="a three-letter currency code, e.g. EUR")

# Operators' day two. Live migration: how long a move may take before it is cancelled (the guest keeps
# running where it was), and the bandwidth it may use (MiB/s; 0: libvirt's default, unlimited).
MIGRATION_TIMEOUT_SECONDS = env_int("PORTAL_MIGRATION_TIMEOUT", 600, minimum=10, maximum=24 * 3600)
MIGRATION_MAX_MIB_SEC = env_int("PORTAL_MIGRATION_MAX_MIB_SEC", 0, minimum=0)
# The sampler (metrics/): every guest's and host's figures through libvirt's bulk stats, kept this long.
METRICS_SAMPLE_SECONDS = env_int("PORTAL_METRICS_SAMPLE", 60, minimum=5, maximum=3600)
METRICS_HISTORY_SECONDS = env_int("PORTAL_METRICS_HISTORY", 2 * 24 * 3600, minimum=3600)
# /metrics (Prometheus' text format) answers a bearer token (PORTAL_METRICS_TOKEN; empty: none) or a
# scraper from these networks (comma-separated; loopback by default).
METRICS_TOKEN = env_str("PORTAL_METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("PORTAL_METRICS_ALLOWED", ["127.0.0.0/8", "::1/128"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Credentials in any URL a line quotes (a feed's, an image's, in a message or a traceback) are masked.
    "formatters": {
        "plain": {
            "()": "catalog.redaction.RedactingFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PORTAL_LOG_LEVEL", "INFO")},
}
