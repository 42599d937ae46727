"""Configure Django once per process, and scope this project's settings to each use.

Django's settings are process-wide and other test modules configure Django too, so
``configure()`` only fills them in when nobody has, and :func:`project_settings` applies
this project's own (URLconf, hosts, no middleware) with ``override_settings`` for as long as
a test needs them.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

OVERRIDES: dict[str, Any] = {
    "ROOT_URLCONF": "tests.apps.django_project.urls",
    "ALLOWED_HOSTS": ["*"],
    "MIDDLEWARE": [],
    "DEBUG": False,
    "DEFAULT_CHARSET": "utf-8",
}


def configure() -> None:
    if settings.configured:
        return
    settings.configure(
        SECRET_KEY="django-test-key-not-the-reqio-secret",
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        **OVERRIDES,
    )
    django.setup()


def project_settings() -> Any:
    """A context manager (``override_settings``) with this project's settings in force."""
    configure()
    from django.test.utils import override_settings

    return override_settings(**OVERRIDES)
