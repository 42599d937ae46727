"""ReqioWSGIMiddleware under a strict in-process server, validated on both sides by wsgiref."""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_asgi import PAGE, PROJECT, TAG  # one page for both protocols

from reqio_middleware.config import ConfigurationError
from reqio_middleware.identity import Identity
from reqio_middleware.rewriter import rewrite_html
from reqio_middleware.wsgi import ReqioWSGIMiddleware

PLAIN_PAGE = b"<!doctype html><html><body>no widget</body></html>"
HTML = ("Content-Type", "text/html; charset=utf-8")
USER = {"sub": 42}


def fake_minter(identity: Identity) -> str:
    return f"tok-{identity.sub}"


def expected(page: bytes, token: str = "tok-42") -> bytes:
    return rewrite_html(page, token, project_id=PROJECT)


def cl(n: int) -> tuple[str, str]:
    return ("Content-Length", str(n))


def pieces(page: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(page)})
    return [page[a:b] for a, b in zip([0, *points], [*points, len(page)], strict=True)]


class Closing:
    """An app iterable that counts close() calls (Django's response does real work there)."""

    def __init__(self, blocks: Iterable[bytes], fail_at: int | None = None) -> None:
        self.blocks = list(blocks)
        self.closed = 0
        self.fail_at = fail_at

    def __iter__(self) -> Iterator[bytes]:
        for i, block in enumerate(self.blocks):
            if i == self.fail_at:
                raise RuntimeError("boom")
            yield block

    def close(self) -> None:
        self.closed += 1


def make_app(
    blocks: Iterable[bytes],
    headers: list[tuple[str, str]] | None = None,
    *,
    status: str = "200 OK",
    identity: object = USER,
) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if identity is not None:
            environ["reqio.identity"] = identity
        start_response(status, list(headers if headers is not None else [HTML]))
        return blocks

    return app


def middleware(app: Any, *, validate: bool = True, **kwargs: Any) -> ReqioWSGIMiddleware:
    kwargs.setdefault("minter", fake_minter)
    kwargs.setdefault("project_id", PROJECT)
    return ReqioWSGIMiddleware(validator(app) if validate else app, **kwargs)


class Server:
    """Start_response and write as PEP 3333 says a server implements them."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.written: list[bytes] = []
        self.blocks: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("headers already set")
        self.status, self.headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        assert self.status is not None
        self.headers_sent = self.headers_sent or bool(data)
        self.written.append(data)

    @property
    def body(self) -> bytes:
        return b"".join(self.written) + b"".join(self.blocks)

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name]


def run(app: Any, method: str = "GET", validate: bool = True, **environ: Any) -> Server:
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    env["REQUEST_METHOD"] = method
    env["QUERY_STRING"] = ""
    env.update(environ)
    server = Server()
    outer = validator(app) if validate else app
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = outer(env, server.start_response)
        try:
            for block in result:
                assert server.status is not None
                server.headers_sent = server.headers_sent or bool(block)
                server.blocks.append(block)
        finally:
            if hasattr(result, "close"):
                result.close()
    return server


def assert_length_right_or_absent(server: Server) -> None:
    assert server.header("content-length") in ([], [str(len(server.body))])


# --- construction -------------------------------------------------------------------------


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQIO_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="REQIO_SECRET"):
        ReqioWSGIMiddleware(make_app([]), project_id=PROJECT)


def test_repr_hides_the_secret(secret: str) -> None:
    mw = ReqioWSGIMiddleware(make_app([]), secret=secret, project_id=PROJECT)
    assert secret not in repr(mw)


# --- pass-through ---------------------------------------------------------------------------


def test_json_returns_the_apps_own_iterable() -> None:
    blocks = Closing([b"{}"])
    mw = middleware(make_app(blocks, [("Content-Type", "application/json")]), validate=False)
    server = Server()
    env: dict[str, Any] = {"REQUEST_METHOD": "GET"}
    assert mw(env, server.start_response) is blocks
    assert server.status == "200 OK"


def test_non_get_returns_the_apps_own_iterable() -> None:
    blocks = Closing([PAGE])
    mw = middleware(make_app(blocks), validate=False)
    assert mw({"REQUEST_METHOD": "POST"}, Server().start_response) is blocks


def test_anonymous_page_passes_byte_for_byte() -> None:
    headers = [HTML, cl(len(PAGE)), ("ETag", '"1"')]
    server = run(middleware(make_app([PAGE[:50], PAGE[50:]], headers, identity=None)))
    assert server.body == PAGE and server.headers == headers


class ClosingList(list[bytes]):
    """A complete body (a list) that also has close(), as some frameworks' responses do."""

    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_anonymous_complete_page_returns_the_apps_own_list() -> None:
    # No identity and a complete body: decided as soon as the app returns, no wrapping.
    blocks = ClosingList([PAGE[:50], PAGE[50:]])
    headers = [HTML, cl(len(PAGE)), ("ETag", '"1"')]
    mw = middleware(make_app(blocks, headers, identity=None), validate=False)
    server = Server()
    assert mw({"REQUEST_METHOD": "GET"}, server.start_response) is blocks
    assert server.status == "200 OK" and server.headers == headers


