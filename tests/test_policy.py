"""The shared response policy: one test per guard clause and per header edit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import AnyStr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqio_middleware import policy
from reqio_middleware.policy import (
    Action,
    Decision,
    _is_rewritable_type,
    _text,
    decide,
    edit_headers,
    is_ascii_compatible,
)

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


@pytest.mark.parametrize(
    ("content_type", "action_expected"),
    [
        # A browser takes the first charset parameter (WHATWG MIME type parsing).
        ("text/html; charset=utf-16; charset=utf-8", Action.PASS),
        ("text/html; charset=utf-8; charset=utf-16", Action.REWRITE),
        ('text/html; CHARSET="UTF-16"; charset=utf-8', Action.PASS),
        ("text/html; Charset=Utf-16le;charset=utf-8", Action.PASS),
        # Invalid parameters are skipped, so the next charset is the one read.
        ("text/html; charset=; charset=utf-16", Action.PASS),
        ("text/html; charset =utf-8; charset=utf-16", Action.PASS),
        ("text/html; charset\x01=utf-8; charset=utf-16", Action.PASS),
        ("text/html; charset=utf-8\x7f; charset=utf-16", Action.PASS),
        ("text/html; charset; charset=utf-16", Action.PASS),
        # A quoted value may hold ';', '=' and escapes; what follows it up to ';' is ignored.
        ('text/html; a="x;charset=utf-16"; charset=utf-8', Action.REWRITE),
        ('text/html; charset="u\\tf-8"junk; charset=utf-16', Action.REWRITE),
        ('text/html; charset="utf-16', Action.PASS),
    ],
)
def test_the_first_valid_charset_is_the_one_a_browser_reads(
    content_type: str, action_expected: Action
) -> None:
    assert action(headers=[("Content-Type", content_type)]) is action_expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("charset=utf-8", "utf-8"),
        ('  charset="ut\\f-8" ', "utf-8"),
        ("charset=utf-8  \t", "utf-8"),
        ('charset="utf-8\\', "utf-8\\"),
        ('charset=""', ""),
        ("charset=x y", "x y"),
        ("a=1;;b=2", None),
        ("", None),
        ("charset", None),
        ("charset=", None),
    ],
)
def test_charset_parameter_is_read_as_the_whatwg_parser_reads_it(
    params: str, expected: str | None
) -> None:
    assert policy._charset(params) == expected


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


def test_vary_cookie_and_authorization_are_added() -> None:
    assert values(edit_headers(HTML, None), "vary") == ["Cookie, Authorization"]


def test_vary_cookie_and_authorization_are_merged() -> None:
    edited = edit_headers([*HTML, ("Vary", "Accept-Encoding")], None)
    assert values(edited, "vary") == ["Accept-Encoding, Cookie, Authorization"]


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        (["cookie"], "cookie, Accept, Authorization"),
        (
            ["Accept-Encoding, COOKIE", "authorization"],
            "Accept-Encoding, COOKIE, authorization, Accept",
        ),
        (["Cookie, Cookie", "cookie"], "Cookie, Accept, Authorization"),
        (["*"], "*, Accept"),
        (["", " , "], "Accept, Cookie, Authorization"),
    ],
)
def test_vary_tokens_are_merged_once_in_any_case(vary: list[str], expected: str) -> None:
    edited = edit_headers([*HTML, *(("Vary", v) for v in vary), ("vary", "Accept")], None)
    assert values(edited, "vary") == [expected]
    assert names(edited).index("vary") == 1  # where the first Vary was


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
        (b"vary", b"Cookie, Authorization"),
        (b"x-accel-expires", b"0"),
        (b"content-length", b"5"),
    ]


def test_content_digest_is_removed() -> None:
    edited = edit_headers([*HTML, ("Content-Digest", "sha-256=:x:")], None)
    assert "content-digest" not in names(edited)


def test_must_understand_is_removed() -> None:
    # RFC 9111: a cache that understands the status code may store in spite of no-store.
    edited = edit_headers([*HTML, ("Cache-Control", "must-understand, no-store, max-age=9")], None)
    assert values(edited, "cache-control") == ["private, no-store, max-age=9"]


# --- targeted caches: every field a CDN or proxy obeys instead of Cache-Control -----------


@pytest.mark.parametrize(
    ("name", "sent", "expected"),
    [
        ("Surrogate-Control", "max-age=600", "no-store, max-age=0"),
        (
            "Surrogate-Control",
            'max-age=60, content="ESI/1.0"',
            'no-store, max-age=0, content="ESI/1.0"',
        ),
        (
            "surrogate-control",
            'content="ESI/1.0";edge1, max-age=9;edge1',
            'no-store, max-age=0, content="ESI/1.0";edge1',
        ),
        ("CDN-Cache-Control", "public, max-age=600", "no-store, max-age=0"),
        ("Cloudflare-CDN-Cache-Control", "max-age=600", "no-store, max-age=0"),
        ("Vercel-CDN-Cache-Control", "s-maxage=600", "no-store, max-age=0"),
        ("netlify-cdn-cache-control", "public, durable, max-age=60", "no-store, max-age=0"),
        ("Edge-Control", "!no-store, max-age=1d", "no-store, max-age=0"),
        ("Edge-Control", "cache-maxage=7d, dca=esi", "no-store, max-age=0, dca=esi"),
        ("X-LiteSpeed-Cache-Control", "public, max-age=600, esi=on", "no-cache, esi=on"),
        ("X-Accel-Expires", "600", "0"),
        ("x-accel-expires", "@1999999999", "0"),
        ("Expires", "Thu, 01 Dec 2094 16:00:00 GMT", "0"),
    ],
)
def test_targeted_cache_fields_say_do_not_store(name: str, sent: str, expected: str) -> None:
    edited = edit_headers([*HTML, (name, sent), (name.upper(), sent)], None)
    assert [v for n, v in edited if n.lower() == name.lower()] == [expected]
    assert [n for n, _ in edited if n.lower() == name.lower()] == [name]  # name as sent, once


def test_x_accel_expires_is_sent_even_when_the_app_sent_none() -> None:
    # nginx outranks Cache-Control with it, and does not pass it on to the client.
    assert values(edit_headers(HTML, None), "x-accel-expires") == ["0"]


@pytest.mark.parametrize(
    "name", ["Surrogate-Control", "CDN-Cache-Control", "Edge-Control", "Expires"]
)
def test_targeted_fields_are_not_added(name: str) -> None:
    # Without its own field, each of these caches falls back to Cache-Control.
    assert name.lower() not in names(edit_headers(HTML, None))


@pytest.mark.parametrize(
    "name",
    ["Surrogate-Key", "Cache-Tag", "CDN-Loop", "X-Cache", "Netlify-Vary", "CDN-Cache-Controls"],
)
def test_fields_that_do_not_grant_storage_are_kept(name: str) -> None:
    edited = edit_headers([*HTML, (name, "max-age=600")], None)
    assert values(edited, name.lower()) == ["max-age=600"]


def test_no_store_false_still_tells_shared_caches_not_to_store() -> None:
    headers = [*HTML, ("Surrogate-Control", "max-age=60"), ("Cache-Control", "public")]
    edited = edit_headers(headers, None, no_store=False)
    assert values(edited, "cache-control") == ["private"]
    assert values(edited, "surrogate-control") == ["no-store, max-age=0"]
    assert values(edited, "x-accel-expires") == ["0"]


header_names = st.sampled_from(
    [
        "Content-Type",
        "Cache-Control",
        "cache-control",
        "Vary",
        "ETag",
        "Content-Length",
        "X-A",
        "Surrogate-Control",
        "Fastly-CDN-Cache-Control",
        "X-Accel-Expires",
        "Expires",
    ]
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
    vary = [t.strip().lower() for t in ",".join(values(once, "vary")).split(",") if t.strip()]
    assert len(vary) == len(set(vary))  # never "Cookie, Cookie"
    assert "*" in vary or {"cookie", "authorization"} <= set(vary)
    assert values(once, "x-accel-expires") == ["0"]
    for name in ("surrogate-control", "fastly-cdn-cache-control"):
        assert all(v == "no-store, max-age=0" for v in values(once, name))
        assert len(values(once, name)) <= 1
    assert all(v == "0" for v in values(once, "expires"))


# --- the fast decide against the plain rules -----------------------------------------------
#
# decide() is written for speed (learnt name/type tables, prebuilt results, one pass). The
# reference below is the same rules written plainly, as decide() was before it was tuned;
# the two must agree on every input.


def reference_decide(method: str, status: int, headers: list[tuple[AnyStr, AnyStr]]) -> Decision:
    if method not in ("GET", "HEAD") or status < 200 or status in (204, 206, 304):
        return Decision(Action.PASS)
    html = encoded = False
    lengths: list[str | bytes] = []
    for raw_name, raw_value in headers:
        name = _text(raw_name.lower())
        value = _text(raw_value)
        if name == "content-type":
            if not _is_rewritable_type(raw_value):
                return Decision(Action.PASS)
            html = True
        elif name == "content-length":
            lengths.append(raw_value)
        elif name == "content-encoding":
            encoded = encoded or value.strip().lower() not in ("", "identity")
        elif name == "content-range" or (
            name == "content-disposition" and value.split(";", 1)[0].strip().lower() == "attachment"
        ):
            return Decision(Action.PASS)
    if not html:
        return Decision(Action.PASS)
    if encoded:
        return Decision(Action.ENCODED)
    if method == "HEAD":
        return Decision(Action.HEAD)
    length = None
    if lengths and len(set(lengths)) == 1:
        text = _text(lengths[0]).strip()
        if text.isdigit() and text.isascii():
            length = int(text)
    return Decision(Action.REWRITE, length)


def any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


decision_names = st.one_of(
    *(
        any_case(n)
        for n in (
            "content-type",
            "content-length",
            "content-encoding",
            "content-range",
            "content-disposition",
        )
    ),
    st.sampled_from(["X-Other", "Vary", "content-typ", "content-type ", "Content_Type"]),
)
decision_values = st.one_of(
    st.sampled_from(
        [
            "text/html",
            "text/html; charset=utf-8",
            'TEXT/HTML;Charset="UTF-8"',
            "application/xhtml+xml",
            "text/html; charset=utf-16",
            "text/html; charset=nonsense",
            "application/json",
            "text/plain",
            "",
            "gzip",
            "identity",
            " Identity ",
            "br",
            "attachment",
            "Attachment; filename=a.html",
            "inline",
            "bytes 0-9/100",
            "0",
            "120",
            " 120 ",
            "\xa0120",
            "007",
            "-1",
            "1e3",
            "1_000",
            "+5",
            "١٢",
            "²",
        ]
    ),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=12),
)


@settings(max_examples=500)
@given(
    st.sampled_from(["GET", "HEAD", "POST", "get"]),
    st.sampled_from([100, 199, 200, 201, 204, 206, 302, 304, 404, 500]),
    st.lists(st.tuples(decision_names, decision_values), max_size=7),
    st.booleans(),
)
def test_decide_follows_the_plain_rules(
    method: str, status: int, headers: list[tuple[str, str]], as_bytes: bool
) -> None:
    if as_bytes:
        raw = [(n.encode(), v.encode()) for n, v in headers]
        assert decide(method, status, raw) == reference_decide(method, status, raw)
    else:
        assert decide(method, status, headers) == reference_decide(method, status, headers)


def test_decide_is_right_once_its_tables_are_full(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names and types it has not learnt (tables full) are read the slow way, with the same answer.
    monkeypatch.setattr(policy, "_NAMES", dict(policy._WATCHED))
    monkeypatch.setattr(policy, "_TYPES", {})
    monkeypatch.setattr(policy, "_LEARNT_MAX", 0)
    headers = [("X-Unseen", "1"), ("CONTENT-type", "text/html; charset=latin-1")]
    for _ in range(2):
        assert decide("GET", 200, [*headers, ("Content-Length", "5")]) == (Action.REWRITE, 5)
        assert decide("GET", 200, [("Content-Type", "image/png")]).action is Action.PASS
    assert policy._NAMES == policy._WATCHED
    assert policy._TYPES == {}


def test_decide_learns_names_and_types_as_sent() -> None:
    headers = [(b"X-Learnt-Name", b"1"), (b"Content-TYPE", b"text/html; charset=x-learnt")]
    assert decide("GET", 200, headers).action is Action.PASS  # unknown charset
    assert policy._NAMES[b"X-Learnt-Name"] == policy._UNWATCHED
    assert policy._NAMES[b"Content-TYPE"] == policy._WATCHED["content-type"]
    assert policy._TYPES[b"text/html; charset=x-learnt"] is False
    assert decide("GET", 200, headers).action is Action.PASS


@st.composite
def html_headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Headers of a likely rewritable page: the cases where the length and encoding matter."""
    headers = [(draw(any_case("content-type")), draw(st.sampled_from(["text/html", HTML[0][1]])))]
    lengths = draw(st.lists(st.sampled_from(["120", "121", " 120", "0", "x", "\xa07"]), max_size=3))
    headers += [(draw(any_case("content-length")), n) for n in lengths]
    headers += draw(st.lists(st.tuples(decision_names, decision_values), max_size=3))
    return list(draw(st.permutations(headers)))


@settings(max_examples=500)
@given(st.sampled_from(["GET", "HEAD"]), html_headers(), st.booleans())
def test_decide_follows_the_plain_rules_for_pages(
    method: str, headers: list[tuple[str, str]], as_bytes: bool
) -> None:
    if as_bytes:
        raw = [(n.encode(), v.encode()) for n, v in headers]
        assert decide(method, 200, raw) == reference_decide(method, 200, raw)
    else:
        assert decide(method, 200, headers) == reference_decide(method, 200, headers)
