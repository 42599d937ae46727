"""``ReqioMiddleware`` for Django's ``MIDDLEWARE``: stamps the widget tag inside Django's chain.

Listed after ``AuthenticationMiddleware`` (it reads ``request.user``) and after any compression
middleware such as ``GZipMiddleware`` (listed later means inner: it sees the page before it is
compressed, and the compressed page carries the token). Sync and async capable: under an async
stack no thread is used unless ``REQIO_USER_IDENTITY`` is a sync function.

Every response rule is the request core's (:mod:`reqio_middleware.core`), as for the ASGI and
WSGI middlewares: only HTML that could be rewritten and that carries an identity is touched,
the user is looked up only for those, and the header edits are the same. A request without a
session cookie, under Django's own ``AuthenticationMiddleware``, can only be anonymous: its
user is not loaded at all and its response leaves as the view made it, headers unread. A HEAD
is treated as its GET, since Django renders the same body for it and the server drops it: the
HEAD's headers are then exactly the GET's.

Revalidation: an anonymous copy of a page may be in the browser's cache with its ``ETag``.
For a signed-in conditional GET the ``If-None-Match``/``If-Modified-Since`` headers are set
aside while the view and the middleware inside this one run, so neither the view's ``@condition``
nor an inner ``ConditionalGetMiddleware`` can answer 304; a stamped page carries no validators,
so an outer ``ConditionalGetMiddleware`` cannot either. A response that is not stamped gets
its revalidation back: the headers are restored and the 304 is computed here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings  # type: ignore[import-untyped,unused-ignore]
from django.http.response import ResponseHeaders  # type: ignore[import-untyped,unused-ignore]
from django.middleware.csrf import (  # type: ignore[import-untyped,unused-ignore]
    CsrfViewMiddleware,
    get_token,
)
from django.utils.cache import get_conditional_response  # type: ignore[import-untyped,unused-ignore]
from django.utils.http import parse_http_date_safe  # type: ignore[import-untyped,unused-ignore]
from django.utils.module_loading import import_string  # type: ignore[import-untyped,unused-ignore]

from reqio_middleware.adapters._responses import (
    Outcome,
    ResponseDriver,
    log_stamp_failure,
    stream_async,
    stream_sync,
)
from reqio_middleware.core import CONDITIONAL_ENVIRON, Core
from reqio_middleware.identity import Identity
from reqio_middleware.policy import PASS_ACTION

from .conf import reqio_debug, reqio_settings, user_identity_function
from .identity import (
    Lookup,
    aidentity_of,
    forget_anonymous_lookup,
    identity_of,
    nobody_signed_in,
)

__all__ = ["ReqioMiddleware"]

logger = logging.getLogger("reqio_middleware")

_ENCODED_HINT = (
    "reqio: a signed-in user's HTML page reached reqio_middleware.adapters.django."
    "ReqioMiddleware compressed (Content-Encoding: %s) and went out without a token. List "
    "ReqioMiddleware after the compression middleware (GZipMiddleware) in MIDDLEWARE, so that "
    "it sees the page before it is compressed. This warning is logged once."
)

_NOBODY: tuple[Identity | None, bool] = (None, False)
_IF_NONE_MATCH, _IF_MODIFIED_SINCE = CONDITIONAL_ENVIRON


class ReqioMiddleware:
    """Gives the Reqio widget tag on ``request.user``'s pages a signed identity token."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        settings = reqio_settings()  # ImproperlyConfigured naming the setting
        user_identity_function()  # an unimportable REQIO_USER_IDENTITY fails now, too
        core = Core(settings, encoded_hint=_ENCODED_HINT, debug=reqio_debug())
        self.driver = ResponseDriver(core)
        self.debug = core.debug
        #: Whether a CSRF middleware can send the cookie a stamped page hands out.
        self.csrf = _csrf_in_chain()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        held = None
        if _is_conditional(request) and self._identity(request)[0] is not None:
            held = _set_validators_aside(request)
        response = self.get_response(request)
        if self._nobody(request):
            return self._untouched(request, response, held)
        classified, headers = self._classify(request, response)
        if classified is None:
            return self._untouched(request, response, held)
        identity, failed = (None, False)
        if classified[0] is not PASS_ACTION:
            identity, failed = self._identity(request, checked=True)
        return self._finish(request, response, classified, headers, identity, failed, held)

    async def __acall__(self, request: Any) -> Any:
        held = None
        if _is_conditional(request) and (await self._aidentity(request))[0] is not None:
            held = _set_validators_aside(request)
        response = await self.get_response(request)
        if self._nobody(request):
            return self._untouched(request, response, held)
        classified, headers = self._classify(request, response)
        if classified is None:
            return self._untouched(request, response, held)
        identity, failed = (None, False)
        if classified[0] is not PASS_ACTION:
            identity, failed = await self._aidentity(request, checked=True)
        return self._finish(request, response, classified, headers, identity, failed, held)

    def _nobody(self, request: Any) -> bool:
        """Nobody can be signed in (see ``nobody_signed_in``) and no debug header is due: the
        response goes out as the application made it, its headers unread."""
        return not self.debug and nobody_signed_in(request)

    def _classify(self, request: Any, response: Any) -> tuple[Any, list[tuple[str, str]]]:
        method, status = _method(request), response.status_code
        if self.driver.passes(method, status, response.get("Content-Type")):
            return None, []
        headers = list(response.items())
        return self.driver.needs_identity(method, status, headers), headers

    def _identity(self, request: Any, *, checked: bool = False) -> tuple[Identity | None, bool]:
        """``checked``: :meth:`_nobody` was already asked for this response."""
        if not checked and nobody_signed_in(request):
            return _NOBODY
        lookup = Lookup(request)
        try:
            identity, failed = identity_of(request), False
        except Exception as exc:
            _lookup_failed(exc)
            identity, failed = None, True
        if identity is None:
            forget_anonymous_lookup(request, lookup)
        return identity, failed

    async def _aidentity(
        self, request: Any, *, checked: bool = False
    ) -> tuple[Identity | None, bool]:
        if not checked and nobody_signed_in(request):
            return _NOBODY
        lookup = Lookup(request)
        try:
            identity, failed = await aidentity_of(request), False
        except Exception as exc:
            _lookup_failed(exc)
            identity, failed = None, True
        if identity is None:
            forget_anonymous_lookup(request, lookup)
        return identity, failed

    def _finish(
        self,
        request: Any,
        response: Any,
        classified: Any,
        headers: list[tuple[str, str]],
        identity: Identity | None,
        failed: bool,
        held: dict[str, str] | None,
    ) -> Any:
        if identity is None and not self.debug:
            return self._untouched(request, response, held)  # nobody to stamp, nothing to add
        if held is not None:
            _restore_validators(request, held)
        try:
            outcome = self.driver.decide(
                _method(request),
                classified,
                headers,
                identity,
                failed,
                streaming=response.streaming,
                body=lambda: response.content,
                where=f"{request.method} {request.path}" if self.debug else "",
            )
            _apply(response, outcome)
        except Exception as exc:  # never a 500 because of us
            log_stamp_failure(exc)
            return self._untouched(request, response, held)
        if outcome.stamped:
            if self.csrf:
                _hand_out_csrf_cookie(request)
            return response
        return self._untouched(request, response, held)

    @staticmethod
    def _untouched(request: Any, response: Any, held: dict[str, str] | None) -> Any:
        if held is None:
            return response
        _restore_validators(request, held)
        return _revalidate(request, response)


