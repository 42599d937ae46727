"""ReqioMiddleware at the ASGI message level, in process."""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqio_middleware import nonblocking, page
from reqio_middleware.asgi import ReqioMiddleware
from reqio_middleware.config import ConfigurationError
from reqio_middleware.identity import Identity
from reqio_middleware.rewriter import rewrite_html

PROJECT = "proj_abc123"
TAG = b'<script src="https://reqio.app/widget.js" data-project-id="proj_abc123" async></script>'
PAGE = (
    b"<!doctype html><html><head><title>t</title>"
    + TAG
    + b"</head><body>"
    + b"x" * 200
    + (b"</body></html>")
)
PLAIN_PAGE = b"<!doctype html><html><body>no widget here</body></html>"
HTML = (b"content-type", b"text/html; charset=utf-8")
USER = {"sub": 42, "email": "u@example.com"}

Message = dict[str, Any]


def fake_minter(identity: Identity) -> str:
    return f"tok-{identity.sub}"


def expected(page: bytes, token: str = "tok-42") -> bytes:
    return rewrite_html(page, token, project_id=PROJECT)


def start(*headers: tuple[bytes, bytes], status: int = 200, **extra: Any) -> Message:
    return {"type": "http.response.start", "status": status, "headers": list(headers), **extra}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def chunked(page: bytes, cuts: list[int]) -> list[Message]:
    points = sorted({c for c in cuts if 0 < c < len(page)})
    pieces = [page[a:b] for a, b in zip([0, *points], [*points, len(page)], strict=True)]
    return [body(p, more=i < len(pieces) - 1) for i, p in enumerate(pieces)]


def cl(n: int) -> tuple[bytes, bytes]:
    return (b"content-length", str(n).encode())


def scripted(
    messages: list[Message], identity: object = USER, *, raise_after: bool = False
) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if identity is not None:
            scope["reqio.identity"] = identity
        for message in messages:
            await send(message)
        if raise_after:
            raise RuntimeError("boom")

    return app


def middleware(app: Any, **kwargs: Any) -> ReqioMiddleware:
    kwargs.setdefault("minter", fake_minter)
    kwargs.setdefault("project_id", PROJECT)
    return ReqioMiddleware(app, **kwargs)


def call(mw: Any, *, method: str = "GET", scope: dict[str, Any] | None = None) -> list[Message]:
    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    full = {"type": "http", "method": method, "path": "/", "headers": [], **(scope or {})}
    asyncio.run(mw(full, receive, send))
    return out


def body_of(out: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")


def headers_of(out: list[Message]) -> list[tuple[bytes, bytes]]:
    (first,) = [m for m in out if m["type"] == "http.response.start"]
    return list(first["headers"])


def header(out: list[Message], name: bytes) -> list[bytes]:
    return [v for n, v in headers_of(out) if n.lower() == name]


def assert_complete(out: list[Message]) -> None:
    """One start, bodies, exactly one final body, and a Content-Length that is right or absent."""
    kinds = [m["type"] for m in out if m["type"].startswith("http.response.")]
    assert kinds.count("http.response.start") == 1
    finals = [m for m in out if m["type"] == "http.response.body" and not m.get("more_body")]
    assert len(finals) == 1
    lengths = header(out, b"content-length")
    assert lengths in ([], [str(len(body_of(out))).encode()])


class Counter:
    def __init__(self, value: object = USER) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, scope: Any) -> object:
        self.calls += 1
        return self.value


# --- construction -------------------------------------------------------------------------


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQIO_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="REQIO_SECRET"):
        ReqioMiddleware(scripted([]), project_id=PROJECT)


def test_missing_audience_names_the_variables(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.delenv("REQIO_PROJECT_ID", raising=False)
    monkeypatch.delenv("REQIO_AUDIENCE", raising=False)
    with pytest.raises(ConfigurationError, match=r"REQIO_PROJECT_ID.*REQIO_AUDIENCE") as info:
        ReqioMiddleware(scripted([]), secret=secret)
    assert isinstance(info.value, ValueError)
    assert secret not in str(info.value)


def test_environment_is_read_and_repr_hides_the_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    import jwt

    monkeypatch.setenv("REQIO_SECRET", secret)
    monkeypatch.setenv("REQIO_PROJECT_ID", PROJECT)
    monkeypatch.delenv("REQIO_AUDIENCE", raising=False)
    mw = ReqioMiddleware(scripted([start(HTML), body(PAGE)]))
    assert secret not in repr(mw) and secret not in repr(mw.settings)
    (token,) = [t for t in body_of(call(mw)).split(b'"') if t.startswith(b"eyJ")]
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], audience=f"https://reqio.app/p/{PROJECT}"
    )
    assert claims["sub"] == "42"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("REQIO_AUDIENCE", "https://env.example/aud")
    mw = ReqioMiddleware(scripted([]), secret=secret, audience="https://arg.example/aud")
    assert mw.settings.minter.audience == "https://arg.example/aud"  # type: ignore[attr-defined]


