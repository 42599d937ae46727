"""``ReqioMiddleware`` for Django's ``MIDDLEWARE``: stamps the widget tag inside Django's chain.

Listed after ``AuthenticationMiddleware`` (it reads ``request.user``) and after any compression
middleware such as ``GZipMiddleware`` (listed later means inner: it sees the page before it is
compressed, and the compressed page carries the token). Sync and async capable: under an async
stack no thread is used unless ``REQIO_USER_IDENTITY`` is a sync function.

The response rules are the ASGI and WSGI middlewares': only HTML that could be rewritten (as
``reqio_middleware.policy`` decides) and that carries an identity is touched; the user is looked
up only for those, and the edits are those of ``policy.edit_headers`` (no validators, private,
``no-store``, ``Vary: Cookie``). A HEAD is treated as its GET, since Django renders the same
body for it and the server drops it: the HEAD's headers are then exactly the GET's.

Revalidation: an anonymous copy of a page may be in the browser's cache with its ``ETag``.
For a signed-in conditional GET the ``If-None-Match``/``If-Modified-Since`` headers are set aside
while the view and the middleware inside this one run, so neither the view's ``@condition`` nor
an inner ``ConditionalGetMiddleware`` can answer 304; a rewritten page carries no validators,
so an outer ``ConditionalGetMiddleware`` cannot either. A response that is not rewritten gets
its revalidation back: the headers are restored and the 304 is computed here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http.response import ResponseHeaders  # type: ignore[import-untyped,unused-ignore]
from django.middleware.csrf import get_token  # type: ignore[import-untyped,unused-ignore]
from django.utils.cache import get_conditional_response  # type: ignore[import-untyped,unused-ignore]
from django.utils.http import parse_http_date_safe  # type: ignore[import-untyped,unused-ignore]

from reqio_middleware.identity import Identity
from reqio_middleware.policy import (
    ENCODED_ACTION,
    REWRITE_ACTION,
    CompressedWarning,
    classify,
    edit_headers,
)
from reqio_middleware.rewriter import HTMLRewriter

from .conf import reqio_settings, user_identity_function
from .identity import Lookup, aidentity_of, forget_anonymous_lookup, identity_of

__all__ = ["ReqioMiddleware"]

logger = logging.getLogger("reqio_middleware")

_ENCODED_HINT = (
    "reqio: an HTML response reached reqio_middleware.adapters.django.ReqioMiddleware "
    "compressed (Content-Encoding: %s) and went out without a token. List ReqioMiddleware "
    "after the compression middleware (GZipMiddleware) in MIDDLEWARE, so that it sees the page "
    "before it is compressed. This warning is logged once."
)
_VALIDATORS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")


class ReqioMiddleware:
    """Gives the Reqio widget tag on ``request.user``'s pages a signed identity token."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.settings = reqio_settings()  # ImproperlyConfigured naming the setting
        user_identity_function()  # an unimportable REQIO_USER_IDENTITY fails now, too
        self.warn_encoded = CompressedWarning(_ENCODED_HINT)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        held = None
        if _is_conditional(request) and self._identity(request) is not None:
            held = _set_validators_aside(request)
        response = self.get_response(request)
        identity = self._identity(request) if self._rewritable(request, response) else None
        return self._finish(request, response, identity, held)

    async def __acall__(self, request: Any) -> Any:
        held = None
        if _is_conditional(request) and await self._aidentity(request) is not None:
            held = _set_validators_aside(request)
        response = await self.get_response(request)
        rewritable = self._rewritable(request, response)
        identity = await self._aidentity(request) if rewritable else None
        return self._finish(request, response, identity, held)

    def _rewritable(self, request: Any, response: Any) -> bool:
        # A HEAD is classified as its GET: Django renders its body, the server drops it.
        method = "GET" if request.method == "HEAD" else request.method
        action = classify(method, response.status_code, response.items())[0]
        if action is ENCODED_ACTION:
            self.warn_encoded(list(response.items()))
        return action is REWRITE_ACTION

    def _identity(self, request: Any) -> Identity | None:
        lookup = Lookup(request)
        try:
            identity = identity_of(request)
        except Exception as exc:
            _resolver_failed(exc)
            identity = None
        if identity is None:
            forget_anonymous_lookup(request, lookup)
        return identity

    async def _aidentity(self, request: Any) -> Identity | None:
        lookup = Lookup(request)
        try:
            identity = await aidentity_of(request)
        except Exception as exc:
            _resolver_failed(exc)
            identity = None
        if identity is None:
            forget_anonymous_lookup(request, lookup)
        return identity

    def _finish(
        self, request: Any, response: Any, identity: Identity | None, held: dict[str, str] | None
    ) -> Any:
        if held is not None:
            _restore_validators(request, held)
        try:
            if identity is not None and self._stamp(response, identity):
                get_token(request)  # the CSRF cookie the browser helper's POST needs
                return response
        except Exception as exc:  # never a 500 because of us
            logger.error(
                "reqio: could not stamp the page, it goes out without a token: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
        if held is not None:
            return _revalidate(request, response)
        return response

    def _stamp(self, response: Any, identity: Identity) -> bool:
        """Rewrite ``response`` in place for ``identity``; False when left as it was."""
        if response.streaming:
            rewriter = self.settings.rewriter(identity)
            headers = edit_headers(list(response.items()), None)
            if response.is_async:
                response.streaming_content = _rewrite_async(response.streaming_content, rewriter)
            else:
                response.streaming_content = _rewrite_sync(response.streaming_content, rewriter)
            response.headers = ResponseHeaders(dict(headers))
            return True
        new = self.settings.rewrite(response.content, identity)
        if new is None:  # no widget tag, or the minter refused (logged)
            return False
        length = len(new) if response.has_header("Content-Length") else None
        headers = edit_headers(list(response.items()), length)
        response.content = new
        response.headers = ResponseHeaders(dict(headers))
        return True


def _rewrite_sync(chunks: Iterable[bytes], rewriter: HTMLRewriter) -> Iterator[bytes]:
    for chunk in chunks:
        out = rewriter.feed(chunk)
        if out:
            yield out
    rest = rewriter.close()
    if rest:
        yield rest


async def _rewrite_async(
    chunks: AsyncIterator[bytes], rewriter: HTMLRewriter
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        out = rewriter.feed(chunk)
        if out:
            yield out
    rest = rewriter.close()
    if rest:
        yield rest


def _resolver_failed(exc: Exception) -> None:
    logger.error(
        "reqio: finding the identity of request.user raised %s: %s; "
        "the response goes out without a token",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def _is_conditional(request: Any) -> bool:
    meta = request.META
    return request.method in ("GET", "HEAD") and (
        "HTTP_IF_NONE_MATCH" in meta or "HTTP_IF_MODIFIED_SINCE" in meta
    )


def _set_validators_aside(request: Any) -> dict[str, str]:
    held = {name: request.META.pop(name) for name in _VALIDATORS if name in request.META}
    request.__dict__.pop("headers", None)  # request.headers is cached from META
    return held


def _restore_validators(request: Any, held: dict[str, str]) -> None:
    request.META.update(held)
    request.__dict__.pop("headers", None)


def _revalidate(request: Any, response: Any) -> Any:
    """The 304 the view (or an inner ConditionalGetMiddleware) would have given."""
    etag = response.get("ETag")
    last_modified = response.get("Last-Modified")
    modified = parse_http_date_safe(last_modified) if last_modified else None
    if not etag and modified is None:
        return response
    return get_conditional_response(request, etag=etag, last_modified=modified, response=response)
