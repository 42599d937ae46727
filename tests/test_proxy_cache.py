"""Behind a real nginx ``proxy_cache``, no user is ever served another user's token.

nginx (Debian's ``nginx-light``) runs in the foreground with its config, cache and logs in a
temporary folder, in front of a real server: uvicorn running the ASGI middleware, waitress
running the WSGI one (tests/apps/proxy_app.py). The application marks its page cacheable in
every vocabulary nginx and CDNs read (``X-Accel-Expires: 600`` first, ``Cache-Control: public``,
``Surrogate-Control``, ``CDN-Cache-Control``) and varies only on ``Accept-Encoding``. Four users
take turns, two told apart by a cookie and two by ``Authorization``; each must get a token for
themselves every time, whatever nginx was told to ignore:

- ``honours``: nginx reads every field, as installed;
- ``ignores-cache-control``: ``proxy_ignore_headers Cache-Control Expires`` with a
  ``proxy_cache_valid`` (a common micro-caching set-up): ``X-Accel-Expires: 0`` must hold;
- ``ignores-every-field``: nginx told to ignore every caching field and to cache every 200: it
  stores token pages, and only ``Vary`` (Cookie *and* Authorization) keeps users apart.

Anonymous pages keep the application's caching (nginx answers HIT). They are requested at a URL
of their own: a page that nginx cached for an anonymous visitor would be served to a signed-in
one too, without a token (a miss that no response field can prevent, not a leak).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apps.checks import TOKEN_ATTR, decode
from apps.common import PAGE
from apps.proxy_app import asgi_app, wsgi_app
from conftest import _wait_ready, free_port, require_tool, serve

USERS = {
    "alice": {"Cookie": "user=alice"},
    "bob": {"Cookie": "theme=dark; user=bob"},
    "carol": {"Authorization": "Bearer carol"},
    "dave": {"Authorization": "Bearer dave"},
}
ROUNDS = 3

LOCATIONS = {
    "honours": "",
    "ignores-cache-control": "proxy_ignore_headers Cache-Control Expires;\n"
    "proxy_cache_valid 200 10m;",
    "ignores-every-field": "proxy_ignore_headers Cache-Control Expires X-Accel-Expires"
    " Set-Cookie;\nproxy_cache_valid 200 10m;",
}
#: Where nginx was left a field that makes it keep no token page at all.
UNSTORED = ("honours", "ignores-cache-control")

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=pages:1m;
    server {{
        listen 127.0.0.1:{port};
        proxy_cache pages;
        add_header X-Cache $upstream_cache_status always;
{locations}
    }}
}}
"""
LOCATION = """\
        location /{name}/ {{
            proxy_pass {upstream}/;
            {extra}
        }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.access(found, os.X_OK) else require_tool("nginx")


def nginx_config(tmp: str, port: int, upstream: str) -> str:
    locations = "".join(
        LOCATION.format(name=name, upstream=upstream, extra=extra.replace("\n", "\n" + " " * 12))
        for name, extra in LOCATIONS.items()
    )
    return NGINX_CONF.format(tmp=tmp, port=port, locations=locations)


def run_nginx(upstream: str) -> Iterator[str]:
    binary = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="reqio-nginx-cache-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(nginx_config(tmp, port, upstream))
        log = Path(tmp) / "error.log"
        # -e: the error log before the config is read (not /var/log/nginx); -p: the prefix.
        proc = subprocess.Popen(
            [binary, "-p", tmp, "-e", str(log), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(port, 10.0, alive=lambda: proc.poll() is None)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module", params=["asgi-uvicorn", "wsgi-waitress"])
def proxy(request: pytest.FixtureRequest) -> Iterator[str]:
    nginx_binary()  # skip (or fail under CI) before starting anything
    app, server = (
        (asgi_app, "uvicorn") if request.param == "asgi-uvicorn" else (wsgi_app, "waitress")
    )
    with serve(app, server=server) as upstream:
        yield from run_nginx(upstream)


@pytest.fixture
def client(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, timeout=10.0) as http:
        yield http


def fresh_path(location: str) -> str:
    """A URL no earlier request cached: each test starts with nothing stored for it."""
    return f"/{location}/page?run={uuid.uuid4().hex}"


def token_subject(body: bytes) -> str | None:
    found = [m.group(2).decode() for m in TOKEN_ATTR.finditer(body)]
    assert len(found) <= 1, found
    return str(decode(found[0])["sub"]) if found else None


@pytest.mark.parametrize("location", list(LOCATIONS))
def test_no_user_is_ever_served_another_users_token(client: httpx.Client, location: str) -> None:
    path = fresh_path(location)
    served: list[tuple[str, str | None, str]] = []
    for _ in range(ROUNDS):
        for user, credentials in USERS.items():
            reply = client.get(path, headers=credentials)
            assert reply.status_code == 200
            served.append((user, token_subject(reply.content), reply.headers["x-cache"]))
    assert [(user, sub) for user, sub, _ in served] == [(user, user) for user, _, _ in served]
    if location in UNSTORED:
        assert {cache for _, _, cache in served} == {"MISS"}, served


@pytest.mark.parametrize("location", list(LOCATIONS))
def test_anonymous_pages_are_still_cached(client: httpx.Client, location: str) -> None:
    path = fresh_path(location)
    replies = [client.get(path) for _ in range(ROUNDS)]
    assert [r.headers["x-cache"] for r in replies] == ["MISS"] + ["HIT"] * (ROUNDS - 1)
    assert all(r.content == PAGE for r in replies)
    assert replies[-1].headers["cache-control"] == "public, max-age=600"


def test_a_token_page_tells_every_cache_not_to_store_it(client: httpx.Client) -> None:
    reply = client.get(fresh_path("honours"), headers=USERS["carol"])
    assert token_subject(reply.content) == "carol"
    assert reply.headers["cache-control"] == "private, no-store, max-age=600"
    assert reply.headers["surrogate-control"] == "no-store, max-age=0"
    assert reply.headers["cdn-cache-control"] == "no-store, max-age=0"
    assert reply.headers["vary"] == "Accept-Encoding, Cookie, Authorization"
    assert "x-accel-expires" not in reply.headers  # nginx keeps it to itself
