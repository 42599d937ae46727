"""The request core: every decision about a response that does not depend on the protocol.

The front doors (the ASGI and WSGI middlewares, the Django and Flask integrations) only
translate their protocol's messages into calls on a :class:`Core` and the :class:`Page` it
opens for a response. The flow, for a ``GET`` or ``HEAD``:

1. :meth:`Core.classify` reads the status and headers once the application has started its
   response: most responses (JSON, assets, errors without HTML) are ``PASS_ACTION`` and go
   out untouched, without the identity being asked for.
2. For the rest, the front door resolves the identity with :meth:`Core.resolve_sync` or
   :meth:`Core.resolve_async` (each answers ``(identity, failure)``, never raises), then asks
   :meth:`Core.page` what to do. A page whose :attr:`Page.mode` is :data:`PASS` goes out with
   :attr:`Page.headers` (the application's own, plus the debug header when debugging). One in
   :data:`HOLD` waits for its body.
3. Content-Length has one rule for every front door: it is exact when the whole body is in
   hand when the headers must go out, that is when the application hands the body over in
   one piece (one ASGI body message without ``more_body``; a WSGI list, tuple, or first block
   as long as the declared Content-Length; an HTML file sent by path of at most
   :data:`.config.WINDOW` bytes, which is read whole): :meth:`Page.whole`. A body that comes
   in several pieces is streamed through the rewriter (:meth:`Page.stream`, :meth:`Page.feed`,
   :meth:`Page.close`) and goes out without Content-Length, so the server frames it. A length
   is never wrong, and no front door waits for a second piece before sending something.

A ``HEAD`` follows the same path as the ``GET`` it stands for, with every body byte withheld:
anonymous, its headers are the application's own; signed in, they are the GET's edits (with
the GET's exact length when the application gave the HEAD its body).

A signed-in, already-compressed HTML page is decoded, rewritten and re-encoded when the
optional ``compression`` module supports its coding; otherwise it passes untouched, with a
warning logged once.

Resolvers: ``None`` (read ``"reqio.identity"`` from the scope/environ), an ``async def``
(awaited in a cancel scope with the timeout, so no Task per call, under asyncio or trio), a
sync function marked with :func:`nonblocking` or passed with ``resolver_blocking=False``
(called inline: it reads state that is already there), or any other sync function (under
ASGI, sent to a worker thread with the timeout; under WSGI, called in the request's thread).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, AnyStr, Generic, Protocol, TypeVar

import anyio
import anyio.to_thread
from asgiref.sync import iscoroutinefunction

from . import endpoint
from .config import DEFAULT_RESOLVER_TIMEOUT, DEFAULT_WIDGET_SRC, ConfigurationError, Settings
from .identity import Identity, IdentityError, coerce_identity
from .policy import (
    ENCODED_ACTION,
    HEAD_ACTION,
    PASS_ACTION,
    Classified,
    CompressedWarning,
    classify,
    declared_length,
    edit_headers,
)
from .rewriter import HTMLRewriter, rewrite_html
from .tokens import Minter

__all__ = [
    "ANONYMOUS",
    "BEFORE",
    "CONDITIONAL_ENVIRON",
    "CONDITIONAL_HEADERS",
    "DEBUG_HEADER",
    "HOLD",
    "IDENTITY_KEY",
    "NOT_HTML",
    "PASS",
    "RESOLVER_FAILED",
    "RESOLVER_TIMEOUT",
    "REWRITTEN",
    "STREAM",
    "STREAMED",
    "Core",
    "FrontDoor",
    "Page",
    "Stream",
    "TokenRequest",
    "nonblocking",
]

logger = logging.getLogger("reqio_middleware")

#: Where the identity is read when no resolver is given (and where adapters store it).
IDENTITY_KEY = "reqio.identity"

# The states of a response, one set for every front door.
BEFORE = 0  #: nothing from the application yet
PASS = 1  #: everything goes out untouched (apart from the debug header)
HOLD = 2  #: headers held until the body shows whether it comes whole
STREAM = 3  #: edited headers sent; body pieces go through the rewriter

# Why a response left as it did: the Reqio-Debug header and the DEBUG log line.
REWRITTEN = "rewritten"
ANONYMOUS = "anonymous"
NOT_HTML = "not-html"
NO_WIDGET_TAG = "no-widget-tag"
NOT_STAMPABLE = "tag-not-stampable"
ENCODED_LEFT = "encoded; left"
REENCODED = "re-encoded"
RESOLVER_FAILED = "resolver-failed"
RESOLVER_TIMEOUT = "resolver-timeout"
MINTER_FAILED = "minter-failed"
STREAMED = "streamed"
HEAD_EDITED = "head-edited"
UNREADABLE = "body-not-readable"

#: The response header that says why, when debugging is on.
DEBUG_HEADER = "Reqio-Debug"
_DEBUG_BYTES = DEBUG_HEADER.lower().encode("latin-1")

#: Request headers that make a GET conditional: for a signed-in user they are removed before
#: the application sees them, so it renders the page instead of answering 304 for a copy that
#: was cached without the user's token. As ASGI (lowercase bytes) and WSGI environ keys.
CONDITIONAL_HEADERS = (b"if-none-match", b"if-modified-since")
CONDITIONAL_ENVIRON = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")

_TRUE = frozenset({"1", "true", "yes", "on"})
_NONBLOCKING_MARK = "__reqio_nonblocking__"

# How a resolver is called.
_DEFAULT, _INLINE, _ASYNC, _THREAD = range(4)

_ENCODED_HINT = (
    "reqio: a signed-in user's HTML page arrived compressed (Content-Encoding: %s), a coding "
    "this installation cannot decode, and went out without a token. Put the Reqio middleware "
    "inside the compression middleware (closer to the application) so that it sees the page "
    "uncompressed. This warning is logged once."
)
_CREDENTIALS_HINT = (
    "reqio: the token endpoint answered 401 to a request that carries credentials (%s): the "
    "resolver found no user. The endpoint answers before the application runs, so a user that "
    "the application's own authentication finds (a dependency, a view reading the session) is "
    "not visible to it. Use the framework's own token endpoint (Django: token_view; Flask: "
    "REQIO_TOKEN_PATH), or give the middleware a resolver that reads the session or the "
    "Authorization header itself. This warning is logged once."
)

Request = Mapping[str, Any]
Resolver = Callable[[Any], Any]
F = TypeVar("F", bound=Callable[..., Any])
App = TypeVar("App")


class Stream(Protocol):
    """What rewrites a body in pieces: :class:`.rewriter.HTMLRewriter`, or the compression
    module's wrapper around one."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


