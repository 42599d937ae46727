"""``reqio-middleware``: see it work (``demo``), and debug an integration from the terminal.

The commands answer the questions integrators actually ask: "what does a token for this user look
like?" (``mint``), "why does Reqio reject this token?" (``inspect``) and "why is there no token on
my page?" (``check``). Every failure is one line on stderr naming what to fix; exit status 2 is a
usage error, 1 a failed check. The secret is read from ``REQIO_SECRET`` only, never from the
command line (where ``ps`` and shell history would keep it), and is never printed, except by
``demo`` for the secret it generates itself.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ipaddress
import json
import os
import platform
import re
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO
from urllib.parse import urlsplit

from .rewriter import DEFAULT_WIDGET_SRC

if TYPE_CHECKING:
    from .rewriter import TagReport

__all__ = ["main"]

PROG = "reqio-middleware"


class CLIError(Exception):
    """A failure worth one line on stderr; ``status`` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class UsageError(CLIError):
    """Options that argparse alone cannot check: reported as argparse reports its own."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=2)


# --- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    warnings.formatwarning = _one_line_warning
    try:
        status: int = args.run(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen inside the try
    except UsageError as exc:
        args.parser.error(str(exc))  # usage and message on stderr, exit 2
    except CLIError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    return status


def _reader_went_away() -> int:
    """``... | head`` closed the pipe: stop quietly, as ``cat`` would.

    stdout is pointed at /dev/null so that the interpreter's own flush at exit does not raise
    (and print) the same error again. The status is the shell's for a process ended by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 128 + 13


def _one_line_warning(
    message: Warning | str, category: type[Warning], *_args: object, **_kwargs: object
) -> str:
    return f"{PROG}: warning: {message}\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Give the Reqio widget a signed identity; demo and debugging tools.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the demo app (a stand-in widget shows the signed-in user's verified claims)",
        description="Run the demo on http://HOST:PORT/. Uses REQIO_SECRET when set, otherwise "
        "generates a demo secret and prints it.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    demo.set_defaults(run=_cmd_demo, parser=demo)

    mint = commands.add_parser(
        "mint",
        help="print a token for a user (secret from REQIO_SECRET)",
        description="Mint a Reqio identity token and print it alone on stdout. The secret comes "
        "from REQIO_SECRET; the audience from --audience / --project-id, else REQIO_AUDIENCE / "
        "REQIO_PROJECT_ID.",
    )
    mint.add_argument("--sub", help="the user id (required unless --identity gives it)")
    mint.add_argument("--email")
    mint.add_argument(
        "--identity",
        type=_json_object,
        metavar="JSON",
        help='the whole identity as JSON, e.g. \'{"sub": "42", "traits": {"seats": 5}}\'; '
        "any trait, not only plan/amount/interval; the other options override its fields",
    )
    mint.add_argument("--plan", help="trait: plan name")
    mint.add_argument("--amount", type=int, metavar="CENTS", help="trait: price in cents")
    mint.add_argument("--interval", metavar="month|year", help="trait: billing interval")
    mint.add_argument("--ttl", type=_positive, default=300, metavar="S", help="default 300")
    _audience_options(mint)
    mint.set_defaults(run=_cmd_mint, parser=mint)

    inspect = commands.add_parser(
        "inspect",
        help="verify a token and show its header, claims and seconds left",
        description="Verify TOKEN with REQIO_SECRET (and the audience when known: --audience / "
        "--project-id / REQIO_AUDIENCE / REQIO_PROJECT_ID) and print header, claims and seconds "
        "left as JSON. Exit 1 with a one-line reason when the token is bad.",
    )
    inspect.add_argument("token", metavar="TOKEN", help="the token, or - to read it from stdin")
    _audience_options(inspect)
    inspect.add_argument(
        "--unverified",
        action="store_true",
        help="only decode (no secret needed); nothing is checked",
    )
    inspect.set_defaults(run=_cmd_inspect, parser=inspect)

    check = commands.add_parser(
        "check",
        help="list the widget tags of a page and whether each would get a token",
        description="List every widget-like tag in SOURCE (a file, - for stdin, or an http URL "
        "on loopback) with line:col and whether the middleware would rewrite it, or why not. "
        "Exit 0 when at least one tag would be rewritten, 1 otherwise.",
    )
    check.add_argument("source", metavar="FILE|-|URL")
    check.add_argument(
        "--widget-src", default=DEFAULT_WIDGET_SRC, help=f"default {DEFAULT_WIDGET_SRC}"
    )
    check.add_argument(
        "--project-id",
        default=os.environ.get("REQIO_PROJECT_ID") or None,
        help="only tags of this project are rewritten (default REQIO_PROJECT_ID, if set)",
    )
    check.add_argument(
        "--audience",
        metavar="URL",
        help="audience a live page's token must carry (default REQIO_AUDIENCE, else from the "
        "project id)",
    )
    check.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header for a URL, e.g. a session cookie (repeatable); with "
        "REQIO_SECRET set, the token the live page carries is verified",
    )
    check.set_defaults(run=_cmd_check, parser=check)

    doctor = commands.add_parser(
        "doctor",
        help="show the version, the scanner in use, library versions and which settings are set",
        description="Print what a bug report needs: versions, whether the C scanner is in use, "
        "and which REQIO_* variables are set (never the secret's value). Exit 1 when the "
        "middleware could not start with this environment.",
    )
    doctor.set_defaults(run=_cmd_doctor, parser=doctor)
    return parser


