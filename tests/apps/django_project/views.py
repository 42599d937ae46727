"""Views that store the signed-in user where the default resolver looks for it.

Under WSGI ``request.META`` *is* the environ; under ASGI the key goes into
``request.scope``. Either way the middleware reads it after the response started.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from ..common import PAGE, iter_stream


def _remember_user(request: HttpRequest) -> None:
    user = request.headers.get("X-User")
    if not user:
        return
    identity = {"sub": user, "email": user + "@ex.test"}
    scope = getattr(request, "scope", None)
    if scope is not None:
        scope["reqio.identity"] = identity
    else:
        request.META["reqio.identity"] = identity


def html_page(request: HttpRequest) -> HttpResponse:
    _remember_user(request)
    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    _remember_user(request)
    return StreamingHttpResponse(iter_stream(), content_type="text/html; charset=utf-8")


def json_page(request: HttpRequest) -> JsonResponse:
    _remember_user(request)
    return JsonResponse({"items": [1, 2, 3]})