def _compression_wrap() -> Callable[[str, Stream], Stream | None] | None:
    """``compression.wrap(coding, stream)`` when that optional module is there."""
    try:
        module = importlib.import_module(".compression", __package__)
    except ImportError:
        return None
    wrap: Callable[[str, Stream], Stream | None] | None = getattr(module, "wrap", None)
    return wrap


_wrap_encoded = _compression_wrap()


def nonblocking(resolver: F) -> F:
    """Mark a sync resolver as one that never blocks, so it is called inline, not in a thread.

    For resolvers that only read what is already in the scope (as
    :data:`.adapters.starlette.user_resolver` does). A resolver that does I/O must not be
    marked: it would stall every request on the event loop.
    """
    setattr(resolver, _NONBLOCKING_MARK, True)
    return resolver


@dataclass(frozen=True)
class TokenRequest:
    """What the token endpoint reads from a request, whatever the protocol."""

    method: str
    sec_fetch_site: str | None
    origin: str | None
    scheme: str
    host: str | None
    #: names of the credential-carrying request headers present ("Cookie", "Authorization")
    credentials: tuple[str, ...] = ()


class Core:
    """The settings, the resolver and the per-middleware state every front door shares.

    ``resolver_blocking``: ``None`` to infer (an ``async def`` is awaited; a sync resolver is
    sent to a thread under ASGI unless marked with :func:`nonblocking`), ``False`` to call a
    sync resolver inline, ``True`` to always send it to a thread. ``debug``: ``None`` reads
    ``REQIO_DEBUG``; on, every GET/HEAD response carries ``Reqio-Debug: <reason>`` and the
    reason is logged at DEBUG.
    """

    __slots__ = (
        "_credentials_warned",
        "_kind",
        "debug",
        "resolver",
        "settings",
        "warn_encoded",
    )

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        resolver_blocking: bool | None = None,
        debug: bool | None = None,
        encoded_hint: str = _ENCODED_HINT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if resolver is not None and not callable(resolver):
            raise TypeError(f"resolver must be callable, not {type(resolver).__name__}")
        self.settings = settings
        self.resolver = resolver
        self._kind = _resolver_kind(resolver, resolver_blocking)
        env = os.environ if environ is None else environ
        if debug is None:
            debug = env.get("REQIO_DEBUG", "").strip().lower() in _TRUE
        self.debug = bool(debug)
        self.warn_encoded = CompressedWarning(encoded_hint)
        self._credentials_warned = False

    def __repr__(self) -> str:
        return f"Core(settings={self.settings!r}, debug={self.debug})"

    # -- eligibility --------------------------------------------------------------------------

    @staticmethod
    def classify(method: str, status: int, headers: Sequence[tuple[AnyStr, AnyStr]]) -> Classified:
        """:func:`.policy.classify`: what kind of response this is, from its start alone."""
        return classify(method, status, headers)

    def surely_anonymous(self, request: Request) -> bool:
        """A request nobody can be identified for, known without reading the response: the
        default resolver and nothing stored. Its response goes out untouched, headers unread
        (a HEAD's too: anonymous, it keeps the application's own headers)."""
        return self._kind == _DEFAULT and not self.debug and IDENTITY_KEY not in request

    def still_known(self, known: tuple[Identity | None, str | None]) -> bool:
        """Whether an identity resolved before the application ran (a conditional GET) still
        holds once it has started its response: always, but for the default resolver's
        "nobody", as the application may have stored an identity since (re-reading is free)."""
        return self._kind != _DEFAULT or known[0] is not None

    @property
    def inline(self) -> bool:
        """Whether resolving needs no await (the default resolver or a non-blocking one)."""
        return self._kind == _DEFAULT or self._kind == _INLINE

    # -- resolving ------------------------------------------------------------------------------

    def resolve_sync(self, request: Request) -> tuple[Identity | None, str | None]:
        """The identity for a request, resolved in this thread: ``(identity, None)``, or
        ``(None, reason)`` when it could not be known (already logged)."""
        if self._kind == _DEFAULT:
            return self.identify(request.get(IDENTITY_KEY))
        assert self.resolver is not None
        if self._kind == _ASYNC:
            logger.error(
                "reqio: the identity resolver is an async function; a synchronous server "
                "cannot await it: give a plain function"
            )
            return None, RESOLVER_FAILED
        try:
            value = self.resolver(request)
        except Exception as exc:
            return None, _raised(exc)
        return self._answer(value)

    async def resolve_async(self, request: Request) -> tuple[Identity | None, str | None]:
        """:meth:`resolve_sync`, under an event loop (asyncio or trio): an ``async def`` is
        awaited and a blocking resolver sent to a thread, both within ``resolver_timeout``."""
        kind = self._kind
        if kind in (_DEFAULT, _INLINE):
            return self.resolve_sync(request)
        resolver = self.resolver
        assert resolver is not None
        timeout = self.settings.resolver_timeout
        try:
            with anyio.move_on_after(timeout) as scope:
                if kind == _ASYNC:
                    value = await resolver(request)
                else:
                    value = await anyio.to_thread.run_sync(
                        resolver, request, abandon_on_cancel=True
                    )
        except Exception as exc:
            return None, _raised(exc)
        if scope.cancelled_caught:
            logger.error(
                "reqio: the identity resolver did not answer within %ss; "
                "the response goes out without a token",
                timeout,
            )
            return None, RESOLVER_TIMEOUT
        return self._answer(value)

    def _answer(self, value: object) -> tuple[Identity | None, str | None]:
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            logger.error(
                "reqio: the identity resolver returned an awaitable from a plain function; "
                "make it an `async def` (ASGI) or a plain function that returns the identity"
            )
            return None, RESOLVER_FAILED
        return self.identify(value)

    @staticmethod
    def identify(value: object) -> tuple[Identity | None, str | None]:
        """A resolver's answer as an identity; an invalid one is logged as a failure."""
        if value is None:
            return None, None
        try:
            return coerce_identity(value), None
        except IdentityError as exc:
            logger.error("reqio: the identity resolver returned an invalid identity: %s", exc)
            return None, RESOLVER_FAILED

    # -- the response ---------------------------------------------------------------------------

    def page(
        self,
        method: str,
        classified: Classified,
        headers: list[tuple[AnyStr, AnyStr]],
        identity: Identity | None,
        failure: str | None,
        where: str = "",
    ) -> Page[AnyStr]:
        """What to do with one response, now that its start and its identity are known.

        ``where`` (e.g. ``"GET /path"``) names the request in the debug log line.
        """
        action, length = classified
        if action is PASS_ACTION:
            return Page(self, headers, where, NOT_HTML)
        if failure is not None:
            return Page(self, headers, where, failure)
        if identity is None:
            return Page(self, headers, where, ANONYMOUS)
        coding = None
        if action is ENCODED_ACTION:
            coding = _header(headers, "content-encoding")
            if _wrap_encoded is None or not _wrap_encoded(coding, _NullStream()):
                self.warn_encoded(headers)
                return Page(self, headers, where, f"{ENCODED_LEFT} {coding}")
        head = method == "HEAD" or action is HEAD_ACTION
        if head:  # classify leaves a HEAD's length unread: it is read here, for signed-in only
            length = _header(headers, "content-length") or None
        return Page(
            self, headers, where, None, identity, declared_length(length), coding, head=head
        )

    def rewriter(self, identity: Identity) -> HTMLRewriter:
        """A streaming rewriter that mints for ``identity`` when it meets the first widget tag."""
        return self.settings.rewriter(identity)

    def note(self, reason: str, where: str) -> None:
        """The DEBUG log line for a response's outcome (when debugging)."""
        if self.debug:
            logger.debug("reqio: %s: %s", where or "response", reason)

    # -- the token endpoint ---------------------------------------------------------------------

    def token_refusal(self, request: TokenRequest) -> endpoint.Reply | None:
        """A refusal (wrong method, another site) given before resolving, or ``None``."""
        return endpoint.check_request(
            request.method,
            sec_fetch_site=request.sec_fetch_site,
            origin=request.origin,
            scheme=request.scheme,
            host=request.host,
        )

    def token_reply(
        self, request: TokenRequest, identity: Identity | None, failure: str | None
    ) -> endpoint.Reply:
        """The endpoint's answer once the identity is resolved: a token, 401 or 503.

        A 401 to a request that carries credentials means the resolver cannot see a user the
        application would see: logged once, with the fix.
        """
        if failure is not None:
            return endpoint.failure()
        if identity is None:
            if request.credentials and not self._credentials_warned:
                self._credentials_warned = True
                logger.warning(_CREDENTIALS_HINT, " and ".join(request.credentials))
            return endpoint.anonymous()
        return endpoint.token(self.settings, identity)