def _audience_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--audience", metavar="URL", help="e.g. https://reqio.app/p/proj_abc123")
    group.add_argument("--project-id", metavar="ID", help="audience https://reqio.app/p/ID")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object such as {"sub": "42"}')
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


# --- settings from options and environment --------------------------------------------------


def _secret() -> str:
    secret = os.environ.get("REQIO_SECRET", "")
    if not secret:
        raise CLIError(
            "REQIO_SECRET is not set; export the signing secret from Project > Settings > "
            "Identity (never pass it on the command line)"
        )
    return secret


def _audience(args: argparse.Namespace, *, required: bool) -> str | None:
    if args.audience:
        return str(args.audience)
    if args.project_id:
        return f"https://reqio.app/p/{args.project_id}"
    if os.environ.get("REQIO_AUDIENCE"):
        return os.environ["REQIO_AUDIENCE"]
    if os.environ.get("REQIO_PROJECT_ID"):
        return f"https://reqio.app/p/{os.environ['REQIO_PROJECT_ID']}"
    if required:
        raise CLIError(
            "no audience: pass --audience URL or --project-id ID, or set REQIO_AUDIENCE or "
            "REQIO_PROJECT_ID"
        )
    return None


# --- mint -----------------------------------------------------------------------------------


def _cmd_mint(args: argparse.Namespace) -> int:
    from .identity import IdentityError, coerce_identity
    from .tokens import mint_token

    fields = _identity_fields(args)
    secret = _secret()
    audience = _audience(args, required=True)
    assert audience is not None
    try:
        identity = coerce_identity(fields)
        assert identity is not None
        token = mint_token(identity, secret=secret, audience=audience, ttl=args.ttl)
    except IdentityError as exc:
        raise CLIError(f"invalid {exc}") from None
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(token)
    return 0


_IDENTITY_KEYS = ("sub", "email", "traits")


