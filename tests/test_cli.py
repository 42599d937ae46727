"""The ``reqio-middleware`` console script: mint, inspect and check, run as a user runs them."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqio_middleware import cli
from reqio_middleware.identity import Identity

SCRIPT = Path(sys.executable).with_name("reqio-middleware")
AUD = "https://reqio.app/p/proj_abc123"


def run(
    *args: str, secret: str | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a clean REQIO_* environment."""
    assert SCRIPT.exists() or shutil.which("reqio-middleware"), "console script not installed"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REQIO_")}
    if secret is not None:
        environ["REQIO_SECRET"] = secret
    environ.update(env)
    exe = str(SCRIPT) if SCRIPT.exists() else "reqio-middleware"
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, text=True, env=environ, timeout=60
    )


def one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- mint and inspect -----------------------------------------------------------------------

IDENTITIES = [
    {"sub": "42"},
    {"sub": "user_7", "email": "maya@example.com"},
    {"sub": "1001", "email": "m@e.com", "plan": "pro", "amount": "2900", "interval": "month"},
    {"sub": "1002", "plan": "team", "amount": "29000", "interval": "year"},
]


def mint_args(ident: dict[str, str]) -> list[str]:
    return [part for key, value in ident.items() for part in (f"--{key}", value)]


@pytest.mark.parametrize("ident", IDENTITIES, ids=lambda i: "-".join(i))
def test_mint_then_inspect_round_trip(ident: dict[str, str], secret: str) -> None:
    minted = run(
        "mint", *mint_args(ident), "--ttl", "120", secret=secret, REQIO_PROJECT_ID="proj_abc123"
    )
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert minted.stdout == token + "\n"  # the token alone, ready for $(...)

    expected = Identity(
        sub=ident["sub"],
        email=ident.get("email"),
        traits={
            "plan": ident.get("plan"),
            "amount": int(ident["amount"]) if "amount" in ident else None,
            "interval": ident.get("interval"),
        },
    ).claims()
    decoded = jwt.decode(token, secret, algorithms=["HS256"], audience=AUD)
    assert {k: decoded[k] for k in expected} == expected
    assert decoded["exp"] - decoded["iat"] == 120

    inspected = run("inspect", token, secret=secret, REQIO_AUDIENCE=AUD)
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    assert report["header"] == jwt.get_unverified_header(token)
    assert report["claims"] == decoded
    assert report["verified"] is True
    assert report["audience_checked"] == AUD
    assert 0 < report["seconds_left"] <= 120
    for text in (minted.stderr, inspected.stdout, inspected.stderr):
        assert secret not in text


def test_mint_audience_sources(secret: str) -> None:
    """--audience, --project-id, REQIO_AUDIENCE and REQIO_PROJECT_ID all name the audience."""
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (
            ["--audience", "https://x.test/aud"],
            {"REQIO_PROJECT_ID": "ignored"},
            "https://x.test/aud",
        ),
        (
            ["--project-id", "proj_1"],
            {"REQIO_AUDIENCE": "https://ignored"},
            "https://reqio.app/p/proj_1",
        ),
        (
            [],
            {"REQIO_AUDIENCE": "https://env.test/a", "REQIO_PROJECT_ID": "p"},
            "https://env.test/a",
        ),
        ([], {"REQIO_PROJECT_ID": "proj_2"}, "https://reqio.app/p/proj_2"),
    ]
    for options, env, audience in cases:
        result = run("mint", "--sub", "1", *options, secret=secret, **env)
        assert result.returncode == 0, result.stderr
        claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"], audience=audience)
        assert claims["aud"] == audience


