"""nginx ``sub_filter`` in front of the bare uvicorn app: the C reference for a body edit."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

from pages import WIDGET_SRC, make_page
from report import NOTES, row
from servers import E2E_SECONDS, _e2e_cell, _free_port, _interleaved, _spawn, _stop

#: What nginx's ``sub_filter`` puts on the tag: a fixed literal shaped like one of our tokens
#: (the C reference does no minting, only the literal body edit).
NGINX_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzQyIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5j"
    "b20iLCJhdWQiOiJodHRwczovL3JlcWlvLmFwcC9wL3Byb2pfYWJjMTIzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOj"
    "E3MDAwMDAzMDB9.c2lnbmF0dXJlLW9mLWEtZml4ZWQtbGl0ZXJhbC10b2tlbi0tLS0"
)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # Kept-alive HTTP/1.1 connections to the app, as wrk keeps its own alive: otherwise
    # nginx would pay a TCP set-up per request that the direct rows do not.
    upstream app {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
        }}
    }}
    server {{
        listen 127.0.0.1:{sub};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # sub_filter only sees an uncompressed body.
            proxy_set_header Accept-Encoding "";
            sub_filter '{old}' '{new}';
            sub_filter_once on;
            # text/html is sub_filter_types' default (naming it again is a duplicate).
        }}
    }}
}}
"""


def _nginx() -> str | None:
    import shutil

    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def bench_nginx(upstream: str, rounds: int) -> None:
    """nginx ``sub_filter`` in front of the bare app: the C reference for a literal body edit.

    Three rows from one interleaved run on the 20 KB identified page: nginx with
    ``sub_filter`` (the same literal token on every page, nothing minted), nginx as a plain
    proxy, and the bare uvicorn app direct. ``sub_filter`` vs plain proxy is the cost of the
    literal rewrite in C; plain proxy vs direct is what a proxy hop costs on this machine.
    nginx runs as one foreground process (``master_process off``, one worker) with its
    config, pid, logs and temp files in a temporary directory.
    """
    import tempfile

    section = f"e2e nginx sub_filter → bare uvicorn, wrk -t1 -c16 -d{E2E_SECONDS}s"
    binary = _nginx()
    if binary is None:
        row(section, "20 KB identified page", "n/a (apt install nginx-light)", "", "")
        return
    old = f'<script src="{WIDGET_SRC}"'
    new = f'<script data-identity-token="{NGINX_TOKEN}" src="{WIDGET_SRC}"'
    if old.encode() not in make_page(20_000, "end"):  # the page e2e_app serves
        NOTES.append("e2e nginx: the sub_filter literal is not on the page (pages.py changed?)")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    with tempfile.TemporaryDirectory(prefix="reqio-nginx-") as tmp:
        plain, sub = _free_port(), _free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp,
                upstream=upstream.removeprefix("http://"),
                plain=plain,
                sub=sub,
                old=old,
                new=new,
            )
        )
        # -e: the error log before the config is read (not /var/log/nginx); -p: the prefix.
        try:
            proc = _spawn(
                [binary, "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf)],
                "nginx",
                f"http://127.0.0.1:{plain}/json",
            )
        except RuntimeError as exc:
            row(section, "20 KB identified page", f"n/a ({exc})", "", "")
            return
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{sub}/ident", timeout=10) as resp:
                body = resp.read()
            if f'data-identity-token="{NGINX_TOKEN}"'.encode() not in body:
                NOTES.append("e2e nginx: sub_filter did not put the token on the page")
            got = _interleaved(
                {
                    "sub": f"http://127.0.0.1:{sub}/ident",
                    "plain": f"http://127.0.0.1:{plain}/ident",
                    "direct": upstream + "/ident",
                },
                rounds,
            )
        finally:
            _stop(proc)

    row(
        section,
        f"20 KB identified page: {version.split(': ')[-1]} + sub_filter (literal token)",
        _e2e_cell(*got["sub"]),
        f"nginx plain proxy {_e2e_cell(*got['plain'])}",
        f"{got['sub'][0] / got['plain'][0]:.2f}x plain proxy req/s",
    )
    row(
        section,
        "20 KB identified page: nginx plain proxy",
        _e2e_cell(*got["plain"]),
        f"bare uvicorn direct {_e2e_cell(*got['direct'])}",
        f"{got['plain'][0] / got['direct'][0]:.2f}x direct req/s",
    )
