"""A Django project with Django's own session and authentication middleware, run in a process
of its own (``python -m tests.apps.django_real_auth``): Django's settings are process-wide and
the other Django tests configure a project without ``django.contrib.auth``.

It prints one JSON object: for each case, the response with ``ReqioMiddleware`` and without
it, and how often Django's ``auth.get_user`` ran, for ``tests/test_django_fast_paths.py`` to
judge. Users need no database: the session's user id is the user (see :class:`Backend`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from tests.apps import common  # noqa: E402

SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
REQIO = "reqio_middleware.adapters.django.ReqioMiddleware"
BACKEND = f"{__name__}.Backend"


class User:
    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, pk: str) -> None:
        self.pk = self.id = pk
        self.email = f"{pk}@ex.test"

    def get_username(self) -> str:
        return self.pk


class Backend:
    def get_user(self, user_id: str) -> User:
        return User(user_id)

    async def aget_user(self, user_id: str) -> User:
        return User(user_id)


def page(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(common.PAGE, content_type="text/html; charset=utf-8")


def page_reading_user(request: Any) -> Any:
    """A page whose view reads ``request.user`` itself (so Django adds ``Vary: Cookie``)."""
    from django.http import HttpResponse

    assert not request.user.is_authenticated
    return HttpResponse(common.PAGE, content_type="text/html; charset=utf-8")


def data(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"ok": True})


def __getattr__(name: str) -> Any:  # ROOT_URLCONF, built after django.setup()
    if name == "urlpatterns":
        from django.urls import path

        return [path("page", page), path("reads-user", page_reading_user), path("json", data)]
    raise AttributeError(name)


def configure() -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-real-auth-test-key-not-the-reqio-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        AUTHENTICATION_BACKENDS=[BACKEND],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        REQIO_SECRET=common.SECRET,
        REQIO_PROJECT_ID=common.PROJECT_ID,
    )
    django.setup()


def session_cookie(data: dict[str, str]) -> str:
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    session = SessionStore()
    session.update(data)
    session.save()
    key: str = session.session_key
    return key


GET_USER_CALLS = [0]


def count_get_user() -> None:
    """Counts the calls of ``django.contrib.auth.get_user`` (and its async twin), which
    ``AuthenticationMiddleware``'s lazy user calls through the module."""
    from django.contrib import auth

    real = auth.get_user

    def get_user(request: Any) -> Any:
        GET_USER_CALLS[0] += 1
        return real(request)

    auth.get_user = get_user
    areal = getattr(auth, "aget_user", None)  # Django 5.0 and later
    if areal is None:
        return

    async def aget_user(request: Any) -> Any:
        GET_USER_CALLS[0] += 1
        return await areal(request)

    auth.aget_user = aget_user


def fetch(mode: str, stack: list[str], path: str, cookies: dict[str, str]) -> dict[str, Any]:
    from django.test import AsyncClient, Client
    from django.test.utils import override_settings

    GET_USER_CALLS[0] = 0
    with override_settings(MIDDLEWARE=stack):
        client = Client() if mode == "sync" else AsyncClient()
        for name, value in cookies.items():
            client.cookies[name] = value
        response = client.get(path) if mode == "sync" else asyncio.run(client.get(path))
    set_cookies = {name: morsel.value for name, morsel in response.cookies.items()}
    return {
        "status": response.status_code,
        "headers": sorted([k.lower(), v] for k, v in response.items()),
        "body": response.content.decode("utf-8"),
        "cookies": set_cookies,
        "get_user_calls": GET_USER_CALLS[0],
    }


def main() -> None:
    configure()
    count_get_user()
    signed_in = session_cookie({"_auth_user_id": "42", "_auth_user_backend": BACKEND})
    signed_out = session_cookie({"theme": "dark"})  # a session, but nobody signed in
    cases = {
        "no-cookie": ("/page", {}),
        "no-cookie-json": ("/json", {}),
        "no-cookie-reads-user": ("/reads-user", {}),
        "signed-out": ("/page", {"sessionid": signed_out}),
        "signed-in": ("/page", {"sessionid": signed_in}),
        "signed-in-json": ("/json", {"sessionid": signed_in}),
    }
    stacks = {
        "plain": [SESSION, AUTH, REQIO],
        "csrf": [SESSION, CSRF, AUTH, REQIO],
    }
    out: dict[str, Any] = {}
    for mode in ("sync", "async"):
        for stack_name, stack in stacks.items():
            for case, (path, cookies) in cases.items():
                key = f"{mode}/{stack_name}/{case}"
                bare = [name for name in stack if name != REQIO]
                out[key] = {
                    "ours": fetch(mode, stack, path, cookies),
                    "bare": fetch(mode, bare, path, cookies),
                }
        csrf_secret = "a" * 32  # the browser's csrftoken cookie from an earlier page
        cookies = {"sessionid": signed_in, "csrftoken": csrf_secret}
        out[f"{mode}/csrf/signed-in-with-csrf-cookie"] = {
            "ours": fetch(mode, stacks["csrf"], "/page", cookies),
            "csrf_secret": csrf_secret,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