def test_inspect_reads_stdin_and_works_without_known_audience(secret: str) -> None:
    token = jwt.encode(
        {"sub": "9", "aud": "https://elsewhere", "exp": int(time.time()) + 60}, secret, "HS256"
    )
    result = run("inspect", "-", secret=secret, stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["audience_checked"] is None
    assert report["claims"]["aud"] == "https://elsewhere"


def test_inspect_unverified_needs_no_secret() -> None:
    token = jwt.encode({"sub": "9", "exp": 1}, "some-other-secret-that-is-long-enough!!", "HS256")
    result = run("inspect", "--unverified", token)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is False
    assert report["claims"] == {"sub": "9", "exp": 1}
    assert report["seconds_left"] < 0


def _tampered_payload(token: str) -> str:
    header, _payload, signature = token.split(".")
    other = jwt.encode({"sub": "admin", "aud": AUD, "exp": int(time.time()) + 60}, "x" * 40)
    return ".".join([header, other.split(".")[1], signature])


def _flipped_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return ".".join([header, payload, signature[:middle] + flipped + signature[middle + 1 :]])


def _failure_cases(secret: str) -> list[tuple[str, str, str]]:
    now = int(time.time())
    good = {"sub": "1", "aud": AUD, "iat": now, "exp": now + 300}
    valid = jwt.encode(good, secret, "HS256")
    return [
        ("other-secret", jwt.encode(good, secret + "-not", "HS256"), "bad signature"),
        ("tampered-payload", _tampered_payload(valid), "bad signature"),
        ("tampered-signature", _flipped_signature(valid), "bad signature"),
        ("expired", jwt.encode({**good, "iat": now - 400, "exp": now - 100}, secret), "expired"),
        (
            "wrong-audience",
            jwt.encode({**good, "aud": "https://reqio.app/p/x"}, secret),
            "audience",
        ),
        ("two-parts", "abc.def", "malformed"),
        ("garbage", "not a token", "malformed"),
        ("bad-base64", "!!!.???.***", "malformed"),
        ("header-not-object", "WzFd.e30.c2ln", "malformed"),
        ("no-exp", jwt.encode({"sub": "1", "aud": AUD}, secret), "exp"),
        ("hs512", jwt.encode(good, secret * 2, "HS512"), "algorithm"),
        ("alg-none", jwt.encode(good, None, "none"), "algorithm"),
    ]


CASE_NAMES = [name for name, _, _ in _failure_cases("x" * 40)]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_inspect_rejects_with_one_line_reason(case: str, secret: str) -> None:
    token, reason = {name: (t, r) for name, t, r in _failure_cases(secret)}[case]
    result = run("inspect", token, secret=secret, REQIO_PROJECT_ID="proj_abc123")
    line = one_line_error(result)
    assert line.startswith("reqio-middleware inspect: ")
    assert reason in line.lower()
    assert secret not in line


def test_wrong_audience_names_both(secret: str) -> None:
    token = jwt.encode({"sub": "1", "aud": "https://reqio.app/p/other", "exp": 2**31}, secret)
    line = one_line_error(run("inspect", token, "--project-id", "mine", secret=secret))
    assert "https://reqio.app/p/other" in line
    assert "https://reqio.app/p/mine" in line


@pytest.mark.parametrize(
    "command", [["mint", "--sub", "1", "--project-id", "p"], ["inspect", "a.b.c"]]
)
def test_missing_secret_names_the_variable(command: list[str]) -> None:
    if command[0] == "inspect":
        command = ["inspect", jwt.encode({"sub": "1", "exp": 2**31}, "k" * 40)]
    line = one_line_error(run(*command))
    assert "REQIO_SECRET" in line


def test_missing_audience_names_the_options(secret: str) -> None:
    line = one_line_error(run("mint", "--sub", "1", secret=secret))
    for name in ("--audience", "--project-id", "REQIO_AUDIENCE", "REQIO_PROJECT_ID"):
        assert name in line


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--amount", "-1"], "traits.amount"),
        (["--interval", "week"], "traits.interval"),
        (["--sub", " "], "sub"),
    ],
)
def test_bad_traits_name_the_field(options: list[str], field: str, secret: str) -> None:
    args = ["mint", "--sub", "1", "--project-id", "p", *options]
    line = one_line_error(run(*args, secret=secret))
    assert f"invalid {field}:" in line


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["mint"],  # --sub is required
        ["mint", "--sub", "1", "--amount", "lots"],
        ["mint", "--sub", "1", "--ttl", "0"],
        ["mint", "--sub", "1", "--audience", "https://a", "--project-id", "b"],
        ["inspect"],
        ["check"],
        ["demo", "--port", "http"],
        ["demo", "--port", "70000"],
    ],
    ids=lambda a: " ".join(a) or "no-args",
)
def test_usage_errors_exit_2(args: list[str], secret: str) -> None:
    result = run(*args, secret=secret)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage:" in result.stderr


