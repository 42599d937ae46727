"""Driving the request core for a framework's own response object (Django's, Flask's).

The framework has already built the whole response when its middleware or hook runs: status,
headers, and either the complete body or an iterator over it. :class:`ResponseDriver` asks the
core what kind of response it is (without loading the user for anything that cannot carry a
token), then what to do, and hands back what the framework must set: the headers, and the
new body or the rewritten stream. Every rule lives in :mod:`reqio_middleware.core`; this module
only adapts the shape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from reqio_middleware.core import HOLD, PASS, RESOLVER_FAILED, REWRITTEN, Core, Page
from reqio_middleware.identity import Identity
from reqio_middleware.policy import PASS_ACTION

logger = logging.getLogger("reqio_middleware")


def log_stamp_failure(exc: Exception) -> None:
    """What a framework adapter logs when stamping a page raised: the page then goes out as the
    application made it, never as a 500."""
    logger.error(
        "reqio: could not stamp the page, it goes out without a token: %s: %s",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


__all__ = ["Headers", "Outcome", "ResponseDriver", "stream_async", "stream_sync"]

Headers = list[tuple[str, str]]


class Outcome:
    """What to set on the response: ``headers`` (``None``: leave them), and either ``body``
    (the new complete body) or ``page`` (stream the body through it), or neither.
    ``stamped``: the page carries (or, streamed, will carry) the user's token."""

    __slots__ = ("body", "headers", "page", "stamped")

    def __init__(
        self,
        headers: Headers | None,
        body: bytes | None = None,
        page: Page[str] | None = None,
        *,
        stamped: bool = False,
    ) -> None:
        self.headers = headers
        self.body = body
        self.page = page
        self.stamped = stamped


_UNTOUCHED = Outcome(None)
_CONTENT_TYPE = "Content-Type"


class ResponseDriver:
    """One per middleware/extension: the core, and how the framework's responses look."""

    __slots__ = ("core",)

    def __init__(self, core: Core) -> None:
        self.core = core

    def passes(self, method: str, status: int, content_type: str | None) -> bool:
        """Whether the response is surely no page for anyone, known from its status and its
        (first) ``Content-Type`` alone, so that its other headers need not be read: JSON, files
        and assets leave here. Never when debugging (every response then gets its reason)."""
        if self.core.debug:
            return False
        if content_type is None:
            return True  # no Content-Type, no HTML: classify() says the same of any headers
        type_only = ((_CONTENT_TYPE, content_type),)
        return self.core.classify(method, status, type_only)[0] is PASS_ACTION

    def needs_identity(self, method: str, status: int, headers: Headers) -> Any:
        """``None`` when the response is no page for anyone (no user lookup); otherwise the
        classification to pass to :meth:`decide`."""
        classified = self.core.classify(method, status, headers)
        if classified[0] is PASS_ACTION and not self.core.debug:
            return None
        return classified

    def decide(
        self,
        method: str,
        classified: Any,
        headers: Headers,
        identity: Identity | None,
        failed: bool,
        *,
        streaming: bool,
        body: Callable[[], bytes],
        where: str = "",
    ) -> Outcome:
        """What to do; ``body()`` is called only for a complete page to stamp."""
        if classified[0] is PASS_ACTION:
            identity, failed = None, False
        failure = RESOLVER_FAILED if failed else None
        page = self.core.page(method, classified, headers, identity, failure, where)
        if page.mode == PASS:
            return _UNTOUCHED if page.headers is headers else Outcome(page.headers)
        assert page.mode == HOLD
        if streaming:
            return Outcome(page.stream(), page=page, stamped=True)
        new_headers, new_body = page.whole(body())
        stamped = (page.reason or "").startswith(REWRITTEN)
        return Outcome(new_headers, body=new_body, stamped=stamped)


def stream_sync(page: Page[str], chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A body's pieces through the page's rewriter (pieces with nothing to send are skipped)."""
    for chunk in chunks:
        out = page.feed(chunk)
        if out:
            yield out
    rest = page.close()
    if rest:
        yield rest


async def stream_async(page: Page[str], chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """:func:`stream_sync` for an async iterator (Django's async streaming responses)."""
    async for chunk in chunks:
        out = page.feed(chunk)
        if out:
            yield out
    rest = page.close()
    if rest:
        yield rest
