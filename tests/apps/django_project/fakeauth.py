"""Stands in for ``AuthenticationMiddleware`` without a database: the ``user`` cookie names the
user. ``request.user`` is lazy and ``request.auser`` async, as Django's own middleware makes
them, so the integration's sync and async lookups are both exercised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.functional import SimpleLazyObject


class User:
    is_authenticated = True

    def __init__(self, pk: str) -> None:
        self.pk, self.email = pk, pk + "@ex.test"


class Anonymous:
    is_authenticated = False
    pk = None


def _user(request: Any) -> Any:
    pk = request.COOKIES.get("user")
    return User(pk) if pk else Anonymous()


class CookieAuthMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        request.user = SimpleLazyObject(lambda: _user(request))

        async def auser() -> Any:
            return _user(request)

        request.auser = auser
        return self.get_response(request)


def plan_identity(user: Any) -> dict[str, Any]:
    """A ``REQIO_USER_IDENTITY`` function: the user's id and email plus a trait."""
    return {"sub": user.pk, "email": user.email, "traits": {"plan": "team"}}


async def async_plan_identity(user: Any) -> dict[str, Any]:
    return plan_identity(user)


def broken_identity(user: Any) -> dict[str, Any]:
    raise RuntimeError("the profile table is down")