@settings(max_examples=40)
@given(
    sub=st.one_of(st.integers(0, 2**63), st.text(min_size=1).filter(lambda s: s.strip())),
    email=st.one_of(st.none(), st.emails()),
    plan=st.one_of(st.none(), st.text(min_size=1, alphabet=st.characters(codec="utf-8"))),
    amount=st.one_of(st.none(), st.integers(0, 10**12)),
    interval=st.sampled_from([None, "month", "year"]),
)
def test_mint_claims_property(
    sub: int | str, email: str | None, plan: str | None, amount: int | None, interval: str | None
) -> None:
    """In process (fast): whatever mint is given comes back from a verifier unchanged."""
    secret = "s" * 48
    # '--sub=VALUE': argparse reads a separate value that starts with '-' as an option.
    args = ["mint", f"--sub={sub}", "--audience", AUD]
    for name, value in (
        ("email", email),
        ("plan", plan),
        ("amount", amount),
        ("interval", interval),
    ):
        if value is not None:
            args += [f"--{name}={value}"]
    out = _in_process(args, {"REQIO_SECRET": secret})
    claims = jwt.decode(out.strip(), secret, algorithms=["HS256"], audience=AUD)
    traits = {"plan": plan, "amount": amount, "interval": interval}
    expected = Identity(sub=str(sub), email=email, traits=traits).claims()
    assert {k: claims[k] for k in ("sub", "email", "traits") if k in claims} == expected


def _in_process(args: list[str], env: dict[str, str]) -> str:
    import io
    from unittest import mock

    environ = {k: v for k, v in os.environ.items() if not k.startswith("REQIO_")}
    environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, environ, clear=True),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        status = cli.main(args)
    assert status == 0, err.getvalue()
    return out.getvalue()


# --- check ----------------------------------------------------------------------------------

WIDGET = '<script src="https://reqio.app/widget.js" data-project-id="proj_abc123" async></script>'
CHECK_PAGE = f"""<!doctype html>
<html><head><title>Pricing — <script src="https://reqio.app/widget.js"></script></title>
{WIDGET}
<!-- old: {WIDGET} -->
</head><body>
<form><textarea name=notes>{WIDGET}</textarea></form>
  <SCRIPT SRC='//reqio.app.evil.example/widget.js' data-project-id=proj_abc123 async></SCRIPT>
<script src="http://reqio.app/widget.js" data-project-id="proj_abc123"></script>
<p>€ <script src="//reqio.app/widget.js" data-project-id="proj_other"></script></p>
<script data-project-id="proj_abc123">/* inline */</script>
<script src="https://reqio.app/widget.js?v=2" data-project-id="proj_abc123"
        data-identity-token="stale"></script>
</body></html>
"""
# (marker that starts the tag in CHECK_PAGE, n-th occurrence, rewritten?, reason keyword)
EXPECTED = [
    ('<script src="https://reqio.app/widget.js"></script></title>', 0, False, "title"),
    (WIDGET, 0, True, ""),
    (WIDGET, 1, False, "comment"),
    (WIDGET, 2, False, "textarea"),
    ("<SCRIPT SRC='//reqio.app.evil.example", 0, False, "look-alike"),
    ('<script src="http://reqio.app', 0, False, "http:"),
    ('<script src="//reqio.app/widget.js" data-project-id="proj_other"', 0, False, "project"),
    ('<script data-project-id="proj_abc123">', 0, False, "no src"),
    ('<script src="https://reqio.app/widget.js?v=2"', 0, True, ""),
]