def _identity_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``--identity`` JSON with the single-field options laid over it."""
    fields: dict[str, Any] = dict(args.identity or {})
    unknown = sorted(set(fields) - set(_IDENTITY_KEYS))
    if unknown:
        raise UsageError(
            f"--identity: unknown key(s) {', '.join(unknown)}; an identity has "
            f"{', '.join(_IDENTITY_KEYS)} (put anything else under traits)"
        )
    traits = fields.get("traits")
    if traits is not None and not isinstance(traits, dict):
        raise UsageError("--identity: traits must be a JSON object")
    traits = dict(traits or {})
    for name in ("plan", "amount", "interval"):
        if getattr(args, name) is not None:
            traits[name] = getattr(args, name)
    if args.sub is not None:
        fields["sub"] = args.sub
    if args.email is not None:
        fields["email"] = args.email
    if "sub" not in fields:
        raise UsageError("no user id: pass --sub ID or give sub in --identity")
    fields["traits"] = traits or None
    return fields


# --- inspect --------------------------------------------------------------------------------


def _cmd_inspect(args: argparse.Namespace) -> int:
    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    if not token:
        where = "on stdin" if args.token == "-" else "given"
        raise CLIError(
            f"no token {where}: pass it as the argument, or pipe it in, e.g. "
            f"{PROG} mint --sub 42 | {PROG} inspect -"
        )
    header, claims = _decode_unverified(token)
    result: dict[str, Any] = {"header": header, "claims": claims}
    if args.unverified:
        result["verified"] = False
    else:
        audience = _audience(args, required=False)
        claims = _verify(token, header, _secret(), audience)
        result["claims"] = claims
        result["verified"] = True
        result["audience_checked"] = audience
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        result["seconds_left"] = int(exp - time.time())
    else:
        result["seconds_left"] = None
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode without PyJWT so the reason for a malformed token can be specific."""
    parts = token.split(".")
    if len(parts) != 3:
        raise CLIError(f"malformed token: {len(parts)} part(s), a JWT has 3 separated by '.'")
    decoded = []
    for name, part in zip(("header", "claims"), parts[:2], strict=True):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CLIError(f"malformed token: the {name} is not base64url JSON") from None
        if not isinstance(value, dict):
            raise CLIError(f"malformed token: the {name} is not a JSON object")
        decoded.append(value)
    return decoded[0], decoded[1]


