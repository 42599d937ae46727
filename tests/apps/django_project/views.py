"""Views of the test project: pages in each response class Django has, and a JSON one.

The ``X-User`` header views store the identity under ``"reqio.identity"`` themselves (the
older wrap's protocol: under WSGI ``request.META`` *is* the environ, under ASGI the key goes
into ``request.scope``). The others leave it to ``request.user``.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.http import condition

from ..common import PAGE, iter_stream, stream_chunks

PAGE_ETAG = '"page-v1"'


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


def user_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


def user_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter_stream(), content_type="text/html; charset=utf-8")


async def _chunks() -> AsyncIterator[bytes]:
    for chunk in stream_chunks():
        yield chunk


def user_async_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_chunks(), content_type="text/html; charset=utf-8")


def user_file(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(PAGE), content_type="text/html; charset=utf-8")


def user_attachment(request: HttpRequest) -> FileResponse:
    return FileResponse(
        io.BytesIO(PAGE), content_type="text/html", as_attachment=True, filename="p.html"
    )


@condition(etag_func=lambda request: PAGE_ETAG)
def cached_page(request: HttpRequest) -> HttpResponse:
    """A page with a validator: revisited with ``If-None-Match`` it would be a 304."""
    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


def cached_json(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"items": [1, 2, 3]})
    response["ETag"] = '"json-v1"'
    return response


def helper_page(request: HttpRequest) -> HttpResponse:
    """A page that loads the browser helper, which keeps the token fresh through token_view."""
    helper = b'<script src="/_reqio/token.js" defer></script>\n</body>'
    return HttpResponse(PAGE.replace(b"</body>", helper), content_type="text/html")