def _position(text: str, marker: str, nth: int) -> tuple[int, int]:
    at = -1
    for _ in range(nth + 1):
        at = text.index(marker, at + 1)
    line = text.count("\n", 0, at) + 1
    col = len(text[text.rfind("\n", 0, at) + 1 : at].encode("utf-8")) + 1
    return line, col


def _parse_check(stdout: str) -> list[tuple[int, int, bool, str]]:
    rows = []
    for match in re.finditer(r"^(\d+):(\d+)\t(REWRITE|SKIP) +(.*)$", stdout, re.M):
        rows.append((int(match[1]), int(match[2]), match[3] == "REWRITE", match[4]))
    return rows


def _check_expected(stdout: str) -> None:
    rows = _parse_check(stdout)
    assert len(rows) == len(EXPECTED), stdout
    for (line, col, rewritten, reason), (marker, nth, want, keyword) in zip(
        rows, EXPECTED, strict=True
    ):
        where = _position(CHECK_PAGE, marker, nth)
        # col counts bytes, as the rewriter does (the euro sign before one tag is 3 bytes)
        assert (line, col) == where, (stdout, marker)
        assert rewritten is want, (stdout, marker)
        assert keyword in reason.lower(), (stdout, marker)
    assert f"{len(EXPECTED)} widget-like tag(s), 2 would be rewritten" in stdout


def test_check_file_lists_every_tag_with_its_decision(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(CHECK_PAGE, "utf-8")
    result = run("check", str(page), "--project-id", "proj_abc123")
    assert result.returncode == 0, result.stderr
    _check_expected(result.stdout)


def test_check_stdin_and_project_from_environment() -> None:
    result = run("check", "-", stdin=CHECK_PAGE, REQIO_PROJECT_ID="proj_abc123")
    assert result.returncode == 0, result.stderr
    _check_expected(result.stdout)


def test_check_exits_1_when_nothing_would_be_rewritten(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(f"<!-- {WIDGET} -->\n<p>no widget</p>\n", "utf-8")
    result = run("check", str(page))
    assert result.returncode == 1
    rows = _parse_check(result.stdout)
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, 6, False)]
    empty = tmp_path / "empty.html"
    empty.write_text("<p>hello</p>", "utf-8")
    result = run("check", str(empty))
    assert result.returncode == 1
    assert "no widget-like tag found" in result.stdout


def test_check_missing_file_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run("check", str(tmp_path / "nope.html")))
    assert "nope.html" in line


@contextlib.contextmanager
def _serve_folder(folder: Path) -> Iterator[int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_check_loopback_url(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(CHECK_PAGE, "utf-8")
    with _serve_folder(tmp_path) as port:
        result = run("check", f"http://127.0.0.1:{port}/page.html", "--project-id", "proj_abc123")
    assert result.returncode == 0, result.stderr
    _check_expected(result.stdout)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "http://10.0.0.1:8000/", "https://reqio.app/", "ftp://127.0.0.1/"],
)
def test_check_refuses_urls_off_this_machine(url: str) -> None:
    line = one_line_error(run("check", url), status=2)
    assert "loopback" in line or "not an http URL" in line