def test_minter_needs_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQIO_SECRET", "REQIO_PROJECT_ID", "REQIO_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    assert ReqioMiddleware(scripted([]), minter=fake_minter).settings.minter is fake_minter


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"widget_src": "http://reqio.app/widget.js"}, "widget_src"),
        ({"widget_src": "https:///widget.js"}, "widget_src"),
        ({"widget_src": "reqio.app/widget.js"}, "widget_src"),
        ({"widget_src": "https://reqio.app"}, "widget_src"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"token_path": "_reqio/token"}, "token_path"),
        ({"resolver_timeout": 0}, "resolver_timeout"),
        ({"resolver_timeout": float("nan")}, "resolver_timeout"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        middleware(scripted([]), **kwargs)


def test_scheme_relative_widget_src_is_accepted() -> None:
    assert middleware(scripted([]), widget_src="//reqio.app/widget.js").settings.widget_src


# --- pass-through ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_other_scopes_reach_the_app_untouched(kind: str) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        pass

    scope = {"type": kind}
    asyncio.run(middleware(app)(scope, receive, send))
    assert seen[0] is scope and seen[1] is receive and seen[2] is send


def test_non_get_requests_get_the_servers_send() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(send)

    async def send(message: Message) -> None:
        pass

    async def receive() -> Message:
        return {}

    asyncio.run(middleware(app)({"type": "http", "method": "POST"}, receive, send))
    assert seen == [send]


def test_json_passes_byte_for_byte() -> None:
    messages = [
        start((b"content-type", b"application/json"), cl(2), (b"etag", b'"1"')),
        body(b"{}"),
    ]
    resolver = Counter()
    assert call(middleware(scripted(messages), resolver=resolver)) == messages
    assert resolver.calls == 0


def test_anonymous_page_passes_byte_for_byte() -> None:
    messages = [start(HTML, cl(len(PAGE)), (b"etag", b'"1"')), body(PAGE)]
    assert call(middleware(scripted(messages, identity=None))) == messages


def test_anonymous_streamed_page_passes_byte_for_byte() -> None:
    messages = [start(HTML), *chunked(PAGE, [10, 50, 100])]
    assert call(middleware(scripted(messages, identity=None))) == messages


@pytest.mark.parametrize("streamed", [False, True])
def test_page_without_widget_passes_and_nothing_is_minted(streamed: bool) -> None:
    minted: list[Identity] = []
    resolver = Counter()
    if streamed:
        messages = [start(HTML), *chunked(PLAIN_PAGE, [20])]
    else:
        messages = [start(HTML, cl(len(PLAIN_PAGE))), body(PLAIN_PAGE)]
    mw = middleware(scripted(messages), resolver=resolver, minter=lambda i: minted.append(i) or "t")
    out = call(mw)
    assert body_of(out) == PLAIN_PAGE and minted == [] and resolver.calls <= 1
    if not streamed:
        assert out == messages  # known in full: headers untouched too


def test_anonymous_page_is_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    import reqio_middleware.config as config
    import reqio_middleware.page as page

    def fail(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("an anonymous page was scanned")

    monkeypatch.setattr(page, "rewrite_html", fail)
    monkeypatch.setattr(page, "HTMLRewriter", fail)
    monkeypatch.setattr(config, "HTMLRewriter", fail)
    messages = [start(HTML), *chunked(PAGE, [40])]
    assert call(middleware(scripted(messages, identity=None))) == messages
    assert call(middleware(scripted([start(HTML), body(PAGE)], identity=None)))[1]["body"] == PAGE


def test_passing_forwards_the_apps_own_messages() -> None:
    # Pass-through is zero-copy: the server gets the very objects the app sent.
    for messages in (
        [start((b"content-type", b"application/json"), cl(2)), body(b"{}")],
        [start(HTML, cl(len(PAGE))), body(PAGE)],
    ):
        out = call(middleware(scripted(messages, identity=None)))
        assert len(out) == len(messages)
        assert all(got is sent for got, sent in zip(out, messages, strict=True))


def test_identity_stored_as_none_is_anonymous() -> None:
    messages = [start(HTML, cl(len(PAGE))), body(PAGE)]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["reqio.identity"] = None
        for message in messages:
            await send(message)

    assert call(middleware(app)) == messages


def test_invalid_stored_identity_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = [start(HTML), *chunked(PAGE, [40])]
    assert call(middleware(scripted(messages, identity="user-42"))) == messages
    (message,) = errors(caplog)
    assert "invalid identity" in message


def test_compressed_html_passes_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    messages = [start(HTML, (b"content-encoding", b"gzip, br")), body(b"\x1f\x8b...")]
    mw = middleware(scripted(messages))
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        assert call(mw) == messages
        assert call(mw) == messages
    warnings = [r for r in caplog.records if "inside the compression" in r.getMessage()]
    assert len(warnings) == 1 and "gzip" in warnings[0].getMessage()


# --- rewriting and Content-Length -----------------------------------------------------------


def test_single_body_gets_exact_length_and_header_edits() -> None:
    messages = [
        start(HTML, cl(len(PAGE)), (b"etag", b'"1"'), (b"cache-control", b"public, max-age=60")),
        body(PAGE),
    ]
    out = call(middleware(scripted(messages)))
    assert body_of(out) == expected(PAGE) != PAGE
    assert header(out, b"content-length") == [str(len(expected(PAGE))).encode()]
    assert header(out, b"etag") == []
    assert header(out, b"cache-control") == [b"private, no-store, max-age=60"]
    assert header(out, b"vary") == [b"Cookie, Authorization"]
    assert_complete(out)


def test_single_body_without_length_gets_one() -> None:
    out = call(middleware(scripted([start(HTML), body(PAGE)])))
    assert header(out, b"content-length") == [str(len(expected(PAGE))).encode()]


def test_body_in_pieces_streams_without_length_even_when_declared() -> None:
    # One rule for every front door: exact only when the first piece is the whole body.
    page = PAGE + b"z" * 200_000 + TAG  # several messages, as Django sends anything over 64 KiB
    out = call(middleware(scripted([start(HTML, cl(len(page))), *chunked(page, [5, 60, 65536])])))
    assert body_of(out) == expected(page)
    assert header(out, b"content-length") == []
    assert header(out, b"cache-control") == [b"private, no-store"]
    assert_complete(out)


def test_short_body_in_pieces_is_sent_as_it_comes() -> None:
    messages = [start(HTML, cl(len(PAGE))), *chunked(PAGE, [5, 60, 90])]
    sent: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["reqio.identity"] = USER
        for message in messages:
            await send(message)
            sent.append(len(out))

    out: list[Message] = []

    async def server_send(message: Message) -> None:
        out.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/"}
    asyncio.run(middleware(app)(scope, receive, server_send))
    # Every body message the app sends reaches the server before the app sends the next one.
    assert sent == [0, 2, 3, 4, 5]
    assert body_of(out) == expected(PAGE)
    assert_complete(out)


def test_open_ended_stream_has_no_length() -> None:
    out = call(middleware(scripted([start(HTML), *chunked(PAGE, [5, 60, 90])])))
    assert body_of(out) == expected(PAGE)
    assert header(out, b"content-length") == []
    assert header(out, b"cache-control") == [b"private, no-store"]
    assert_complete(out)


def test_long_page_streams_without_length() -> None:
    page = PAGE + b"<p>" + b"y" * 300_000 + b"</p>" + TAG
    out = call(
        middleware(scripted([start(HTML, cl(len(page))), *chunked(page, [90_000, 200_000])]))
    )
    assert body_of(out) == expected(page)
    assert body_of(out).count(b"tok-42") == 2
    assert header(out, b"content-length") == []
    assert_complete(out)


def test_mixed_case_headers_django_style() -> None:
    messages = [
        start(
            (b"Content-Type", b"text/html; charset=utf-8"),
            (b"Content-Length", str(len(PAGE)).encode()),
            (b"ETag", b'"x"'),
            (b"Set-Cookie", b"a=1"),
        ),
        body(PAGE),
    ]
    out = call(middleware(scripted(messages)))
    assert body_of(out) == expected(PAGE)
    assert header(out, b"content-length") == [str(len(expected(PAGE))).encode()]
    assert header(out, b"etag") == []
    assert (b"Set-Cookie", b"a=1") in headers_of(out)


def test_key_less_final_body_message() -> None:
    out = call(
        middleware(scripted([start(HTML), body(PAGE, more=True), {"type": "http.response.body"}]))
    )
    assert body_of(out) == expected(PAGE)
    assert_complete(out)


def test_anonymous_get_goes_out_without_its_headers_being_read(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing under 'reqio.identity' and the default resolver: nobody to give a token to,
    # so not even the decision runs; compressed HTML does not warn (no token is lost).
    from reqio_middleware import core

    def no_decision(*args: object) -> object:
        raise AssertionError("the headers of an anonymous GET were read")

    monkeypatch.setattr(core.Core, "classify", staticmethod(no_decision))
    json = (b"content-type", b"application/json")
    for method in ("GET", "HEAD"):
        for headers in ([HTML], [HTML, (b"content-encoding", b"gzip")], [json]):
            messages = [start(*headers), body(PAGE)]
            with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
                out = call(middleware(scripted(messages, identity=None)), method=method)
            assert all(a is b for a, b in zip(out, messages, strict=True))
    assert caplog.records == []


@pytest.mark.parametrize("with_body", [True, False])
def test_anonymous_head_keeps_the_apps_headers(with_body: bool) -> None:
    resolver = Counter(None)
    messages = [
        start(HTML, cl(len(PAGE)), (b"cache-control", b"public, max-age=60"), (b"etag", b'"1"')),
        body(PAGE if with_body else b""),
    ]
    out = call(middleware(scripted(messages, identity=None), resolver=resolver), method="HEAD")
    assert out == messages
    assert resolver.calls == 1  # asked, so that a signed-in HEAD can match its GET


def test_signed_in_head_with_its_body_has_the_gets_headers_and_no_body() -> None:
    messages = [start(HTML, cl(len(PAGE)), (b"etag", b'"1"')), body(PAGE)]
    resolver = Counter()
    head = call(middleware(scripted(messages), resolver=resolver), method="HEAD")
    get = call(middleware(scripted(messages), resolver=Counter()))
    assert body_of(head) == b""
    assert headers_of(head) == headers_of(get)
    assert header(head, b"content-length") == [str(len(expected(PAGE))).encode()]
    assert resolver.calls == 1


def test_signed_in_head_without_body_gets_the_edits_and_keeps_the_apps_length() -> None:
    messages = [start(HTML, cl(len(PAGE)), (b"etag", b'"1"')), body(b"")]
    out = call(middleware(scripted(messages), resolver=Counter()), method="HEAD")
    assert body_of(out) == b""
    assert header(out, b"content-length") == [str(len(PAGE)).encode()]
    assert header(out, b"etag") == []
    assert header(out, b"cache-control") == [b"private, no-store"]


def test_streamed_signed_in_head_sends_no_body_bytes() -> None:
    messages = [start(HTML), *chunked(PAGE, [10, 100])]
    out = call(middleware(scripted(messages)), method="HEAD")
    assert body_of(out) == b""
    assert header(out, b"cache-control") == [b"private, no-store"]
    assert_complete(out)


chunkings = st.lists(st.integers(min_value=1, max_value=len(PAGE) - 1), max_size=12)


@settings(max_examples=150)
@given(
    cuts=chunkings,
    declared=st.booleans(),
    empties=st.booleans(),
    noise=st.sets(st.integers(0, 12)),
    identified=st.booleans(),
)
def test_any_message_sequence_gives_the_rewritten_whole(
    cuts: list[int], declared: bool, empties: bool, noise: set[int], identified: bool
) -> None:
    messages = chunked(PAGE, cuts)
    if empties:
        messages = [
            m
            for pair in zip([body(b"", True)] * len(messages), messages, strict=True)
            for m in pair
        ]
    # messages of a kind we do not know, anywhere before the final body
    for at in sorted(noise, reverse=True):
        if at < len(messages):
            messages.insert(at, {"type": "x.unknown", "at": at})
    head = start(HTML, cl(len(PAGE))) if declared else start(HTML)
    sent = [head, *messages]
    out = call(middleware(scripted(sent, identity=USER if identified else None)))
    if identified:
        assert body_of(out) == expected(PAGE)
        assert_complete(out)
    else:
        assert out == sent
    unknown = [m for m in out if m["type"] == "x.unknown"]
    assert unknown == [m for m in sent if m["type"] == "x.unknown"]  # all of them, in order


# --- the resolver ---------------------------------------------------------------------------


def test_resolver_is_called_once_for_a_streamed_page_with_two_tags() -> None:
    resolver = Counter()
    page = PAGE + TAG
    out = call(middleware(scripted([start(HTML), *chunked(page, [20, 80])]), resolver=resolver))
    assert body_of(out).count(b"tok-42") == 2
    assert resolver.calls == 1


def test_resolver_sees_what_the_app_stored() -> None:
    def resolver(scope: Any) -> object:
        return {"sub": scope["user_id"]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["user_id"] = "alice"
        await send(start(HTML))
        await send(body(PAGE))

    assert b"tok-alice" in body_of(call(middleware(app, resolver=resolver)))


def test_async_resolver_is_awaited() -> None:
    async def resolver(scope: Any) -> object:
        await asyncio.sleep(0)
        return Identity(sub=7)

    out = call(middleware(scripted([start(HTML), body(PAGE)]), resolver=resolver))
    assert body_of(out) == expected(PAGE, "tok-7")


def test_async_callable_object_resolver_is_awaited() -> None:
    class Resolver:
        async def __call__(self, scope: Any) -> object:
            return {"sub": 8}

    out = call(middleware(scripted([start(HTML), body(PAGE)]), resolver=Resolver()))
    assert body_of(out) == expected(PAGE, "tok-8")


def test_sync_resolver_runs_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    def resolver(scope: Any) -> object:
        threads.append(threading.get_ident())
        return USER

    loop_threads: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        loop_threads.append(threading.get_ident())
        await send(start(HTML))
        await send(body(PAGE))

    assert body_of(call(middleware(app, resolver=resolver))) == expected(PAGE)
    assert len(threads) == 1 and threads[0] != loop_threads[0]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name == "reqio_middleware"
    ]


def test_resolver_raising_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture, secret: str
) -> None:
    def resolver(scope: Any) -> object:
        raise LookupError("session store down")

    messages = [start(HTML, cl(len(PAGE))), body(PAGE)]
    mw = ReqioMiddleware(scripted(messages), resolver=resolver, secret=secret, project_id=PROJECT)
    assert call(mw) == messages
    (message,) = errors(caplog)
    assert "LookupError" in message and "session store down" in message


@pytest.mark.parametrize("garbage", [42, "alice", {"user": 1}, {"sub": ""}, [1]])
def test_resolver_returning_garbage_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture, garbage: object
) -> None:
    messages = [start(HTML), *chunked(PAGE, [40])]
    assert call(middleware(scripted(messages), resolver=lambda scope: garbage)) == messages
    (message,) = errors(caplog)
    assert "invalid identity" in message


def test_identity_too_large_for_a_token_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture, secret: str
) -> None:
    huge = {"sub": "u1", "traits": {"notes": "x" * 5000}}  # over 4 KB of claims
    messages = [start(HTML), body(PAGE)]
    mw = middleware(scripted(messages), resolver=lambda scope: huge, minter=None, secret=secret)
    assert call(mw) == messages
    (message,) = errors(caplog)
    assert "too large" in message


