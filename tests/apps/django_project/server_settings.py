"""A settings module on disk for the real-server tests: Django's own auth, sessions and CSRF,
``LoginView``, ``GZipMiddleware`` first, as projects have them, and a SQLite database.

``REQIO_TEST_DB`` is the database file (migrated by the test before the server starts);
``REQIO_TEST_BARE=1`` leaves ``ReqioMiddleware`` out: the same project without Reqio;
``REQIO_TEST_NO_SECRET=1`` leaves ``REQIO_SECRET`` unset: a project that must not start.
"""

from __future__ import annotations

import os

from ..common import PROJECT_ID, SECRET

SECRET_KEY = "django-test-key-not-the-reqio-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "reqio_middleware.adapters.django",
]
MIDDLEWARE = [
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reqio_middleware.adapters.django.ReqioMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
]
if os.environ.get("REQIO_TEST_BARE") == "1":
    MIDDLEWARE.remove("reqio_middleware.adapters.django.ReqioMiddleware")
ROOT_URLCONF = "tests.apps.django_project.server_urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("REQIO_TEST_DB", ":memory:"),
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
    }
]
LOGIN_REDIRECT_URL = "/page"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REQIO_SECRET = None if os.environ.get("REQIO_TEST_NO_SECRET") == "1" else SECRET
REQIO_PROJECT_ID = PROJECT_ID
REQIO_USER_IDENTITY = "tests.apps.django_project.server_urls.username_identity"