@pytest.mark.parametrize("validate", [True, False])
def test_anonymous_complete_page_under_wsgiref_validate(validate: bool) -> None:
    headers = [HTML, cl(len(PAGE))]
    server = run(middleware(make_app([PAGE], headers, identity=None), validate=validate))
    assert server.body == PAGE and server.headers == headers


def test_identity_stored_as_none_is_anonymous() -> None:
    app = make_app([PAGE], [HTML, cl(len(PAGE))], identity=None)

    def storing_none(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = None
        return app(environ, start_response)

    server = run(middleware(storing_none, validate=False))
    assert server.body == PAGE


def test_complete_page_with_a_resolver_still_asks_it() -> None:
    seen: list[object] = []

    def resolver(environ: dict[str, Any]) -> object:
        seen.append(environ.get("reqio.identity"))
        return USER

    mw = middleware(make_app([PAGE], [HTML], identity=None), validate=False, resolver=resolver)
    server = run(mw)
    assert server.body == expected(PAGE) and seen == [None]


def test_anonymous_complete_page_is_closed_when_the_server_refuses_it() -> None:
    # A resolver with no anonymity test: the start is held until the body is here.
    blocks = ClosingList([PAGE])

    def refusing(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        raise RuntimeError("server refuses")

    resolver: Any = lambda environ: None  # noqa: E731
    mw = middleware(make_app(blocks, [HTML], identity=None), validate=False, resolver=resolver)
    with pytest.raises(RuntimeError, match="server refuses"):
        mw({"REQUEST_METHOD": "GET"}, refusing)
    assert blocks.closed == 1


def test_surely_anonymous_page_is_passed_from_its_start() -> None:
    # Nothing stored for the default resolver when the app starts its response: the server's
    # start_response is called within the app's own call, as without the middleware, and the
    # app's iterable is handed over unwrapped.
    blocks = ClosingList([PAGE])
    calls: list[str] = []
    app = make_app(blocks, [HTML], identity=None)

    def recording(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result = app(environ, start_response)
        calls.append("app returned")
        return result

    def server_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        calls.append("server start_response")
        return lambda data: None

    mw = middleware(recording, validate=False)
    assert mw({"REQUEST_METHOD": "GET"}, server_start) is blocks
    assert calls == ["server start_response", "app returned"]


def test_page_without_widget_passes_and_nothing_is_minted() -> None:
    minted: list[object] = []
    headers = [HTML, cl(len(PLAIN_PAGE))]
    mw = middleware(make_app([PLAIN_PAGE], headers), minter=lambda i: minted.append(i) or "t")
    server = run(mw)
    assert server.body == PLAIN_PAGE and server.headers == headers and minted == []


def test_compressed_html_passes_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    headers = [HTML, ("Content-Encoding", "gzip, br")]
    mw = middleware(make_app([b"\x8b\x00"], headers))
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        assert run(mw).headers == headers
        assert run(mw).headers == headers
    assert len([r for r in caplog.records if "compression" in r.getMessage()]) == 1


# --- rewriting ------------------------------------------------------------------------------


def test_list_body_gets_exact_length_and_header_edits() -> None:
    headers = [HTML, cl(len(PAGE)), ("ETag", '"1"'), ("Last-Modified", "x"), ("Vary", "Accept")]
    # (the app side is not wrapped by the validator here: it would hide that this is a list)
    server = run(middleware(make_app([PAGE[:70], PAGE[70:]], headers), validate=False))
    assert server.body == expected(PAGE)
    assert server.header("content-length") == [str(len(expected(PAGE)))]
    assert server.header("etag") == [] and server.header("last-modified") == []
    assert server.header("cache-control") == ["private, no-store"]
    assert server.header("vary") == ["Accept, Cookie, Authorization"]


def test_one_block_of_the_declared_length_gets_exact_length() -> None:
    server = run(middleware(make_app(iter([PAGE]), [HTML, cl(len(PAGE))])))
    assert server.body == expected(PAGE)
    assert server.header("content-length") == [str(len(expected(PAGE)))]


def test_generator_body_streams_without_length() -> None:
    blocks = pieces(PAGE, [10, 60, 100])
    server = run(middleware(make_app(iter(blocks), [HTML, cl(len(PAGE))])))
    assert server.body == expected(PAGE)
    assert server.header("content-length") == []
    assert server.header("cache-control") == ["private, no-store"]


def test_absorbed_blocks_yield_empty_bytestrings() -> None:
    # The tag arrives a few bytes at a time: the rewriter must hold those blocks back.
    blocks = pieces(PAGE, list(range(40, 130, 3)))
    server = run(middleware(make_app(iter(blocks))))
    assert server.body == expected(PAGE)
    assert len(server.blocks) in (len(blocks), len(blocks) + 1)
    assert b"" in server.blocks


def test_mixed_case_header_names() -> None:
    headers = [("content-TYPE", "text/html"), ("CONTENT-LENGTH", str(len(PAGE))), ("etag", "x")]
    server = run(middleware(make_app([PAGE], headers)))
    assert server.body == expected(PAGE)
    assert server.header("content-length") == [str(len(expected(PAGE)))]
    assert server.header("etag") == []


def test_generator_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = USER
        start_response("200 OK", (h for h in [HTML, cl(len(PAGE))]))
        return [PAGE]

    server = run(middleware(app, validate=False))
    assert server.body == expected(PAGE)
    assert server.header("content-type") == ["text/html; charset=utf-8"]


def test_signed_in_head_has_the_gets_headers_and_no_body() -> None:
    calls: list[int] = []
    app = make_app([PAGE], [HTML, cl(len(PAGE)), ("ETag", "x")])
    mw = middleware(app, resolver=lambda env: calls.append(1) or USER)
    head = run(mw, method="HEAD")
    get = run(middleware(app, resolver=lambda env: USER))
    # The app's body is withheld, and the length is the GET's, whose page carries a token.
    assert head.body == b""
    assert head.blocks == [b""]
    assert head.headers == get.headers
    assert head.header("content-length") == [str(len(expected(PAGE)))]
    assert head.header("etag") == []
    assert head.header("cache-control") == ["private, no-store"]
    assert calls == [1]


@pytest.mark.parametrize("blocks", [[PAGE], [PAGE[:10], PAGE[10:]], []])
def test_anonymous_head_keeps_the_apps_headers(blocks: list[bytes]) -> None:
    headers = [HTML, cl(len(PAGE)), ("ETag", "x"), ("Cache-Control", "public, max-age=60")]
    server = run(middleware(make_app(iter(blocks), headers), resolver=lambda env: None), "HEAD")
    assert server.headers == headers
    assert server.body == b"".join(blocks)  # what the bare app gives; the server drops it


def test_signed_in_head_without_body_gets_the_edits_and_keeps_the_apps_length() -> None:
    server = run(middleware(make_app([], [HTML, cl(len(PAGE))])), method="HEAD")
    assert server.body == b""
    assert server.header("content-length") == [str(len(PAGE))]
    assert server.header("cache-control") == ["private, no-store"]


def test_head_body_written_with_write_is_withheld_too() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [HTML])
        write(PAGE)
        return []

    server = run(middleware(app, resolver=lambda env: USER), method="HEAD")
    assert server.body == b""
    assert server.header("cache-control") == ["private, no-store"]


page_cuts = st.lists(st.integers(min_value=1, max_value=len(PAGE) - 1), max_size=12)


@settings(max_examples=150)
@given(cuts=page_cuts, declared=st.booleans(), as_list=st.booleans())
def test_any_chunking_gives_the_rewritten_whole(
    cuts: list[int], declared: bool, as_list: bool
) -> None:
    blocks = pieces(PAGE, cuts)
    headers = [HTML, cl(len(PAGE))] if declared else [HTML]
    server = run(middleware(make_app(blocks if as_list else iter(blocks), headers)))
    assert server.body == expected(PAGE)
    assert_length_right_or_absent(server)


# --- PEP 3333 details -------------------------------------------------------------------------


def test_lazy_start_response_in_the_first_iteration() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        environ["reqio.identity"] = USER
        start_response("200 OK", [HTML])
        yield PAGE[:60]
        yield PAGE[60:]

    server = run(middleware(app))
    assert server.body == expected(PAGE)


@pytest.mark.parametrize("cut", [1, 50, len(PAGE) - 1, len(PAGE)])
def test_write_goes_through_the_same_rewriter(cut: int) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = USER
        write = start_response("200 OK", [HTML])
        write(PAGE[:cut])
        return [PAGE[cut:]]

    server = run(middleware(app))
    assert server.body == expected(PAGE)
    assert server.body.count(b"tok-42") == 1
    assert_length_right_or_absent(server)


def test_write_of_an_anonymous_page_passes_through() -> None:
    headers = [HTML]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", headers)
        write(PAGE[:60])
        return [PAGE[60:]]

    server = run(middleware(app))
    assert server.written == [PAGE[:60]]
    assert server.body == PAGE and server.headers == headers


def test_exc_info_before_headers_are_sent_replaces_them() -> None:
    error_page = b"<html><body>oops</body></html>"

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [HTML, cl(len(PAGE))])
        try:
            raise ValueError("template failed")
        except ValueError:
            start_response("500 Internal Server Error", [HTML], sys.exc_info())
        return [error_page]

    server = run(middleware(app))
    assert server.status == "500 Internal Server Error"
    assert server.body == error_page and server.header("content-length") == []


def test_exc_info_replacement_page_is_rewritten() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = USER
        start_response("200 OK", [HTML, cl(10)])
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Internal Server Error", [HTML], sys.exc_info())
        return iter([PAGE[:40], PAGE[40:]])

    server = run(middleware(app))
    assert server.status == "500 Internal Server Error"
    assert server.body == expected(PAGE)
    assert server.header("content-length") == []


def test_exc_info_after_headers_are_sent_reraises() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        environ["reqio.identity"] = USER
        start_response("200 OK", [HTML])
        yield PAGE[:100]
        try:
            raise ValueError("too late")
        except ValueError:
            start_response("500 Internal Server Error", [HTML], sys.exc_info())
        yield b"never"

    with pytest.raises(ValueError, match="too late"):
        run(middleware(app, validate=False), validate=False)


def test_second_start_response_without_exc_info_is_refused() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [HTML])
        start_response("200 OK", [HTML])
        return []

    with pytest.raises(AssertionError):
        run(middleware(app, validate=False), validate=False)