def test_minter_failure_leaves_the_page_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    def minter(identity: Identity) -> str:
        raise ValueError("no")

    messages = [start(HTML), body(PAGE)]
    assert call(middleware(scripted(messages), minter=minter)) == messages
    assert len(errors(caplog)) == 1


@pytest.fixture
def never() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # release the resolver thread left hanging by the test


def test_hanging_sync_resolver_times_out(
    caplog: pytest.LogCaptureFixture, never: threading.Event
) -> None:
    def resolver(scope: Any) -> object:
        never.wait()
        return USER

    messages = [start(HTML), body(PAGE)]
    mw = middleware(scripted(messages), resolver=resolver, resolver_timeout=0.05)
    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    async def receive() -> Message:
        return {}

    async def main() -> None:
        await mw({"type": "http", "method": "GET", "path": "/"}, receive, send)
        # The response is complete while the resolver thread still hangs; release it so that
        # asyncio.run can shut its executor down.
        assert out == messages
        never.set()

    asyncio.run(main())
    (message,) = errors(caplog)
    assert "did not answer within 0.05s" in message


def test_hanging_async_resolver_times_out_and_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled: list[bool] = []

    async def resolver(scope: Any) -> object:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return USER

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start(HTML))
        await send(body(PAGE))
        await asyncio.sleep(0)  # let the cancellation land before the loop closes

    out = call(middleware(app, resolver=resolver, resolver_timeout=0.05))
    assert body_of(out) == PAGE
    assert cancelled == [True]
    assert len(errors(caplog)) == 1


