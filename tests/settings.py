"""Settings for the test suite: the portal's own settings with test defaults filled in.

Tests run on PostgreSQL (locking and concurrency must be real); point DATABASE_URL elsewhere
to use another server. ./scripts/test.sh also runs the launch, quota and placement tests on SQLite
(DATABASE_URL=sqlite:///…), the demo's default. Tasks run inline unless PORTAL_TASKS_SYNC=0 (the end-to-end tests
start a real worker process for that).
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
os.environ.setdefault("PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS", "127.0.0.1,localhost")
if "PORTAL_VAR_DIR" not in os.environ:
    # The run's own folder (images, uploads, exports, mail), removed when the process that made it
    # ends; the processes it starts (servers, workers) inherit it and leave it alone.
    os.environ["PORTAL_VAR_DIR"] = tempfile.mkdtemp(prefix="portal-test-var-")
    atexit.register(shutil.rmtree, os.environ["PORTAL_VAR_DIR"], ignore_errors=True)
os.environ.setdefault("PORTAL_TASKS_SYNC", "1")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never used outside tests
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing folder
# libvirt's in-memory test driver stands in for real hosts here; production does not allow it. Plain
# TCP (unencrypted) only names a closed loopback port here, for hosts that do not answer.
HOST_TRANSPORTS = [*HOST_TRANSPORTS, "test", "qemu+tcp"]  # noqa: F405
DRIVER_RETRY_DELAYS = (0.01, 0.02)  # the same retries, without the wait