@pytest.mark.parametrize(
    ("headers", "blocks", "fail_at"),
    [
        ([("Content-Type", "text/plain")], [b"a", b"b"], None),
        ([HTML, cl(len(PAGE))], [PAGE], None),
        ([HTML], pieces(PAGE, [50, 90]), None),
        ([HTML], pieces(PAGE, [50, 90]), 1),
        ([HTML], pieces(PLAIN_PAGE, [20]), 1),
    ],
)
def test_the_apps_iterable_is_closed_exactly_once(
    headers: list[tuple[str, str]], blocks: list[bytes], fail_at: int | None
) -> None:
    iterable = Closing(blocks, fail_at)
    mw = middleware(make_app(iterable, headers), validate=False)
    if fail_at is None:
        run(mw)
    else:
        with pytest.raises(RuntimeError, match="boom"):
            run(mw)
    assert iterable.closed == 1


def test_html_file_wrapper_is_rewritten_and_closed() -> None:
    file = io.BytesIO(PAGE)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = USER
        start_response("200 OK", [HTML, cl(len(PAGE))])
        return environ["wsgi.file_wrapper"](file, 64)  # type: ignore[no-any-return]

    server = run(middleware(app), **{"wsgi.file_wrapper": FileWrapper})
    assert server.body == expected(PAGE)
    assert_length_right_or_absent(server)
    assert file.closed