# --- other messages -------------------------------------------------------------------------


def test_debug_message_before_start_is_forwarded_first() -> None:
    debug = {"type": "http.response.debug", "info": {"template": "x"}}
    out = call(middleware(scripted([debug, start(HTML), body(PAGE)])))
    assert out[0] is debug
    assert body_of(out) == expected(PAGE)


@pytest.mark.parametrize("declared", [True, False])
def test_trailers_follow_the_final_body(declared: bool) -> None:
    trailers = {
        "type": "http.response.trailers",
        "headers": [(b"x-check", b"1")],
        "more_trailers": False,
    }
    head = start(HTML, cl(len(PAGE)), trailers=True) if declared else start(HTML, trailers=True)
    out = call(middleware(scripted([head, *chunked(PAGE, [50]), trailers])))
    assert out[0]["trailers"] is True
    assert out[-1] is trailers
    assert body_of(out) == expected(PAGE)


def test_unknown_messages_are_forwarded_in_order() -> None:
    hint = {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
    custom = {"type": "x.custom", "n": 1}
    out = call(
        middleware(scripted([start(HTML), hint, body(PAGE[:50], True), custom, body(PAGE[50:])]))
    )
    kinds = [m["type"] for m in out]
    assert kinds.index("http.response.early_hint") < kinds.index("x.custom")
    assert hint in out and custom in out
    assert body_of(out) == expected(PAGE)


def test_unknown_messages_are_forwarded_untouched_when_passing() -> None:
    custom = {"type": "x.custom", "n": 1}
    messages = [start((b"content-type", b"text/plain")), custom, body(b"hi")]
    assert call(middleware(scripted(messages))) == messages


def test_zerocopysend_in_a_held_page_replays_it_untouched() -> None:
    zero = {"type": "http.response.zerocopysend", "file": 3, "more_body": False}
    messages = [start(HTML, cl(len(PAGE))), zero]
    assert call(middleware(scripted(messages))) == messages


def test_zerocopysend_in_a_stream_keeps_the_byte_order() -> None:
    zero = {"type": "http.response.zerocopysend", "file": 3, "more_body": True}
    messages = [start(HTML), body(PAGE[:30], True), body(PAGE[30:], True), zero, body(b"end")]
    out = call(middleware(scripted(messages)))
    assert out.index(zero) == len(out) - 2
    before = b"".join(
        m["body"] for m in out[: out.index(zero)] if m["type"] == "http.response.body"
    )
    assert before == expected(PAGE)


@pytest.mark.parametrize("size", [0, 300_000])
def test_pathsend_html_gets_its_token(tmp_path: Path, size: int) -> None:
    page = PAGE + b"z" * size + TAG
    path = tmp_path / "index.html"
    path.write_bytes(page)
    pathsend = {"type": "http.response.pathsend", "path": str(path)}
    out = call(middleware(scripted([start(HTML, cl(len(page))), pathsend])))
    assert body_of(out) == expected(page)
    assert all(m["type"] != "http.response.pathsend" for m in out)
    assert_complete(out)
    if size:
        assert max(len(m["body"]) for m in out if "body" in m) <= 64 * 1024 + 400
        assert header(out, b"content-length") == []


def test_pathsend_anonymous_is_forwarded(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    path.write_bytes(PAGE)
    messages = [start(HTML, cl(len(PAGE))), {"type": "http.response.pathsend", "path": str(path)}]
    assert call(middleware(scripted(messages, identity=None))) == messages


def test_pathsend_of_a_missing_file_is_forwarded(tmp_path: Path) -> None:
    messages = [start(HTML), {"type": "http.response.pathsend", "path": str(tmp_path / "nope")}]
    assert call(middleware(scripted(messages))) == messages


# --- failures of the application ------------------------------------------------------------


def test_app_raising_before_start_propagates_with_nothing_sent() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    out: list[Message] = []
    with pytest.raises(RuntimeError, match="boom"):
        out = call(middleware(app))
    assert out == []


def test_app_raising_while_held_releases_what_it_sent() -> None:
    trailer = {"type": "http.response.trailers", "headers": [], "more_trailers": False}
    messages = [start(HTML, cl(len(PAGE))), trailer]
    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    async def receive() -> Message:
        return {}

    mw = middleware(scripted(messages, raise_after=True))
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(mw({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert out == messages


def test_app_raising_mid_stream_flushes_the_rewriter() -> None:
    messages = [start(HTML), body(PAGE[:40], True)]
    with pytest.raises(RuntimeError, match="boom"):
        out = call(middleware(scripted(messages, raise_after=True)))
    out = call(middleware(scripted(messages)))
    assert body_of(out) == PAGE[:40]
    assert header(out, b"cache-control") == [b"private, no-store"]


def test_app_returning_before_its_body_releases_what_it_sent() -> None:
    messages = [start(HTML, cl(len(PAGE)))]
    assert call(middleware(scripted(messages))) == messages


def test_state_is_per_request() -> None:
    mw = middleware(scripted([start(HTML), *chunked(PAGE, [70])]))

    async def both() -> list[list[Message]]:
        outs: list[list[Message]] = [[], []]

        async def run(i: int) -> None:
            async def send(message: Message) -> None:
                outs[i].append(message)
                await asyncio.sleep(0)

            async def receive() -> Message:
                return {}

            await mw({"type": "http", "method": "GET", "path": "/"}, receive, send)

        await asyncio.gather(run(0), run(1))
        return outs

    for out in asyncio.run(both()):
        assert body_of(out) == expected(PAGE)


# --- Starlette ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_works_with_starlette_add_middleware() -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def page(request: Any) -> HTMLResponse:
        request.scope["reqio.identity"] = USER
        return HTMLResponse(PAGE.decode())

    async def data(request: Any) -> JSONResponse:
        return JSONResponse({"a": 1})

    app = Starlette(routes=[Route("/", page), Route("/data", data)])
    app.add_middleware(ReqioMiddleware, minter=fake_minter, project_id=PROJECT)
    with TestClient(app) as client:
        response = client.get("/")
        assert response.content == expected(PAGE)
        assert response.headers["content-length"] == str(len(expected(PAGE)))
        assert client.get("/data").json() == {"a": 1}


def test_client_disconnect_mid_stream_propagates_quietly(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == 2:
            raise OSError("client went away")
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    mw = middleware(scripted([start(HTML), *chunked(PAGE, [40, 120, 200])]))
    with pytest.raises(OSError, match="client went away"):
        asyncio.run(mw({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert [r for r in caplog.records if r.name == "reqio_middleware"] == []


# --- resolvers on the fast path: inline, no thread and no task -----------------------------


def where() -> tuple[int, object]:
    return threading.get_ident(), asyncio.current_task()


def recording_resolver(kind: str, seen: list[tuple[int, object]]) -> tuple[Any, dict[str, Any]]:
    """A resolver of the given kind that records where it runs, and the options it needs."""

    def plain(scope: Any) -> object:
        seen.append(where())
        return USER

    async def coroutine(scope: Any) -> object:
        seen.append(where())
        return USER

    if kind == "@nonblocking":
        return nonblocking(plain), {}
    if kind == "resolver_blocking=False":
        return plain, {"resolver_blocking": False}
    return coroutine, {}


@pytest.mark.parametrize("kind", ["@nonblocking", "resolver_blocking=False", "async def"])
def test_resolver_runs_in_the_apps_own_task(kind: str) -> None:
    seen: list[tuple[int, object]] = []
    resolver, options = recording_resolver(kind, seen)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(where())
        await send(start(HTML))
        await send(body(PAGE))

    out = call(middleware(app, resolver=resolver, **options))
    assert body_of(out) == expected(PAGE)
    app_where, resolver_where = seen
    assert resolver_where == app_where  # same thread, same task: nothing was scheduled


def test_user_resolver_is_called_inline() -> None:
    from reqio_middleware.adapters.starlette import make_user_resolver

    class User:
        is_authenticated = True
        identity = "alice"

    seen: list[tuple[int, object]] = []

    def to_identity(user: Any) -> object:
        seen.append(where())
        return {"sub": user.identity}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["user"] = User()
        seen.append(where())
        await send(start(HTML))
        await send(body(PAGE))

    out = call(middleware(app, resolver=make_user_resolver(to_identity)))
    assert body_of(out) == expected(PAGE, "tok-alice")
    app_where, resolver_where = seen
    assert resolver_where == app_where


def test_resolver_blocking_true_sends_even_a_marked_resolver_to_a_thread() -> None:
    threads: list[int] = []

    @nonblocking
    def resolver(scope: Any) -> object:
        threads.append(threading.get_ident())
        return USER

    call(middleware(scripted([start(HTML), body(PAGE)], identity=None), resolver=resolver))
    call(
        middleware(
            scripted([start(HTML), body(PAGE)], identity=None),
            resolver=resolver,
            resolver_blocking=True,
        )
    )
    inline, threaded = threads
    assert inline == threading.get_ident() and threaded != inline


# --- a conditional GET by a signed-in user renders the page ---------------------------------


def revalidating_app(seen: list[list[bytes]]) -> Callable[..., Awaitable[None]]:
    """An app that answers 304 when asked If-None-Match, as StaticFiles does."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        names = [bytes(n).lower() for n, _ in scope["headers"]]
        seen.append(names)
        if b"if-none-match" in names or b"if-modified-since" in names:
            await send(start((b"etag", b'"1"'), status=304))
            await send(body(b""))
            return
        await send(start(HTML, (b"etag", b'"1"')))
        await send(body(PAGE))

    return app


@pytest.mark.parametrize("name", [b"if-none-match", b"if-modified-since"])
def test_conditional_get_by_a_signed_in_user_is_rendered(name: bytes) -> None:
    seen: list[list[bytes]] = []
    resolver = Counter()
    headers = [(name, b'"1"'), (b"accept", b"text/html")]
    out = call(middleware(revalidating_app(seen), resolver=resolver), scope={"headers": headers})
    assert out[0]["status"] == 200
    assert body_of(out) == expected(PAGE)
    assert header(out, b"etag") == []
    assert seen == [[b"accept"]]  # the app never saw the conditional header
    assert resolver.calls == 1


def test_conditional_get_by_an_anonymous_user_is_answered_304() -> None:
    seen: list[list[bytes]] = []
    headers = [(b"if-none-match", b'"1"')]
    mw = middleware(revalidating_app(seen), resolver=Counter(None))
    out = call(mw, scope={"headers": headers})
    assert out[0]["status"] == 304
    assert seen == [[b"if-none-match"]]


def test_conditional_get_with_an_identity_stored_by_an_outer_layer() -> None:
    seen: list[list[bytes]] = []
    scope = {"headers": [(b"if-none-match", b'"1"')], "reqio.identity": USER}
    out = call(middleware(revalidating_app(seen)), scope=scope)
    assert out[0]["status"] == 200 and body_of(out) == expected(PAGE)
    assert seen == [[]]


# --- debug: Reqio-Debug says why -----------------------------------------------------------


def debug_header(out: list[Message]) -> list[bytes]:
    return header(out, b"reqio-debug")


def _hanging_resolver() -> Callable[[Any], Awaitable[object]]:
    async def resolver(scope: Any) -> object:
        await asyncio.Event().wait()
        return USER

    return resolver


def _raising_resolver(scope: Any) -> object:
    raise RuntimeError("database down")


@pytest.mark.parametrize(
    ("messages", "identity", "options", "reason"),
    [
        ([start(HTML), body(PAGE)], USER, {}, b"rewritten"),
        ([start(HTML), body(PAGE)], None, {}, b"anonymous"),
        ([start((b"content-type", b"application/json")), body(b"{}")], USER, {}, b"not-html"),
        ([start(HTML), body(PLAIN_PAGE)], USER, {}, b"no-widget-tag"),
        ([start(HTML), *chunked(PAGE, [30])], USER, {}, b"streamed"),
        (
            [start(HTML, (b"content-encoding", b"br")), body(b"\x00")],
            USER,
            {},
            b"encoded; left br",
        ),
        ([start(HTML), body(PAGE)], None, {"resolver": _raising_resolver}, b"resolver-failed"),
        (
            [start(HTML), body(PAGE)],
            None,
            {"resolver": _hanging_resolver(), "resolver_timeout": 0.01},
            b"resolver-timeout",
        ),
    ],
    ids=lambda v: v.decode() if isinstance(v, bytes) else None,
)
def test_debug_header_says_why(
    messages: list[Message],
    identity: object,
    options: dict[str, Any],
    reason: bytes,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reqio_middleware import page

    monkeypatch.setattr(page, "_wrap_encoded", None)
    with caplog.at_level(logging.DEBUG, logger="reqio_middleware"):
        out = call(middleware(scripted(messages, identity), debug=True, **options))
    assert debug_header(out) == [reason]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    if reason == b"streamed":  # the header goes before the end; the log line says the outcome
        assert lines == ["reqio: GET /: rewritten"]
    else:
        assert lines == [f"reqio: GET /: {reason.decode()}"]


def test_debug_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    messages = [start(HTML), body(PAGE)]
    monkeypatch.delenv("REQIO_DEBUG", raising=False)
    assert debug_header(call(middleware(scripted(messages)))) == []
    monkeypatch.setenv("REQIO_DEBUG", "1")
    assert debug_header(call(middleware(scripted(messages)))) == [b"rewritten"]
    assert debug_header(call(middleware(scripted(messages), debug=False))) == []


_COMMENTED = b"<html><body><!-- " + PAGE + b" --></body></html>"


@pytest.mark.parametrize("streamed", [False, True])
def test_debug_names_where_a_widget_tag_is_no_tag(
    streamed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The user got no token because the widget tag is commented out: said, not "no widget".
    messages = [start(HTML), *(chunked(_COMMENTED, [30]) if streamed else [body(_COMMENTED)])]
    with caplog.at_level(logging.DEBUG, logger="reqio_middleware"):
        out = call(middleware(scripted(messages, USER), debug=True))
    assert b"data-identity-token" not in b"".join(m.get("body", b"") for m in out)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    if streamed:
        assert lines == [f"reqio: GET /: tag-not-stampable: {page.WHERE_NO_TAG}"]
    else:
        assert debug_header(out) == [b"tag-not-stampable: inside a comment"]
        assert lines == ["reqio: GET /: tag-not-stampable: inside a comment"]


def test_debug_names_the_rewriters_reason_for_a_tag_it_could_not_stamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reqio_middleware import page, rewriter

    class Missing(rewriter.HTMLRewriter):
        missed = "the widget tag is inside a <template>"

    monkeypatch.setattr(page, "HTMLRewriter", Missing)
    out = call(middleware(scripted([start(HTML), body(PLAIN_PAGE)]), debug=True))
    assert debug_header(out) == [b"tag-not-stampable: the widget tag is inside a <template>"]


# --- compressed pages: the hook for the compression module ----------------------------------


class GzipStream:
    """A stand-in for ``compression.wrap``'s stream: gunzip, rewrite, gzip, as it goes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decoder = zlib.decompressobj(wbits=31)
        self.encoder = zlib.compressobj(wbits=31)

    def feed(self, chunk: bytes) -> bytes:
        return self.encoder.compress(self.inner.feed(self.decoder.decompress(chunk)))

    def close(self) -> bytes:
        rest = self.inner.feed(self.decoder.flush()) + self.inner.close()
        return self.encoder.compress(rest) + self.encoder.flush()


def gzip_wrap(coding: str, stream: Any) -> Any:
    return GzipStream(stream) if coding == "gzip" else None


GZIP = (b"content-encoding", b"gzip")


@pytest.mark.parametrize("streamed", [False, True])
def test_signed_in_gzip_page_is_rewritten_and_re_encoded(
    monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    from reqio_middleware import page

    monkeypatch.setattr(page, "_wrap_encoded", gzip_wrap)
    packed = gzip.compress(PAGE)
    bodies = chunked(packed, [10, len(packed) // 2]) if streamed else [body(packed)]
    out = call(middleware(scripted([start(HTML, GZIP, cl(len(packed))), *bodies]), debug=True))
    assert gzip.decompress(body_of(out)) == expected(PAGE)
    assert header(out, b"content-encoding") == [b"gzip"]
    assert_complete(out)
    if streamed:
        assert header(out, b"content-length") == []
    else:
        assert header(out, b"content-length") == [str(len(body_of(out))).encode()]
        assert debug_header(out) == [b"rewritten; re-encoded gzip"]


def test_anonymous_or_tagless_gzip_pages_pass_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    from reqio_middleware import page

    monkeypatch.setattr(page, "_wrap_encoded", gzip_wrap)
    for html, identity in ((PAGE, None), (PLAIN_PAGE, USER)):
        messages = [start(HTML, GZIP), body(gzip.compress(html))]
        assert call(middleware(scripted(messages, identity), resolver=Counter(identity))) == (
            messages
        )


def test_unsupported_coding_passes_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from reqio_middleware import page

    monkeypatch.setattr(page, "_wrap_encoded", gzip_wrap)
    messages = [start(HTML, (b"content-encoding", b"br")), body(b"\x01\x02")]
    mw = middleware(scripted(messages))
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        assert call(mw) == messages
        assert call(mw) == messages
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "br" in warnings[0].getMessage()


# --- a misconfigured add_middleware fails the lifespan startup -----------------------------


def test_lazy_starlette_build_fails_lifespan_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.applications import Starlette

    monkeypatch.delenv("REQIO_SECRET", raising=False)
    app = Starlette()
    app.add_middleware(ReqioMiddleware, project_id=PROJECT)
    sent: list[Message] = []
    incoming = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    (failed,) = sent
    assert failed["type"] == "lifespan.startup.failed"
    assert "REQIO_SECRET" in failed["message"]
    with pytest.raises(ConfigurationError, match="REQIO_SECRET"):
        call(app)  # a request that still arrives (lifespan off) fails with the same message


def test_304_for_a_user_the_app_identified_too_late_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["reqio.identity"] = USER  # stored while handling: after the conditional check
        await send(start((b"etag", b'"1"'), status=304))
        await send(body(b""))

    mw = middleware(app)
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        for _ in range(2):
            out = call(mw, scope={"headers": [(b"if-none-match", b'"1"')]})
            assert out[0]["status"] == 304
        call(mw)  # not conditional: nothing to say
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "304" in warning and "without a token" in warning


def test_an_anonymous_test_lets_anonymous_responses_pass_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reqio_middleware import core
    from reqio_middleware.adapters.starlette import user_resolver

    class User:
        identity = "alice"

        def __init__(self, signed_in: bool) -> None:
            self.is_authenticated = signed_in

    def no_decision(*args: object) -> object:
        raise AssertionError("the headers of an anonymous response were read")

    messages = [start(HTML), body(PAGE)]
    monkeypatch.setattr(core.Core, "classify", staticmethod(no_decision))
    for scope in ({}, {"user": User(False)}):
        out = call(
            middleware(scripted(messages, identity=None), resolver=user_resolver), scope=scope
        )
        assert all(a is b for a, b in zip(out, messages, strict=True))
    monkeypatch.undo()
    out = call(
        middleware(scripted(messages, identity=None), resolver=user_resolver),
        scope={"user": User(True)},
    )
    assert body_of(out) == expected(PAGE, "tok-alice")


def test_a_resolvers_anonymous_test_is_not_a_call_of_the_resolver() -> None:
    resolver = Counter()
    marked = nonblocking(resolver, anonymous=lambda scope: "user" not in scope)
    json = [start((b"content-type", b"application/json")), body(b"{}")]
    call(middleware(scripted(json, identity=None), resolver=marked), scope={"user": 1})
    call(middleware(scripted([start(HTML), body(PAGE)], identity=None), resolver=marked))
    assert resolver.calls == 0  # JSON is never resolved; nobody there: no call either
    call(middleware(scripted([start(HTML), body(PAGE)]), resolver=marked), scope={"user": 1})
    assert resolver.calls == 1