class FrontDoor(Generic[App]):
    """What every middleware class shares: its keywords, checked once, and its :class:`Core`.

    A configuration mistake raises :class:`.config.ConfigurationError` at construction, unless
    :meth:`defer_failure` says the caller cannot take it (the ASGI middleware, built lazily by
    Starlette): then the instance keeps the error in :attr:`failure` for its front door to
    report.
    """

    #: The warning for a compressed page the front door could not decode (one ``%s``).
    encoded_hint = _ENCODED_HINT

    def __init__(
        self,
        app: App,
        *,
        resolver: Resolver | None = None,
        secret: str | bytes | None = None,
        project_id: str | None = None,
        audience: str | None = None,
        widget_src: str = DEFAULT_WIDGET_SRC,
        ttl: int = 300,
        token_path: str | None = None,
        minter: Minter | None = None,
        resolver_timeout: float = DEFAULT_RESOLVER_TIMEOUT,
        resolver_blocking: bool | None = None,
        debug: bool | None = None,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.failure: ConfigurationError | None = None
        try:
            self.settings = Settings(
                secret=secret,
                project_id=project_id,
                audience=audience,
                widget_src=widget_src,
                ttl=ttl,
                token_path=token_path,
                minter=minter,
                resolver_timeout=resolver_timeout,
            )
        except ConfigurationError as exc:
            if not self.defer_failure():
                raise
            logger.error("reqio: %s is misconfigured: %s", type(self).__name__, exc)
            self.failure = exc
            return
        self.core = Core(
            self.settings,
            resolver=resolver,
            resolver_blocking=resolver_blocking,
            debug=debug,
            encoded_hint=self.encoded_hint,
        )

    def defer_failure(self) -> bool:
        """Whether a configuration error is kept for later instead of raised now."""
        return False

    def __repr__(self) -> str:
        if self.failure is not None:
            return f"{type(self).__name__}({self.app!r}, misconfigured)"
        return f"{type(self).__name__}({self.app!r}, settings={self.settings!r})"


class Page(Generic[AnyStr]):
    """One response after the decision: what goes out, and the rewriting of its body.

    ``mode`` is :data:`PASS` (send :attr:`headers` and the body untouched) or :data:`HOLD`
    (hold the headers until the body shows whether it comes whole: then :meth:`whole`, or
    :meth:`stream` and :meth:`feed`/:meth:`close` for the pieces). Headers are ``bytes`` pairs
    under ASGI, ``str`` pairs elsewhere; what is added follows the same type.
    """

    __slots__ = (
        "_rewriter",
        "_stream",
        "coding",
        "core",
        "declared",
        "head",
        "headers",
        "identity",
        "mode",
        "reason",
        "where",
    )

    def __init__(
        self,
        core: Core,
        headers: list[tuple[AnyStr, AnyStr]],
        where: str,
        reason: str | None,
        identity: Identity | None = None,
        declared: int | None = None,
        coding: str | None = None,
        *,
        head: bool = False,
    ) -> None:
        self.core = core
        self.where = where
        self.identity = identity
        #: the declared Content-Length, when there is exactly one valid value
        self.declared = declared
        self.coding = coding
        self.head = head
        self._rewriter: HTMLRewriter | None = None
        self._stream: Stream | None = None
        self.reason = reason
        self.mode = HOLD if reason is None else PASS
        self.headers: list[tuple[AnyStr, AnyStr]] = (
            headers if reason is None else self._noted(headers, reason)
        )

    def is_whole(self, first: bytes) -> bool:
        """Whether a first body piece is the whole body: as long as the declared length."""
        return self.declared is not None and len(first) >= self.declared

    def whole(self, body: bytes) -> tuple[list[tuple[AnyStr, AnyStr]], bytes]:
        """The headers and body to send for a body that is all here (exact Content-Length)."""
        assert self.identity is not None
        self.mode = PASS
        if self.head and not body:
            # A HEAD without its body: the GET's edits, but its length cannot be known.
            return self._noted(edit_headers(self.headers, None), HEAD_EDITED), b""
        new, reason = self._rewrite(body, self.identity)
        if new is None:
            return self._noted(self.headers, reason), b"" if self.head else body
        headers = edit_headers(self.headers, len(new))
        return self._noted(headers, reason), b"" if self.head else new

    def untouched(self, reason: str = UNREADABLE) -> list[tuple[AnyStr, AnyStr]]:
        """Give up on the page (its body cannot be read): the application's own headers."""
        self.mode = PASS
        return self._noted(self.headers, reason)

    def stream(self) -> list[tuple[AnyStr, AnyStr]]:
        """Start streaming: the edited headers, without Content-Length."""
        assert self.identity is not None
        self.mode = STREAM
        rewriter = self._rewriter = self.core.rewriter(self.identity)
        self._stream = rewriter if self.coding is None else self._wrapped(rewriter)
        return self._noted(edit_headers(self.headers, None), STREAMED)

    def feed(self, chunk: bytes) -> bytes:
        """A piece of a streamed body, rewritten (nothing for a HEAD)."""
        assert self._stream is not None
        out = self._stream.feed(chunk)
        return b"" if self.head else out

    def close(self) -> bytes:
        """The rest of a streamed body; logs the outcome now known (when debugging)."""
        assert self._stream is not None and self._rewriter is not None
        self.mode = PASS
        out = self._stream.close()
        if self.core.debug:
            self.core.note(_found_reason(self._rewriter, self.coding), self.where)
        return b"" if self.head else out

    def _rewrite(self, body: bytes, identity: Identity) -> tuple[bytes | None, str]:
        """The body stamped for ``identity``, or ``None`` and why not."""
        settings = self.core.settings
        minted: list[str | None] = []

        def token() -> str | None:
            minted.append(settings.mint(identity))
            return minted[0]

        if self.coding is None:
            new = rewrite_html(
                body, token, widget_src=settings.widget_src, project_id=settings.project_id
            )
            if minted and minted[0] is not None:
                return new, REWRITTEN
        else:
            rewriter = HTMLRewriter(
                token, widget_src=settings.widget_src, project_id=settings.project_id
            )
            stream = self._wrapped(rewriter)
            new = stream.feed(body) + stream.close()
            if rewriter.found and minted and minted[0] is not None:
                return new, f"{REWRITTEN}; {REENCODED} {self.coding}"
        if minted:
            return None, MINTER_FAILED
        return None, self._why_not(body) if self.core.debug else NO_WIDGET_TAG

    def _why_not(self, body: bytes) -> str:
        """Debugging only: whether a widget-like tag was there but could not be stamped."""
        if self.coding is not None:
            return NO_WIDGET_TAG
        settings = self.core.settings
        probe = HTMLRewriter("", widget_src=settings.widget_src, project_id=settings.project_id)
        probe.feed(body)
        probe.close()
        return _found_reason(probe, None)

    def _wrapped(self, rewriter: HTMLRewriter) -> Stream:
        assert self.coding is not None and _wrap_encoded is not None
        stream = _wrap_encoded(self.coding, rewriter)
        assert stream is not None  # Core.page checked that the coding is supported
        return stream

    def _noted(
        self, headers: list[tuple[AnyStr, AnyStr]], reason: str
    ) -> list[tuple[AnyStr, AnyStr]]:
        self.reason = reason
        if not self.core.debug:
            return headers
        if reason != STREAMED:
            self.core.note(reason, self.where)
        as_bytes = bool(headers) and isinstance(headers[0][0], bytes)
        added: Any = (
            (_DEBUG_BYTES, reason.encode("latin-1")) if as_bytes else (DEBUG_HEADER, reason)
        )
        return [*headers, added]


class _NullStream:
    """Stands in for a rewriter when asking the compression module whether it can decode."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


def _found_reason(rewriter: HTMLRewriter, coding: str | None) -> str:
    if rewriter.found:
        return REWRITTEN if coding is None else f"{REWRITTEN}; {REENCODED} {coding}"
    missed = getattr(rewriter, "missed", None)
    return f"{NOT_STAMPABLE}: {missed}" if missed else NO_WIDGET_TAG


def _header(headers: Sequence[tuple[AnyStr, AnyStr]], name: str) -> str:
    values = []
    for raw_name, raw_value in headers:
        text = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        if text.lower() == name:
            values.append(
                raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
            )
    return ", ".join(v.strip() for v in values)


def _raised(exc: Exception) -> str:
    logger.error(
        "reqio: the identity resolver raised %s: %s; the response goes out without a token",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    return RESOLVER_FAILED


def _resolver_kind(resolver: Resolver | None, blocking: bool | None) -> int:
    if resolver is None:
        return _DEFAULT
    if _is_async(resolver):
        return _ASYNC
    if blocking is None:
        blocking = not getattr(resolver, _NONBLOCKING_MARK, False)
    return _THREAD if blocking else _INLINE


def _is_async(resolver: Callable[..., Any]) -> bool:
    if iscoroutinefunction(resolver):
        return True
    call = getattr(resolver, "__call__", None)  # noqa: B004 - instances with async __call__
    return call is not None and iscoroutinefunction(call)
