"""WSGI and ASGI entry points of the real-server project (``server_settings``)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.django_project.server_settings")

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

wsgi = get_wsgi_application()
asgi = get_asgi_application()


def migrate(users: list[str]) -> None:
    """Create the schema in ``REQIO_TEST_DB`` and one user per name (password = name * 2)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    model = get_user_model()
    for name in users:
        model.objects.create_user(name, f"{name}@ex.test", name * 2)


if __name__ == "__main__":
    import sys

    migrate(sys.argv[1:])
