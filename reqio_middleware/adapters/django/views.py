"""The token endpoint as Django views, routed in ``urls.py``::

    from reqio_middleware.adapters.django import script_view, token_view
    urlpatterns = [..., path("_reqio/token", token_view), path("_reqio/token.js", script_view)]

They run inside Django's middleware chain like any other view, so the session, authentication
(``request.user``) and CSRF machinery apply: a ``POST`` needs Django's CSRF token (the
``X-CSRFToken`` header; the browser helper sends it from the ``csrftoken`` cookie), a ``GET``
does not. A cross-site request (``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is not
this site) is refused with 403 before the user is looked up.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse  # type: ignore[import-untyped,unused-ignore]

from reqio_middleware import endpoint
from reqio_middleware.adapters._endpoint import token_reply

from .conf import reqio_settings
from .identity import identity_of

__all__ = ["script_view", "token_view"]


def token_view(request: Any) -> Any:
    """``GET``/``POST``: ``{"token", "expires_at"}`` for ``request.user``; 401 when anonymous."""
    meta = request.META
    reply = token_reply(
        reqio_settings(),
        lambda: identity_of(request),
        method=request.method,
        sec_fetch_site=meta.get("HTTP_SEC_FETCH_SITE"),
        origin=meta.get("HTTP_ORIGIN"),
        scheme=request.scheme,
        host=_host(request),
    )
    return _response(reply)


def script_view(request: Any) -> Any:
    """The browser helper that keeps the token fresh (static, cacheable)."""
    return _response(endpoint.script(request.method))


def _host(request: Any) -> str | None:
    try:
        host: str = request.get_host()
    except Exception:  # DisallowedHost: then no Origin can match ours
        return None
    return host


def _response(reply: endpoint.Reply) -> Any:
    return HttpResponse(reply.body, status=reply.status, headers=dict(reply.headers))
