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
import ipaddress
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO
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
    except CLIError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    return status


def _one_line_warning(
    message: Warning | str, category: type[Warning], *_args: object, **_kwargs: object
) -> str:
    return f"{PROG}: warning: {message}\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Give the Reqio widget a signed identity; demo and debugging tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the demo app (a stand-in widget shows the signed-in user's verified claims)",
        description="Run the demo on http://HOST:PORT/. Uses REQIO_SECRET when set, otherwise "
        "generates a demo secret and prints it.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    demo.set_defaults(run=_cmd_demo)

    mint = commands.add_parser(
        "mint",
        help="print a token for a user (secret from REQIO_SECRET)",
        description="Mint a Reqio identity token and print it alone on stdout. The secret comes "
        "from REQIO_SECRET; the audience from --audience / --project-id, else REQIO_AUDIENCE / "
        "REQIO_PROJECT_ID.",
    )
    mint.add_argument("--sub", required=True, help="the user id")
    mint.add_argument("--email")
    mint.add_argument("--plan", help="trait: plan name")
    mint.add_argument("--amount", type=int, metavar="CENTS", help="trait: price in cents")
    mint.add_argument("--interval", metavar="month|year", help="trait: billing interval")
    mint.add_argument("--ttl", type=_positive, default=300, metavar="S", help="default 300")
    _audience_options(mint)
    mint.set_defaults(run=_cmd_mint)

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
    inspect.set_defaults(run=_cmd_inspect)

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
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header for a URL, e.g. a session cookie (repeatable)",
    )
    check.set_defaults(run=_cmd_check)
    return parser


def _audience_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--audience", metavar="URL", help="e.g. https://reqio.app/p/proj_abc123")
    group.add_argument("--project-id", metavar="ID", help="audience https://reqio.app/p/ID")


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
    from .identity import Identity, IdentityError
    from .tokens import mint_token

    secret = _secret()
    audience = _audience(args, required=True)
    assert audience is not None
    traits = {"plan": args.plan, "amount": args.amount, "interval": args.interval}
    try:
        identity = Identity(
            sub=args.sub,
            email=args.email,
            traits={k: v for k, v in traits.items() if v is not None} or None,
        )
        token = mint_token(identity, secret=secret, audience=audience, ttl=args.ttl)
    except IdentityError as exc:
        raise CLIError(f"invalid {exc}") from None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(token)
    return 0


# --- inspect --------------------------------------------------------------------------------


def _cmd_inspect(args: argparse.Namespace) -> int:
    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
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


def _cmd_check(args: argparse.Namespace) -> int:
    source: str = args.source
    if source == "-":
        html = sys.stdin.buffer.read()
    elif "://" in source:
        html = _fetch_loopback(source, _headers(args.header))
    else:
        try:
            with open(source, "rb") as f:
                html = f.read()
        except OSError as exc:
            raise CLIError(f"cannot read {source}: {exc.strerror}") from None
    from .rewriter import explain

    try:
        reports = explain(html, widget_src=args.widget_src, project_id=args.project_id)
    except ValueError as exc:  # a widget_src the rewriter cannot use
        raise CLIError(str(exc), status=2) from None
    _print_reports(reports, args, sys.stdout)
    return 0 if any(r.rewritten for r in reports) else 1


def _print_reports(reports: list[TagReport], args: argparse.Namespace, out: TextIO) -> None:
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
        reason = report.reason or "would be rewritten"
        if report.rewritten and b"data-identity-token" in report.tag.lower():
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


def _headers(raw: list[str]) -> dict[str, str]:
    headers = {"Accept": "text/html"}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CLIError(f"--header {item!r}: expected 'Name: value'", status=2)
        headers[name.strip()] = value.strip()
    return headers


def _fetch_loopback(url: str, headers: dict[str, str]) -> bytes:
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
    ctype = response.getheader("Content-Type", "")
    if response.status != 200 or "html" not in ctype.lower():
        print(
            f"note: {url} answered {response.status} {ctype or '(no Content-Type)'}; the "
            "middleware only rewrites 200 text/html responses",
            file=sys.stderr,
        )
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
