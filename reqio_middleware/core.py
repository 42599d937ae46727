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

Who is asking is resolved by :class:`.resolving.Resolving` (inline, awaited in a cancel
scope, or in a worker thread, depending on the resolver); what a page then goes through is
:class:`.page.Page`; why it left as it did (``Reqio-Debug``) is one of :mod:`.reasons`.
A conditional GET (:data:`CONDITIONAL_HEADERS`) is resolved before the application runs: for a
signed-in user the conditional headers are removed from what the application sees, so it
renders the page (which is then rewritten, validators dropped) instead of answering 304 for a
copy cached without the user's token; anonymous revalidation is left as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, AnyStr, Generic, TypeVar

from . import endpoint
from .config import DEFAULT_RESOLVER_TIMEOUT, DEFAULT_WIDGET_SRC, ConfigurationError, Settings
from .identity import Identity
from .page import BEFORE, HOLD, PASS, STREAM, Page, Stream, compression_supports, header_text
from .policy import (
    ENCODED_ACTION,
    HEAD_ACTION,
    PASS_ACTION,
    Classified,
    CompressedWarning,
    classify,
    declared_length,
)
from .reasons import (
    ANONYMOUS,
    DEBUG_HEADER,
    ENCODED_LEFT,
    NOT_HTML,
    RESOLVER_FAILED,
    RESOLVER_TIMEOUT,
    REWRITTEN,
    STREAMED,
)
from .resolving import IDENTITY_KEY, Resolved, Resolver, Resolving, never, nonblocking
from .rewriter import HTMLRewriter
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
    "Resolved",
    "Stream",
    "TokenRequest",
    "nonblocking",
]

logger = logging.getLogger("reqio_middleware")

#: Request headers that make a GET conditional: for a signed-in user they are removed before
#: the application sees them, so it renders the page instead of answering 304 for a copy that
#: was cached without the user's token. As ASGI (lowercase bytes) and WSGI environ keys.
CONDITIONAL_HEADERS = (b"if-none-match", b"if-modified-since")
CONDITIONAL_ENVIRON = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")

_TRUE = frozenset({"1", "true", "yes", "on"})

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

_NOT_MODIFIED_HINT = (
    "reqio: the application answered 304 Not Modified to a signed-in user's conditional "
    "request, so the browser keeps a copy of the page cached without a token. The identity "
    "was stored under 'reqio.identity' only while the application ran; to let the "
    "middleware see it before (and remove the conditional headers), store it in an outer "
    "layer or give the middleware a resolver that reads the session. Logged once."
)

Request = Mapping[str, Any]
App = TypeVar("App")


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


class Core(Resolving):
    """The settings, the resolver and the per-middleware state every front door shares.

    ``resolver_blocking``: ``None`` to infer (an ``async def`` is awaited; a sync resolver is
    sent to a thread under ASGI unless marked with :func:`nonblocking`), ``False`` to call a
    sync resolver inline, ``True`` to always send it to a thread. ``debug``: ``None`` reads
    ``REQIO_DEBUG``; on, every GET/HEAD response carries ``Reqio-Debug: <reason>`` (see
    :mod:`.reasons`) and the reason is logged at DEBUG.
    """

    __slots__ = (
        "_credentials_warned",
        "_not_modified_warned",
        "debug",
        "settings",
        "surely_anonymous",
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
        super().__init__(resolver, resolver_blocking, settings.resolver_timeout)
        self.settings = settings
        env = os.environ if environ is None else environ
        if debug is None:
            debug = env.get("REQIO_DEBUG", "").strip().lower() in _TRUE
        self.debug = bool(debug)
        #: ``request -> True`` for a request nobody can be identified for, known without
        #: reading the response (the default resolver with nothing stored, or a resolver's own
        #: ``anonymous`` test, see :func:`nonblocking`); never when debugging, as every page
        #: then carries its reason. Its response goes out untouched, headers unread (a HEAD's
        #: too: anonymous, it keeps the application's own headers). An attribute, not a
        #: method: it runs for every request.
        self.surely_anonymous: Callable[[Request], bool] = never if self.debug else self.nobody
        self.warn_encoded = CompressedWarning(encoded_hint)
        self._credentials_warned = False
        self._not_modified_warned = False

    def __repr__(self) -> str:
        return f"Core(settings={self.settings!r}, debug={self.debug})"

    # -- eligibility --------------------------------------------------------------------------

    #: :func:`.policy.classify`: what kind of response this is, from its start alone.
    classify = staticmethod(classify)

    def still_known(self, known: Resolved) -> bool:
        """Whether an identity resolved before the application ran (a conditional GET) still
        holds once it has started its response: always, but for the default resolver's
        "nobody", as the application may have stored an identity since (re-reading is free)."""
        return not self.reads_request or known[0] is not None

    def untouched(self, identity: Identity | None) -> bool:
        """Whether a resolved response goes out as the application sent it, no :class:`Page`
        needed: nobody to give a token to, and no debug header to add."""
        return identity is None and not self.debug

    # -- resolving (see :class:`.resolving.Resolving`) -------------------------------------------

    def not_modified(self, request: Request) -> None:
        """The application answered 304 to a conditional GET. With the default resolver the
        identity can only be read once the application has stored it, too late to remove the
        conditional headers: if it is there now, that user keeps a copy cached without a
        token. Logged once, with the fix. (Any other resolver was asked before the app ran.)"""
        if not self._not_modified_warned and request.get(IDENTITY_KEY) is not None:
            self._not_modified_warned = True
            logger.warning(_NOT_MODIFIED_HINT)

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
            coding = header_text(headers, "content-encoding")
            if not compression_supports(coding):
                self.warn_encoded(headers)
                return Page(self, headers, where, f"{ENCODED_LEFT} {coding}")
        head = method == "HEAD" or action is HEAD_ACTION
        if head:  # classify leaves a HEAD's length unread: it is read here, for signed-in only
            length = header_text(headers, "content-length") or None
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
