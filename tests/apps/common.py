"""What every test application shares: the settings, the pages and the header-based resolver.

The signed-in user is named by the ``X-User`` request header so that a test (or a load
client) can choose, per request, whether the page is identified and for whom.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

SECRET = "test-secret-for-framework-tests-0123456789abcdefABCDEF"
PROJECT_ID = "proj_abc123"
AUDIENCE = f"https://reqio.app/p/{PROJECT_ID}"
SETTINGS: dict[str, Any] = {"secret": SECRET, "project_id": PROJECT_ID}

WIDGET = b'<script src="https://reqio.app/widget.js" data-project-id="proj_abc123" async></script>'

# Tags that must never be touched: a look-alike host, another project, one in a comment.
DECOYS = (
    b'<script src="https://reqio.app.evil.example/widget.js" data-project-id="proj_abc123">'
    b"</script>\n"
    b'<script src="https://reqio.app/widget.js" data-project-id="proj_other"></script>\n'
    b"<!-- " + WIDGET + b" -->\n"
)


def page(title: str = "Home", padding: int = 0) -> bytes:
    """A complete HTML document with one widget tag (and decoys) near the end of <body>."""
    return (
        b"<!doctype html>\n<html><head><meta charset=utf-8><title>"
        + title.encode()
        + b"</title></head>\n<body>\n<h1>Hello</h1>\n"
        + b"<p>"
        + b"x" * padding
        + b"</p>\n"
        + DECOYS
        + WIDGET
        + b"\n</body></html>\n"
    )


PAGE = page()


def stream_chunks(size: int = 64, padding: int = 0) -> list[bytes]:
    """The streamed page in small pieces, cut so that the widget tag straddles two chunks."""
    body = page("Streamed", padding)
    cut = body.rindex(WIDGET) + len(WIDGET) // 2  # the live tag, not the commented one
    head, tail = body[:cut], body[cut:]
    pieces = [head[i : i + size] for i in range(0, len(head), size)]
    pieces += [tail[i : i + size] for i in range(0, len(tail), size)]
    assert b"".join(pieces) == body
    return pieces


def iter_stream(size: int = 64, padding: int = 0) -> Iterator[bytes]:
    yield from stream_chunks(size, padding)


JSON_BODY = b'{"widget": "<script src=\\"https://reqio.app/widget.js\\"></script>", "ok": true}'


def user_from_scope(scope: Mapping[str, Any]) -> dict[str, str] | None:
    """ASGI resolver: the ``X-User`` header names the user; absent means anonymous."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-user":
            return {"sub": value.decode("latin-1"), "email": value.decode("latin-1") + "@ex.test"}
    return None


async def async_user_from_scope(scope: Mapping[str, Any]) -> dict[str, str] | None:
    return user_from_scope(scope)


def user_from_environ(environ: Mapping[str, Any]) -> dict[str, str] | None:
    """WSGI resolver: the same rule as :func:`user_from_scope`."""
    user = environ.get("HTTP_X_USER")
    if not user:
        return None
    return {"sub": user, "email": user + "@ex.test"}