def test_check_bad_widget_src_is_a_usage_error(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(WIDGET, "utf-8")
    line = one_line_error(run("check", str(page), "--widget-src", "widget.js"), status=2)
    assert "widget_src" in line


def test_secrets_in_the_environment_never_reach_output(secret: str) -> None:
    token = run("mint", "--sub", "1", "--project-id", "p", secret=secret).stdout.strip()
    for args in (["inspect", token], ["inspect", _flipped_signature(token)], ["inspect", "x"]):
        result = run(*args, secret=secret)
        assert secret not in result.stdout + result.stderr
    assert token.count(".") == 2


# --- check on a live page: the middleware's real decision -----------------------------------

LIVE_TAG = '<script src="https://reqio.app/widget.js" data-project-id="proj_abc123"></script>'
LIVE_PAGE = f"<!doctype html><title>t</title><p>hi</p>{LIVE_TAG}</html>".encode()
#: path -> (status line, Content-Type): every case ``check`` must judge as the middleware does.
LIVE_ROUTES = {
    "/ok": ("200 OK", "text/html; charset=utf-8"),
    "/missing": ("404 Not Found", "text/html; charset=utf-8"),
    "/broken": ("500 Internal Server Error", "text/html"),
    "/moved": ("302 Found", "text/html; charset=utf-8"),
    "/xhtml": ("200 OK", "application/xhtml+xml"),
    "/json": ("200 OK", "application/json"),
    "/utf16": ("200 OK", "text/html; charset=utf-16"),
    "/gzip": ("200 OK", "text/html; charset=utf-8"),  # compressed by the app, inside us
}
STALE_TOKEN_PATH = "/stale"


def _live_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == STALE_TOKEN_PATH:  # a token cached into the page, long expired
        stale = environ["reqio.test.stale"]
        body = LIVE_PAGE.replace(
            b"></script>", f' data-identity-token="{stale}"></script>'.encode()
        )
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body]
    status, ctype = LIVE_ROUTES[path]
    headers = [("Content-Type", ctype)]
    if path == "/moved":
        headers.append(("Location", "/ok"))
    if path == "/gzip":
        headers.append(("Content-Encoding", "gzip"))
        start_response(status, headers)
        return [gzip.compress(LIVE_PAGE)]
    start_response(status, headers)
    return [LIVE_PAGE]


def _cookie_user(environ: dict[str, Any]) -> dict[str, str] | None:
    cookie = environ.get("HTTP_COOKIE", "")
    return {"sub": cookie.removeprefix("user=")} if cookie.startswith("user=") else None


@contextlib.contextmanager
def _serve_middleware(
    secret: str, project_id: str, stale: str = "", audience: str | None = None
) -> Iterator[str]:
    """The real WSGI middleware in front of ``_live_app``, on a loopback wsgiref server."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from reqio_middleware import ReqioWSGIMiddleware

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["reqio.test.stale"] = stale
        return _live_app(environ, start_response)

    wrapped = ReqioWSGIMiddleware(
        app, resolver=_cookie_user, secret=secret, project_id=project_id, audience=audience
    )
    server = make_server("127.0.0.1", 0, wrapped, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("path", sorted(LIVE_ROUTES))
def test_check_says_what_the_middleware_really_does(path: str, secret: str) -> None:
    """Signed in (the cookie), check's verdict is whether the served page carries a token."""
    with _serve_middleware(secret, "proj_abc123") as base:
        result = run(
            "check",
            base + path,
            "-H",
            "Cookie: user=42",
            secret=secret,
            REQIO_PROJECT_ID="proj_abc123",
        )
        served = httpx_get(base + path, {"Cookie": "user=42"})
    carries_token = b"data-identity-token" in served
    assert result.returncode == (0 if carries_token else 1), result.stdout + result.stderr
    rows = _parse_check(result.stdout)
    assert [r[2] for r in rows] == [carries_token], result.stdout
    if carries_token:
        assert "token: verified" in result.stdout
        assert "sub '42'" in result.stdout
    else:
        assert "would be rewritten" not in result.stdout
        assert "rewritten for a signed-in user" not in result.stdout
        assert "passed through untouched" in result.stdout
    assert secret not in result.stdout + result.stderr


def httpx_get(url: str, headers: dict[str, str]) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:  # 404/500 pages are pages too
        body = exc.read()
    return gzip.decompress(body) if body.startswith(b"\x1f\x8b") else body