def _method(request: Any) -> str:
    # A HEAD is decided as its GET: Django renders its body, the server drops it.
    method: str = request.method
    return "GET" if method == "HEAD" else method


def _apply(response: Any, outcome: Outcome) -> None:
    if outcome.page is not None:
        content = response.streaming_content
        stream = stream_async if response.is_async else stream_sync
        response.streaming_content = stream(outcome.page, content)
    elif outcome.body is not None:
        response.content = outcome.body
    if outcome.headers is not None:
        response.headers = ResponseHeaders(dict(outcome.headers))


def _csrf_in_chain() -> bool:
    """Whether ``MIDDLEWARE`` lists a ``CsrfViewMiddleware`` (or a subclass): only it sends the
    CSRF cookie that the browser helper's POST needs. An entry that cannot be imported here
    counts as one."""
    for path in getattr(django_settings, "MIDDLEWARE", None) or ():
        try:
            cls = import_string(path)
        except ImportError:
            return True
        if isinstance(cls, type) and issubclass(cls, CsrfViewMiddleware):
            return True
    return False


def _hand_out_csrf_cookie(request: Any) -> None:
    """What ``get_token`` does for the CSRF cookie, without masking a token nobody reads: a
    secret the request carried is sent again (its expiry renewed), else a new one is made."""
    meta = request.META
    if "CSRF_COOKIE" in meta:
        meta["CSRF_COOKIE_NEEDS_UPDATE"] = True
    else:
        get_token(request)


def _lookup_failed(exc: Exception) -> None:
    logger.error(
        "reqio: finding the identity of request.user raised %s: %s; "
        "the response goes out without a token",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def _is_conditional(request: Any) -> bool:
    meta = request.META
    return (_IF_NONE_MATCH in meta or _IF_MODIFIED_SINCE in meta) and request.method in (
        "GET",
        "HEAD",
    )


def _set_validators_aside(request: Any) -> dict[str, str]:
    held = {name: request.META.pop(name) for name in CONDITIONAL_ENVIRON if name in request.META}
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