def test_other_file_wrapper_is_returned_unchanged() -> None:
    wrapper = FileWrapper(io.BytesIO(b"%PDF-1.7"))
    mw = middleware(make_app(wrapper, [("Content-Type", "application/pdf")]), validate=False)
    assert mw({"REQUEST_METHOD": "GET"}, Server().start_response) is wrapper


# --- the resolver ---------------------------------------------------------------------------


def test_resolver_sees_what_the_app_stored_and_is_called_once() -> None:
    seen: list[object] = []

    def resolver(environ: dict[str, Any]) -> object:
        seen.append(environ.get("app.user"))
        return {"sub": environ["app.user"]}

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        environ["app.user"] = "alice"
        start_response("200 OK", [HTML])
        yield from pieces(PAGE + TAG, [30, 120])

    server = run(middleware(app, resolver=resolver))
    assert server.body.count(b"tok-alice") == 2
    assert seen == ["alice"]


def test_resolver_is_never_called_for_non_html() -> None:
    calls: list[int] = []
    mw = middleware(
        make_app([b"{}"], [("Content-Type", "application/json")]),
        resolver=lambda env: calls.append(1) or USER,
    )
    run(mw)
    assert calls == []


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def test_resolver_raising_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture, secret: str
) -> None:
    def resolver(environ: dict[str, Any]) -> object:
        raise KeyError("session")

    headers = [HTML, cl(len(PAGE))]
    mw = ReqioWSGIMiddleware(
        validator(make_app([PAGE], headers)), resolver=resolver, secret=secret, project_id=PROJECT
    )
    server = run(mw)
    assert server.body == PAGE and server.headers == headers
    (message,) = errors(caplog)
    assert "KeyError" in message


