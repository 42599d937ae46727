# settings.py (excerpt)
# Order: ReqioMiddleware after AuthenticationMiddleware (it reads request.user) and after
# GZipMiddleware (listed later = inner: it stamps the page before it is compressed).
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "reqio_middleware.adapters.django",  # system checks: manage.py check
]
MIDDLEWARE = [
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reqio_middleware.adapters.django.ReqioMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",  # fine on either side
]
# REQIO_SECRET comes from the environment variable of the same name (so does every REQIO_*).
REQIO_PROJECT_ID = "proj_abc123"
# Optional: REQIO_AUDIENCE, REQIO_WIDGET_SRC, REQIO_TTL, and
REQIO_USER_IDENTITY = "tests.readme_snippets.django_identity.user_identity"
