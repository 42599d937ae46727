"""Load and soak (issue 7, item 2), bounded: real servers, 64 connections, a fixed request count.

uvicorn with two worker processes serves ``tests.apps.starlette_app:app``; gunicorn (two
gthread workers) and waitress serve ``tests.apps.wsgi_app:app``. A strict client checks every
response (status, exact ``Content-Length``, a token for exactly that request's user on every
identified page, none elsewhere), and the servers' resident memory must not grow between the
end of the first third of the run and its end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conftest import free_port  # noqa: E402

from tests.apps.common import AUDIENCE, JSON_BODY, SECRET  # noqa: E402

CONNECTIONS = 64
WARM_UP = 300
PER_THIRD = 1000  # 3,000 measured requests per server
RUN_TIMEOUT = 150.0  # seconds for the whole run of one server; a hang fails the test
RSS_DRIFT = 0.05

TOKEN = re.compile(rb' data-identity-token="([^"]*)"')

# (path, identified, kind): kind "html" pages carry the widget; "json" never gets a token.
MIX = [
    ("/page", True, "html"),
    ("/page", False, "html"),
    ("/json", True, "json"),
    ("/stream", True, "html"),
    ("/static/", True, "html"),
    ("/stream", False, "html"),
    ("/bigstream", True, "html"),
    ("/static/", False, "html"),
]


@dataclass
class Tally:
    served: int = 0
    errors: list[str] = field(default_factory=list)
    length_mismatches: int = 0
    tokens_checked: int = 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def rss_kib(pid: int) -> tuple[int, int]:
    """Resident memory of ``pid`` and all its descendants (uvicorn's workers), and their count."""
    total, count, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if match:
            total += int(match.group(1))
            count += 1
        todo.extend(_children(current))
    return total, count


def _start(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded readiness poll: the health page answers through a worker
            assert proc.poll() is None, "server exited during start-up"
            assert time.monotonic() < deadline, "server not ready within 30 s"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except (OSError, httpx.HTTPError):
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def check(tally: Tally, i: int, path: str, user: str | None, kind: str, r: httpx.Response) -> None:
    where = f"#{i} {path} user={user}"
    body = r.content
    if r.status_code != 200:
        tally.errors.append(f"{where}: status {r.status_code}")
        return
    declared = r.headers.get("content-length")
    if declared is not None and int(declared) != len(body):
        tally.length_mismatches += 1
        tally.errors.append(f"{where}: Content-Length {declared} but {len(body)} bytes")
    tokens = TOKEN.findall(body)
    if kind == "json":
        if body != JSON_BODY:
            tally.errors.append(f"{where}: JSON body changed")
    elif user is None:
        if tokens:
            tally.errors.append(f"{where}: token on an anonymous page")
    elif len(tokens) != 1:
        tally.errors.append(f"{where}: {len(tokens)} tokens on an identified page")
    else:
        try:
            claims = jwt.decode(tokens[0], SECRET, algorithms=["HS256"], audience=AUDIENCE)
        except jwt.PyJWTError as exc:
            tally.errors.append(f"{where}: bad token ({type(exc).__name__})")
            return
        if claims.get("sub") != user:
            tally.errors.append(f"{where}: token for {claims.get('sub')!r}")
        tally.tokens_checked += 1
    if kind != "json" and user is None and b"data-identity-token" in body:
        tally.errors.append(f"{where}: stray token attribute")


async def drive(base: str, start: int, count: int, tally: Tally) -> None:
    numbers = iter(range(start, start + count))
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for i in numbers:  # shared iterator: each request number is taken exactly once
                path, identified, kind = MIX[i % len(MIX)]
                user = f"user-{i}" if identified else None
                headers = {"X-User": user} if user else {}
                try:
                    response = await client.get(path, headers=headers)
                except httpx.HTTPError as exc:
                    tally.errors.append(f"#{i} {path}: {type(exc).__name__}: {exc}")
                    continue
                tally.served += 1
                check(tally, i, path, user, kind, response)

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


def soak(base: str, pid: int) -> tuple[Tally, int, int, int]:
    async def main() -> tuple[Tally, int, int, int]:
        warm = Tally()
        await drive(base, 0, WARM_UP, warm)
        assert not warm.errors, warm.errors[:5]
        tally = Tally()
        counter = itertools.count(WARM_UP, PER_THIRD)
        await drive(base, next(counter), PER_THIRD, tally)
        after_first_third, processes = rss_kib(pid)
        await drive(base, next(counter), PER_THIRD, tally)
        await drive(base, next(counter), PER_THIRD, tally)
        at_end, _ = rss_kib(pid)
        return tally, after_first_third, at_end, processes

    return asyncio.run(asyncio.wait_for(main(), RUN_TIMEOUT))


# waitress's own runner, without its "Task queue depth is N" warnings: 64 connections on
# 8 threads queue by design, and one line per queued request would drown the test output.
WAITRESS_QUIET = (
    "import logging, sys; "
    "logging.getLogger('waitress.queue').setLevel(logging.ERROR); "
    "from waitress.runner import run; run(argv=['waitress', *sys.argv[1:]])"
)

SERVERS = {
    "uvicorn-2-workers": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.apps.starlette_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ],
    # gunicorn's threaded workers: two processes, 16 threads each, for 64 connections.
    "gunicorn-2-workers": lambda port: [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "16",
        "--log-level",
        "warning",
        "tests.apps.wsgi_app:app",
    ],
    "waitress": lambda port: [
        sys.executable,
        "-c",
        WAITRESS_QUIET,
        f"--listen=127.0.0.1:{port}",
        "--threads=8",
        f"--connection-limit={CONNECTIONS * 2}",
        "tests.apps.wsgi_app:app",
    ],
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_soak(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    for proc in _start(SERVERS[server](port), port):
        began = time.monotonic()
        tally, rss_mid, rss_end, processes = soak(f"http://127.0.0.1:{port}", proc.pid)
        took = time.monotonic() - began
        drift = (rss_end - rss_mid) / rss_mid
        with capsys.disabled():
            print(
                f"\n[soak] {server}: {tally.served} requests served (+{WARM_UP} warm-up), "
                f"{len(tally.errors)} errors, {tally.length_mismatches} Content-Length "
                f"mismatches, {tally.tokens_checked} tokens checked; RSS of {processes} "
                f"process(es) {rss_mid} KiB -> {rss_end} KiB ({drift:+.2%}); {took:.1f} s"
            )
        assert tally.errors == [], tally.errors[:10]
        assert tally.served == 3 * PER_THIRD
        assert tally.length_mismatches == 0
        assert tally.tokens_checked > 0
        if server.endswith("2-workers"):
            assert processes >= 3, "expected the server's supervisor and its two workers"
        assert drift <= RSS_DRIFT, f"RSS grew by {drift:.2%} between the first third and the end"
