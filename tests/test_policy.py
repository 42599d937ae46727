"""The shared response policy: one test per guard clause and per header edit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqio_middleware.policy import Action, decide, edit_headers, is_ascii_compatible

HTML = [("Content-Type", "text/html; charset=utf-8")]


def action(method: str = "GET", status: int = 200, headers: object = None) -> Action:
    return decide(method, status, HTML if headers is None else headers).action  # type: ignore[arg-type]


# --- guard clauses -------------------------------------------------------------------------


def test_get_html_is_eligible() -> None:
    assert action() is Action.REWRITE


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"])
def test_only_get_is_rewritten(method: str) -> None:
    assert action(method) is Action.PASS


def test_head_gets_header_edits_only() -> None:
    assert action("HEAD") is Action.HEAD


@pytest.mark.parametrize("status", [100, 101, 103, 204, 206, 304])
def test_bodiless_and_partial_statuses_pass(status: int) -> None:
    assert action(status=status) is Action.PASS


@pytest.mark.parametrize("status", [200, 201, 404, 500])
def test_other_statuses_are_eligible(status: int) -> None:
    assert action(status=status) is Action.REWRITE


def test_content_range_passes() -> None:
    assert action(headers=[*HTML, ("Content-Range", "bytes 0-9/100")]) is Action.PASS


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json",
        "text/event-stream",
        "text/vnd.turbo-stream.html",
        "text/htmlx",
        "image/svg+xml",
    ],
)
def test_non_html_media_types_pass(content_type: str) -> None:
    assert action(headers=[("Content-Type", content_type)]) is Action.PASS


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "TEXT/HTML", " text/html ;charset=UTF-8", "application/xhtml+xml"],
)
def test_html_media_types_are_eligible(content_type: str) -> None:
    assert action(headers=[("Content-Type", content_type)]) is Action.REWRITE


def test_missing_content_type_passes() -> None:
    assert action(headers=[("Content-Length", "10")]) is Action.PASS


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "zstd", "gzip, identity"])
def test_compressed_html_is_reported_as_encoded(encoding: str) -> None:
    assert action(headers=[*HTML, ("Content-Encoding", encoding)]) is Action.ENCODED


@pytest.mark.parametrize("encoding", ["", "identity", " IDENTITY "])
def test_identity_encoding_is_eligible(encoding: str) -> None:
    assert action(headers=[*HTML, ("Content-Encoding", encoding)]) is Action.REWRITE


def test_attachment_passes() -> None:
    headers = [*HTML, ("Content-Disposition", 'Attachment; filename="page.html"')]
    assert action(headers=headers) is Action.PASS


def test_inline_disposition_is_eligible() -> None:
    assert action(headers=[*HTML, ("Content-Disposition", "inline")]) is Action.REWRITE


@pytest.mark.parametrize(
    "charset", ["utf-8", "UTF8", '"utf-8"', "us-ascii", "iso-8859-1", "windows-1252", "koi8-r"]
)
def test_ascii_compatible_charsets_are_eligible(charset: str) -> None:
    assert action(headers=[("Content-Type", f"text/html; charset={charset}")]) is Action.REWRITE


@pytest.mark.parametrize(
    "charset", ["utf-16", "UTF-16LE", "utf-32", "utf-7", "iso-2022-jp", "hz", "cp037", "bogus"]
)
def test_other_charsets_pass(charset: str) -> None:
    assert action(headers=[("Content-Type", f"text/html; charset={charset}")]) is Action.PASS


def test_charset_check_matches_the_encoders() -> None:
    probe = '<script src="x">'
    for name in ["utf-8", "latin-1", "cp1251", "utf-16", "utf-32-be", "cp500"]:
        same = probe.encode(name) == probe.encode("ascii")
        assert is_ascii_compatible(name) is same, name


def test_header_names_are_case_insensitive_and_may_be_bytes() -> None:
    headers = [(b"Content-Type", b"text/html"), (b"CONTENT-ENCODING", b"gzip")]
    assert decide("GET", 200, headers).action is Action.ENCODED
    assert decide("GET", 200, [(b"content-TYPE", b"text/html")]).action is Action.REWRITE


def test_headers_may_be_a_generator() -> None:
    def headers() -> Iterator[tuple[str, str]]:
        yield "X-Other", "1"
        yield "content-type", "text/html"

    assert decide("GET", 200, headers()).action is Action.REWRITE


@pytest.mark.parametrize(
    ("lengths", "expected"),
    [
        ([], None),
        (["120"], 120),
        (["120", "120"], 120),
        (["120", "121"], None),
        (["-1"], None),
        (["1e3"], None),
        (["١٢"], None),
    ],
)
def test_declared_content_length(lengths: list[str], expected: int | None) -> None:
    headers = [*HTML, *(("Content-Length", n) for n in lengths)]
    assert decide("GET", 200, headers).content_length == expected


# --- header edits --------------------------------------------------------------------------


def names(headers: list[tuple[str, str]]) -> list[str]:
    return [n.lower() for n, _ in headers]


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name]


def test_content_length_is_set_exactly() -> None:
    edited = edit_headers([*HTML, ("Content-Length", "10"), ("content-length", "10")], 123)
    assert values(edited, "content-length") == ["123"]


def test_content_length_is_removed_when_unknown() -> None:
    assert "content-length" not in names(edit_headers([*HTML, ("Content-Length", "10")], None))


@pytest.mark.parametrize(
    "name",
    ["ETag", "Last-Modified", "Content-MD5", "Digest", "Repr-Digest", "Accept-Ranges"],
)
def test_representation_headers_are_removed(name: str) -> None:
    edited = edit_headers([*HTML, (name, "x"), (name.upper(), "y")], None)
    assert name.lower() not in names(edited)


def test_cache_control_is_added_private_no_store() -> None:
    assert values(edit_headers(HTML, None), "cache-control") == ["private, no-store"]


def test_public_and_s_maxage_are_removed() -> None:
    edited = edit_headers([*HTML, ("Cache-Control", "public, max-age=60, s-maxage=600")], None)
    assert values(edited, "cache-control") == ["private, no-store, max-age=60"]


def test_cache_control_headers_are_merged_once() -> None:
    headers = [
        ("Cache-Control", "PUBLIC"),
        *HTML,
        ("cache-control", 'no-cache="Set-Cookie, X", private'),
    ]
    edited = edit_headers(headers, None)
    assert values(edited, "cache-control") == ['private, no-store, no-cache="Set-Cookie, X"']
    assert names(edited)[0] == "cache-control"  # kept where the first one was


def test_no_store_can_be_left_out() -> None:
    edited = edit_headers([*HTML, ("Cache-Control", "public, max-age=60")], None, no_store=False)
    assert values(edited, "cache-control") == ["private, max-age=60"]


def test_vary_cookie_is_added() -> None:
    assert values(edit_headers(HTML, None), "vary") == ["Cookie"]


def test_vary_cookie_is_merged() -> None:
    edited = edit_headers([*HTML, ("Vary", "Accept-Encoding")], None)
    assert values(edited, "vary") == ["Accept-Encoding, Cookie"]


@pytest.mark.parametrize("vary", ["cookie", "Accept-Encoding, COOKIE", "*"])
def test_vary_cookie_is_not_duplicated(vary: str) -> None:
    edited = edit_headers([*HTML, ("Vary", vary), ("Vary", "Accept")], None)
    assert values(edited, "vary") == [vary, "Accept"]


def test_other_headers_keep_order_names_and_duplicates() -> None:
    headers = [("Set-Cookie", "a=1"), *HTML, ("X-Thing", "1"), ("Set-Cookie", "b=2")]
    edited = edit_headers(headers, None)
    assert [h for h in edited if h[0] in ("Set-Cookie", "X-Thing", "Content-Type")] == [
        ("Set-Cookie", "a=1"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("X-Thing", "1"),
        ("Set-Cookie", "b=2"),
    ]


def test_bytes_headers_stay_bytes() -> None:
    edited = edit_headers([(b"Content-Type", b"text/html"), (b"etag", b'"1"')], 5)
    assert edited == [
        (b"Content-Type", b"text/html"),
        (b"cache-control", b"private, no-store"),
        (b"vary", b"Cookie"),
        (b"content-length", b"5"),
    ]


header_names = st.sampled_from(
    ["Content-Type", "Cache-Control", "cache-control", "Vary", "ETag", "Content-Length", "X-A"]
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@given(st.lists(st.tuples(header_names, header_values), max_size=8), st.none() | st.integers(0))
def test_edits_are_idempotent_and_complete(
    headers: list[tuple[str, str]], length: int | None
) -> None:
    once = edit_headers(headers, length)
    assert edit_headers(once, length) == once
    assert len(values(once, "cache-control")) == 1
    assert values(once, "cache-control")[0].startswith("private, no-store")
    assert "etag" not in names(once)
    assert values(once, "content-length") == ([] if length is None else [str(length)])
    vary = ",".join(values(once, "vary")).lower()
    assert "cookie" in vary or "*" in vary