@pytest.mark.parametrize("garbage", [7, {"id": 1}, {"sub": None}])
def test_resolver_returning_garbage_leaves_the_page_and_logs(
    caplog: pytest.LogCaptureFixture, garbage: object
) -> None:
    blocks = pieces(PAGE, [90])
    server = run(middleware(make_app(iter(blocks)), resolver=lambda env: garbage))
    assert server.body == PAGE and server.header("cache-control") == []
    (message,) = errors(caplog)
    assert "invalid identity" in message


def test_async_resolver_is_refused_under_wsgi(caplog: pytest.LogCaptureFixture) -> None:
    async def resolver(environ: dict[str, Any]) -> object:
        return USER

    server = run(middleware(make_app([PAGE]), resolver=resolver))
    assert server.body == PAGE
    assert len(errors(caplog)) == 1


# --- a conditional GET by a signed-in user renders the page ---------------------------------


def revalidating_app(seen: list[list[str]]) -> Any:
    """An app that answers 304 to a conditional GET, as static file servers do."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        asked = sorted(k for k in environ if k.startswith("HTTP_IF_"))
        seen.append(asked)
        if asked:
            start_response("304 Not Modified", [("ETag", '"1"')])
            return []
        start_response("200 OK", [HTML, ("ETag", '"1"')])
        return [PAGE]

    return app


@pytest.mark.parametrize("key", ["HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE"])
def test_conditional_get_by_a_signed_in_user_is_rendered(key: str) -> None:
    seen: list[list[str]] = []
    calls: list[int] = []
    mw = middleware(revalidating_app(seen), resolver=lambda env: calls.append(1) or USER)
    server = run(mw, **{key: '"1"'})
    assert server.status == "200 OK"
    assert server.body == expected(PAGE)
    assert server.header("etag") == []
    assert seen == [[]] and calls == [1]


def test_conditional_get_by_an_anonymous_user_is_answered_304() -> None:
    seen: list[list[str]] = []
    server = run(
        middleware(revalidating_app(seen), resolver=lambda env: None), HTTP_IF_NONE_MATCH="x"
    )
    assert server.status == "304 Not Modified"
    assert seen == [["HTTP_IF_NONE_MATCH"]]


# --- debug ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "headers", "identity", "reason"),
    [
        ([PAGE], [HTML, cl(len(PAGE))], USER, "rewritten"),
        ([PAGE], [HTML], None, "anonymous"),
        ([b"{}"], [("Content-Type", "application/json")], USER, "not-html"),
        (iter([PAGE[:40], PAGE[40:]]), [HTML], USER, "streamed"),
        ([PLAIN_PAGE], [HTML, cl(len(PLAIN_PAGE))], USER, "no-widget-tag"),
    ],
    ids=["rewritten", "anonymous", "not-html", "streamed", "no-widget-tag"],
)
def test_debug_header_says_why(
    blocks: Iterable[bytes], headers: list[tuple[str, str]], identity: object, reason: str
) -> None:
    app = make_app(blocks, headers, identity=identity)
    server = run(middleware(app, debug=True, resolver=lambda env: identity))
    assert server.header("reqio-debug") == [reason]
    assert run(middleware(make_app([PAGE], [HTML]), debug=False)).header("reqio-debug") == []


def test_304_for_a_user_the_app_identified_too_late_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["reqio.identity"] = USER
        start_response("304 Not Modified", [("ETag", '"1"')])
        return []

    mw = middleware(app)
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        for _ in range(2):
            assert run(mw, HTTP_IF_NONE_MATCH='"1"').status == "304 Not Modified"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "304" in warning