def test_check_statuses_and_types_that_are_rewritten(secret: str) -> None:
    """The cases the old message denied: non-200 HTML and XHTML get a token."""
    with _serve_middleware(secret, "proj_abc123") as base:
        for path in ("/missing", "/broken", "/moved", "/xhtml"):
            result = run(
                "check",
                base + path,
                "-H",
                "Cookie: user=7",
                secret=secret,
                REQIO_PROJECT_ID="proj_abc123",
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "200 text/html responses" not in result.stdout + result.stderr
            assert "token: verified" in result.stdout


def test_check_json_url_is_never_would_be_rewritten(secret: str) -> None:
    with _serve_middleware(secret, "proj_abc123") as base:
        result = run("check", base + "/json", secret=secret)
    assert result.returncode == 1
    assert "not HTML" in result.stdout
    assert "would be rewritten" not in result.stdout
    assert "SKIP" in result.stdout


@pytest.mark.parametrize(
    ("served_with", "reason"),
    [("other-secret", "bad signature"), ("other-audience", "wrong audience")],
)
def test_check_rejects_the_token_a_live_page_carries(
    served_with: str, reason: str, secret: str
) -> None:
    server_secret = secret + "-other" if served_with == "other-secret" else secret
    audience = "https://reqio.app/p/proj_other" if served_with == "other-audience" else None
    with _serve_middleware(server_secret, "proj_abc123", audience=audience) as base:
        result = run(
            "check",
            base + "/ok",
            "-H",
            "Cookie: user=42",
            secret=secret,
            REQIO_PROJECT_ID="proj_abc123",
        )
    assert result.returncode == 1, result.stdout
    assert f"token: REJECTED: {reason}" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_check_rejects_an_expired_token_and_names_a_missing_one(secret: str) -> None:
    expired = jwt.encode({"sub": "1", "aud": AUD, "iat": 1, "exp": 2}, secret, "HS256")
    with _serve_middleware(secret, "proj_abc123", stale=expired) as base:
        stale = run("check", base + STALE_TOKEN_PATH, secret=secret, REQIO_AUDIENCE=AUD)
        anonymous = run("check", base + "/ok", "-H", "Cookie: nobody=1", secret=secret)
        unverified = run("check", base + "/ok", "-H", "Cookie: user=3")
    assert stale.returncode == 1
    assert "token: REJECTED: expired" in stale.stdout
    assert anonymous.returncode == 1
    assert "no token on the page" in anonymous.stdout
    assert unverified.returncode == 0, unverified.stdout
    assert "not verified (set REQIO_SECRET" in unverified.stdout


# --- pipes, empty input, --identity, doctor, --version --------------------------------------


@pytest.mark.parametrize("command", ["inspect", "check", "doctor"])
def test_a_closed_pipe_ends_quietly(command: str, secret: str, tmp_path: Path) -> None:
    """``... | head``: the reader is gone before anything is written; no traceback."""
    page = tmp_path / "page.html"
    page.write_text(CHECK_PAGE, "utf-8")
    token = jwt.encode({"sub": "1", "exp": 2**31}, secret, "HS256")
    args = {"inspect": [token], "check": [str(page)], "doctor": []}[command]
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQIO_")}
    env["REQIO_SECRET"] = secret
    try:
        result = subprocess.run(
            [str(SCRIPT), command, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


@pytest.mark.parametrize("stdin", ["", "\n", "  \n\n"])
def test_inspect_empty_stdin_says_so(stdin: str, secret: str) -> None:
    line = one_line_error(run("inspect", "-", secret=secret, stdin=stdin))
    assert "no token on stdin" in line
    assert "part(s)" not in line


def test_mint_identity_json_carries_any_trait(secret: str) -> None:
    identity = {"sub": 77, "email": "a@b.c", "traits": {"seats": 5, "company": "Acme"}}
    result = run(
        "mint",
        "--identity",
        json.dumps(identity),
        "--plan",
        "team",
        "--audience",
        AUD,
        secret=secret,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"], audience=AUD)
    assert claims["sub"] == "77"
    assert claims["email"] == "a@b.c"
    assert claims["traits"] == {"seats": 5, "company": "Acme", "plan": "team"}


@pytest.mark.parametrize(
    ("identity", "words"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"sub": "1", "plan": "pro"}', "unknown key(s) plan"),
        ('{"email": "a@b.c"}', "no user id"),
        ('{"sub": "1", "traits": [1]}', "traits must be a JSON object"),
    ],
)
def test_mint_identity_json_usage_errors(identity: str, words: str, secret: str) -> None:
    result = run("mint", "--identity", identity, "--audience", AUD, secret=secret)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr
    assert words in result.stderr


def test_mint_identity_json_checks_known_traits(secret: str) -> None:
    bad = json.dumps({"sub": "1", "traits": {"amount": 1.5}})
    line = one_line_error(run("mint", "--identity", bad, "--audience", AUD, secret=secret))
    assert "invalid traits.amount:" in line


_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text())
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40)
@given(
    traits=st.dictionaries(
        st.text(min_size=1).filter(lambda k: k not in ("plan", "amount", "interval")),
        _JSON,
        max_size=5,
    )
)
def test_mint_identity_traits_property(traits: dict[str, Any]) -> None:
    """Any JSON trait comes back from a verifier as given (``None`` values are left out)."""
    secret = "s" * 48
    identity = json.dumps({"sub": "1", "traits": traits})
    out = _in_process(["mint", "--identity", identity, "--audience", AUD], {"REQIO_SECRET": secret})
    claims = jwt.decode(out.strip(), secret, algorithms=["HS256"], audience=AUD)
    expected = {k: v for k, v in traits.items() if v is not None}
    assert claims.get("traits", {}) == expected


def _installed_version() -> str:
    from importlib.metadata import version

    return version("reqio-middleware")


def test_version_option() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"reqio-middleware {_installed_version()}"


def test_doctor_reports_versions_scanner_and_settings(secret: str) -> None:
    from importlib.metadata import version

    result = run("doctor", secret=secret, REQIO_PROJECT_ID="proj_abc123")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.splitlines()[0] == f"reqio-middleware {_installed_version()}"
    try:
        import reqio_middleware._speedups  # noqa: F401

        scanner = "C"
    except ImportError:
        scanner = "Python"
    assert f"scanner: {scanner}" in out
    assert f"PyJWT {version('PyJWT')}" in out
    assert f"asgiref {version('asgiref')}" in out
    assert f"Python {sys.version.split()[0]}" in out
    assert "REQIO_SECRET: set (value hidden)" in out
    assert "REQIO_PROJECT_ID: 'proj_abc123'" in out
    assert "REQIO_AUDIENCE: not set" in out
    assert "would start" in out
    try:
        from reqio_middleware.compression import supported

        codings = ", ".join(sorted(supported()))
        assert f"compressed HTML: decoded, rewritten and re-encoded ({codings})" in out
    except ImportError:
        assert "compressed HTML: passes through without a token" in out
    assert secret not in out + result.stderr


def test_doctor_without_a_secret_says_what_to_set() -> None:
    result = run("doctor")
    assert result.returncode == 1
    assert "REQIO_SECRET: not set" in result.stdout
    assert "set the REQIO_SECRET environment variable" in result.stdout


def test_doctor_scanner_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rewriter.SCANNER`` when the rewriter names it, else whether the C module imports."""
    from reqio_middleware import rewriter

    monkeypatch.setattr(rewriter, "SCANNER", "Python", raising=False)
    assert "scanner: Python" in _doctor_in_process()
    monkeypatch.delattr(rewriter, "SCANNER")
    monkeypatch.setitem(sys.modules, "reqio_middleware._speedups", None)  # import fails
    assert "scanner: Python" in _doctor_in_process()


def _doctor_in_process() -> str:
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["doctor"])
    return out.getvalue()