def _verify(
    token: str, header: dict[str, Any], secret: str, audience: str | None
) -> dict[str, Any]:
    import jwt

    alg = header.get("alg")
    if alg != "HS256":
        raise CLIError(f"unexpected algorithm {alg!r}: Reqio tokens are HS256")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            options={"require": ["exp", "sub"], "verify_aud": audience is not None},
        )
    except jwt.InvalidSignatureError:
        raise CLIError(
            "bad signature: not signed with this REQIO_SECRET (wrong secret, or the token was "
            "altered)"
        ) from None
    except jwt.ExpiredSignatureError:
        exp = _unverified_claim(token, "exp")
        ago = f" {int(time.time() - exp)} s ago" if isinstance(exp, (int, float)) else ""
        raise CLIError(f"expired{ago}: tokens live a few minutes; mint a fresh one") from None
    except jwt.InvalidAudienceError:
        got = _unverified_claim(token, "aud")
        raise CLIError(f"wrong audience: token is for {got!r}, expected {audience!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise CLIError(f"malformed token: missing the {exc.claim!r} claim") from None
    except jwt.ImmatureSignatureError:
        raise CLIError("not valid yet: 'iat' is in the future (check the clocks)") from None
    except jwt.PyJWTError as exc:
        raise CLIError(f"malformed token: {exc}") from None
    return claims


def _unverified_claim(token: str, name: str) -> Any:
    try:
        return _decode_unverified(token)[1].get(name)
    except CLIError:
        return None


# --- check ----------------------------------------------------------------------------------


class _Page(NamedTuple):
    """What ``check`` reads: the bytes, and for a URL the response that carried them."""

    body: bytes
    #: ``None`` for a file or stdin; else (status, headers) of the live response.
    response: tuple[int, list[tuple[str, str]]] | None = None


def _cmd_check(args: argparse.Namespace) -> int:
    page = _read_page(args)
    from .rewriter import explain

    try:
        reports = explain(page.body, widget_src=args.widget_src, project_id=args.project_id)
    except ValueError as exc:  # a widget_src the rewriter cannot use
        raise CLIError(str(exc), status=2) from None
    if page.response is None:
        _print_reports(reports, args, sys.stdout)
        return 0 if any(r.rewritten for r in reports) else 1
    return _check_live(reports, page.response, args, sys.stdout)


def _read_page(args: argparse.Namespace) -> _Page:
    source: str = args.source
    if source == "-":
        return _Page(sys.stdin.buffer.read())
    if "://" in source:
        return _fetch_loopback(source, _headers(args.header))
    try:
        with open(source, "rb") as f:
            return _Page(f.read())
    except OSError as exc:
        raise CLIError(f"cannot read {source}: {exc.strerror}") from None


def _print_reports(
    reports: list[TagReport], args: argparse.Namespace, out: TextIO, live: bool = False
) -> None:
    project = f", project {args.project_id}" if args.project_id else ""
    if not reports:
        print(
            f"no widget-like tag found (looking for <script> tags whose src mentions "
            f"{args.widget_src}, or any tag with data-project-id{project})",
            file=out,
        )
        return
    for report in reports:
        verdict = "REWRITE" if report.rewritten else "SKIP   "
        reason = report.reason or (
            "rewritten for a signed-in user" if live else "would be rewritten"
        )
        if report.rewritten and not live and b"data-identity-token" in report.tag.lower():
            reason += " (its data-identity-token is replaced)"
        print(f"{report.line}:{report.col}\t{verdict} {reason}", file=out)
        print(f"\t{_snippet(report.tag)}", file=out)
    count = sum(r.rewritten for r in reports)
    print(
        f"{len(reports)} widget-like tag(s), {count} would be rewritten (widget "
        f"{args.widget_src}{project}; only HTML responses for a signed-in user are rewritten)",
        file=out,
    )


def _snippet(tag: bytes, limit: int = 160) -> str:
    text = tag.decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- check: a live page ---------------------------------------------------------------------


def _check_live(
    reports: list[TagReport],
    response: tuple[int, list[tuple[str, str]]],
    args: argparse.Namespace,
    out: TextIO,
) -> int:
    """A page as the middleware served it: is the response rewritable, does the tag carry a
    token, and (with the secret) is that token one Reqio accepts?

    Exit 0 when a tag carries a token that verifies (or, without the secret, carries one), or
    when the page would be rewritten for a signed-in user and none was asked about; else 1.
    """
    status, headers = response
    rewritable, why = _response_verdict(status, headers)
    print(
        f"response: {status} {_header(headers, 'content-type') or '(no Content-Type)'}: {why}",
        file=out,
    )
    if not rewritable:
        for report in reports:
            print(f"{report.line}:{report.col}\tSKIP    the response is not rewritten", file=out)
            print(f"\t{_snippet(report.tag)}", file=out)
        print(f"{len(reports)} widget-like tag(s), none rewritten in this response", file=out)
        return 1
    _print_reports(reports, args, out, live=True)
    tokens = [t for r in reports if r.rewritten and (t := _token_of(r.tag)) is not None]
    if not tokens:
        return _no_token(reports, args, out)
    verdicts = [_report_token(t, args, out) for t in tokens]  # one line each, none skipped
    return 0 if all(verdicts) else 1


def _no_token(reports: list[TagReport], args: argparse.Namespace, out: TextIO) -> int:
    """A rewritable page without a token: fine for an anonymous request, a miss otherwise."""
    if not any(r.rewritten for r in reports):
        return 1
    signed_in = any(
        h.split(":", 1)[0].strip().lower() in ("cookie", "authorization") for h in args.header
    )
    if signed_in:
        print(
            "no token on the page: the middleware found no signed-in user for this "
            "request (check the cookie, and the resolver or middleware order)",
            file=out,
        )
        return 1
    print(
        "no token on the page: the request was anonymous (pass the session cookie "
        "with -H 'Cookie: ...' to see a signed-in page)",
        file=out,
    )
    return 0


_TOKEN_ATTR = re.compile(
    rb"""[\s/"']data-identity-token\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE
)


def _token_of(tag: bytes) -> str | None:
    match = _TOKEN_ATTR.search(tag)
    if match is None:
        return None
    value = next(g for g in match.groups() if g is not None)
    return value.decode("ascii", "replace")


def _report_token(token: str, args: argparse.Namespace, out: TextIO) -> bool:
    """One line on the token a tag carries; False when Reqio would reject it."""
    secret = os.environ.get("REQIO_SECRET", "")
    if not secret:
        print(
            "token: present, not verified (set REQIO_SECRET to check its signature, "
            "audience and expiry)",
            file=out,
        )
        return True
    audience = _audience(args, required=False)
    try:
        header, _claims = _decode_unverified(token)
        claims = _verify(token, header, secret, audience)
    except CLIError as exc:
        print(f"token: REJECTED: {exc}", file=out)
        return False
    left = int(claims["exp"] - time.time())
    aud = f"audience {audience}" if audience else "audience not checked (set REQIO_AUDIENCE or "
    aud += "" if audience else "REQIO_PROJECT_ID)"
    print(
        f"token: verified: signature, {aud}, sub {claims['sub']!r}, expires in {left} s", file=out
    )
    return True


def _response_verdict(status: int, headers: list[tuple[str, str]]) -> tuple[bool, str]:
    """The middleware's own decision on this response (``policy.classify``), and why."""
    from .policy import ENCODED_ACTION, PASS_ACTION, classify

    action, _ = classify("GET", status, headers)
    if action is PASS_ACTION:
        return False, "passed through untouched: " + _why_passed(status, headers)
    if action is ENCODED_ACTION:
        encoding = _header(headers, "content-encoding")
        if encoding.strip().lower() in _recoded_codings():
            return True, f"{encoding}-compressed HTML: decoded, rewritten and re-encoded"
        return False, (
            f"{encoding}-compressed HTML passes through without a token: put the compression "
            "middleware outside (before) ReqioMiddleware"
        )
    return True, "HTML, so it is rewritten for a signed-in user (any status with a body)"


def _why_passed(status: int, headers: list[tuple[str, str]]) -> str:
    """In words, the rule of ``policy.classify`` that let this response pass."""
    from .policy import is_ascii_compatible

    ctype = _header(headers, "content-type")
    media, _, params = ctype.partition(";")
    if status < 200 or status in (204, 206, 304):
        return f"a {status} response has no body to rewrite"
    if media.strip().lower() not in ("text/html", "application/xhtml+xml"):
        return "not HTML (only text/html and application/xhtml+xml are rewritten)"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        charset = value.strip().strip('"')
        if key.strip().lower() == "charset" and not is_ascii_compatible(charset):
            return f"charset {charset!r} does not spell tags in ASCII"
    if _header(headers, "content-range"):
        return "a partial (Content-Range) response"
    if _header(headers, "content-disposition").split(";")[0].strip().lower() == "attachment":
        return "a download (Content-Disposition: attachment)"
    return "not a page the middleware rewrites"


def _recoded_codings() -> frozenset[str]:
    """The Content-Encodings the middleware decodes and re-encodes (none without the module)."""
    try:
        from .compression import supported
    except ImportError:
        return frozenset()
    return frozenset(supported())


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return ", ".join(v for k, v in headers if k.lower() == name)


def _headers(raw: list[str]) -> dict[str, str]:
    headers = {"Accept": "text/html"}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CLIError(f"--header {item!r}: expected 'Name: value'", status=2)
        headers[name.strip()] = value.strip()
    return headers


def _fetch_loopback(url: str, headers: dict[str, str]) -> _Page:
    """GET a page from this machine only: ``check`` is a debugging aid, not a crawler."""
    import http.client

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"not an http URL: {url!r}", status=2)
    if not _is_loopback(parts.hostname):
        raise CLIError(
            f"{parts.hostname} is not loopback; check fetches only 127.0.0.1, ::1 or localhost "
            "(save the page and pass the file instead)",
            status=2,
        )
    conn_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_class(parts.hostname, parts.port, timeout=15)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise CLIError(f"cannot fetch {url}: {exc}") from None
    finally:
        conn.close()
    got = response.getheaders()
    return _Page(_decoded(body, _header(got, "content-encoding")), (response.status, got))


def _decoded(body: bytes, encoding: str) -> bytes:
    """The page's text when the server compressed it (so its tags can still be listed)."""
    import zlib

    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
    bits = wbits.get(encoding.strip().lower())
    if bits is None:
        return body
    try:
        return zlib.decompress(body, bits)
    except zlib.error:
        if bits == zlib.MAX_WBITS:  # "deflate" is sent raw by some servers
            with contextlib.suppress(zlib.error):
                return zlib.decompress(body, -zlib.MAX_WBITS)
        return body


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() not in ("localhost", "localhost."):
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


# --- doctor and --version -------------------------------------------------------------------


def _version(dist: str = "reqio-middleware") -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _scanner() -> str:
    """ "C" or "Python": the tag scanner the rewriter runs."""
    import importlib

    from . import rewriter

    scanner = getattr(rewriter, "SCANNER", None)
    if isinstance(scanner, str):
        return scanner
    try:
        importlib.import_module(f"{__package__}._speedups")
    except ImportError:
        return "Python"
    return "C"


#: The settings the middlewares read from the environment; only the secret's value is hidden.
_SETTINGS = ("REQIO_SECRET", "REQIO_PROJECT_ID", "REQIO_AUDIENCE")
_OPTIONAL = ("starlette", "fastapi", "uvicorn", "Django", "Flask", "Flask-Login", "brotli")


def _cmd_doctor(args: argparse.Namespace) -> int:
    scanner = _scanner()
    note = "" if scanner == "C" else " (the C extension is not built: the same scanner, slower)"
    lines = [
        f"{PROG} {_version()}",
        f"scanner: {scanner}{note}",
        f"Python {platform.python_version()} ({platform.python_implementation()}) "
        f"at {sys.executable}",
        f"PyJWT {_version('PyJWT')}, asgiref {_version('asgiref')}",
        "optional: " + ", ".join(f"{d} {_version(d)}" for d in _OPTIONAL),
        f"compressed HTML: {_compression_line()}",
        "settings:",
        *_settings_lines(),
    ]
    problem = _startup_problem()
    lines.append(f"middleware: {problem or 'would start with this environment'}")
    print("\n".join(lines))
    return 1 if problem else 0


def _compression_line() -> str:
    codings = _recoded_codings()
    if not codings:
        return "passes through without a token (put compression outside the middleware)"
    return f"decoded, rewritten and re-encoded ({', '.join(sorted(codings))})"


def _settings_lines() -> list[str]:
    lines = []
    for name in _SETTINGS:
        value = os.environ.get(name, "")
        if not value:
            shown = "not set"
        elif name == "REQIO_SECRET":
            shown = "set (value hidden)"
        else:
            shown = repr(value)
        lines.append(f"  {name}: {shown}")
    return lines


def _startup_problem() -> str | None:
    """What the middleware would refuse to start without, as its own message says it."""
    from .config import ConfigurationError, Settings

    try:
        Settings()
    except (ConfigurationError, ValueError) as exc:
        return str(exc)
    return None


# --- demo -----------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .demo.app import run
    except ImportError as exc:
        raise CLIError(
            f"the demo needs starlette and uvicorn ({exc}); install them with: "
            "pip install 'reqio-middleware[demo]'"
        ) from None
    run(host=args.host, port=args.port, out=sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
