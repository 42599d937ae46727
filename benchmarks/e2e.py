"""The ``e2e_app`` servers under wrk: the middleware wrapped around a bare app against the bare
app, the server's memory while streaming 100 MB, and nginx ``sub_filter`` as a C reference."""

from __future__ import annotations

import subprocess
import urllib.request

from nginx import bench_nginx
from report import NOTES, row, verdict
from servers import (
    E2E_SECONDS,
    _download_rss,
    _e2e_cell,
    _interleaved,
    _stop,
    _worker_pid,
    start_server,
)

E2E_SERVERS = (
    ("uvicorn", "uvicorn + Starlette"),
    ("gunicorn", "gunicorn gthread + Flask"),
    ("waitress", "waitress + Flask"),
)


def _start_server(kind: str, wrap: bool) -> tuple[subprocess.Popen[bytes], str]:
    target = "e2e_app:app" if kind == "uvicorn" else "e2e_app:wsgi_app"
    return start_server(kind, target, {"REQIO_BENCH_WRAP": "1" if wrap else "0"})


def bench_e2e(quick: bool) -> None:
    """Real servers on loopback under wrk: wrapped vs bare, then nginx ``sub_filter``."""
    import shutil

    if shutil.which("wrk") is None:
        row("e2e", "all", "n/a (wrk not installed)", "", "")
        return
    rounds = 1 if quick else 3
    for kind, title in E2E_SERVERS:
        servers = {wrap: _start_server(kind, wrap) for wrap in (False, True)}
        try:
            with urllib.request.urlopen(servers[True][1] + "/ident", timeout=10) as resp:
                if b"data-identity-token" not in resp.read():
                    NOTES.append(f"e2e {kind}: the wrapped /ident page has no token")
            for label, path in (
                ("20 KB identified page", "/ident"),
                ("20 KB anonymous page", "/anon"),
                ("JSON", "/json"),
            ):
                got = _interleaved(
                    {"bare": servers[False][1] + path, "ours": servers[True][1] + path}, rounds
                )
                ratio = got["ours"][0] / got["bare"][0]
                check = f"{ratio:.2f}x bare req/s"
                if path == "/ident":
                    check = verdict(ratio >= 0.95, f"{ratio:.2f}x bare req/s (≥ 0.95x)")
                row(
                    f"e2e {title}, wrk -t1 -c16 -d{E2E_SECONDS}s",
                    label,
                    _e2e_cell(*got["ours"]),
                    f"bare {_e2e_cell(*got['bare'])}",
                    check,
                )
            big = {
                wrap: _download_rss(_worker_pid(servers[wrap][0], kind), servers[wrap][1] + "/big")
                for wrap in (False, True)
            }
            if not big[True][2] or big[True][0] < 100 * 1_000_000:
                NOTES.append(f"e2e {kind}: /big came without a token or short")
            row(
                f"e2e {title}",
                "100 MB identified page, one download",
                f"server RSS +{big[True][1] / 2**20:.1f} MiB while streaming",
                f"bare +{big[False][1] / 2**20:.1f} MiB",
                "",
            )
            if kind == "uvicorn":
                bench_nginx(servers[False][1], rounds)
        finally:
            for proc, _ in servers.values():
                _stop(proc)
