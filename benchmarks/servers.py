"""Server processes on loopback and ``wrk`` against them, for the end-to-end sections."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import HERE, SECRET
from pages import CHUNK
from report import NOTES

E2E_SECONDS = 3  # per wrk run: long enough for a steady rate, short enough to keep runs bounded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(cmd: list[str], what: str, ready_url: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until ``ready_url`` answers over HTTP, not merely until the
    port accepts: gunicorn's master binds the socket before its worker has imported the
    app, so a bare connect would let the first wrk round measure the worker's start-up.

    The server's stderr goes to an unlinked temporary file rather than the terminal
    (waitress logs a "Task queue depth" warning whenever wrk's 16 connections outnumber
    its threads); its tail is in the error when the server does not come up.
    """
    import tempfile

    with tempfile.TemporaryFile() as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, **popen)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as resp:
                    resp.read()
                    return proc
            except OSError:
                time.sleep(0.05)
        _stop(proc)
        log.seek(0)
        tail = log.read()[-300:].decode(errors="replace").strip()
        raise RuntimeError(f"{what} did not start: {tail or 'no output'}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wrk(url: str, seconds: int, cookie: str | None = None) -> tuple[float, float]:
    """Requests per second and wrk's 99th percentile latency in seconds (nan if absent)."""
    header = ["-H", f"Cookie: {cookie}"] if cookie else []
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", *header, url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        NOTES.append(f"e2e: {errors.group(1)} non-2xx answers from {url}")
    return rps, _seconds(p99.group(1)) if p99 else float("nan")


def _seconds(latency: str) -> float:
    """wrk's latency figures ("812.00us", "5.38ms", "1.02s", "1.00m") in seconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", latency)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def _e2e_cell(rps: float, p99: float) -> str:
    return f"{rps:.0f} req/s, p99 {p99 * 1e3:.2f} ms"


def _interleaved(
    urls: dict[str, str], rounds: int, cookies: dict[str, str] | None = None
) -> dict[str, tuple[float, float]]:
    """wrk on each url in turn, ``rounds`` times: the medians of req/s and of p99.

    Taking the servers in turn within each round keeps a drift in machine load from landing
    on one of them only. ``cookies`` gives a ``Cookie`` header per name (signed-in runs).
    """
    cookies = cookies or {}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            runs[name].append(_wrk(url, E2E_SECONDS, cookies.get(name)))
    return {
        name: (statistics.median(r for r, _ in got), statistics.median(p for _, p in got))
        for name, got in runs.items()
    }


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _download_rss(pid: int, url: str) -> tuple[int, int, bool]:
    """Bytes received, peak RSS growth of process ``pid`` while streaming, whether a token came."""
    import threading

    base = _rss(pid)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    token = False
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            first = resp.read(CHUNK * 2)
            token = b"data-identity-token" in first
            received = len(first)
            while block := resp.read(1 << 20):
                received += len(block)
    finally:
        done.set()
        sampler.join()
    return received, peak[0] - base, token


def _worker_pid(proc: subprocess.Popen[bytes], kind: str) -> int:
    """The process that holds the responses: gunicorn's worker, not its master."""
    if kind != "gunicorn":
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0]) if children else proc.pid


def server_command(kind: str, target: str, port: int) -> list[str]:
    """One server process on ``port`` serving ``module:attr``.

    Every server gets one process, so the figures compare the middleware and not the number
    of cores a server manages to use. The WSGI servers get the same 4 threads: gunicorn runs
    the ``gthread`` worker because the ``sync`` worker closes the connection after each
    response (no keep-alive), which would make wrk measure TCP set-up instead of the app.
    """
    if kind == "uvicorn":
        options = f"--host 127.0.0.1 --port {port} --log-level warning --no-access-log"
        return [sys.executable, "-m", "uvicorn", target, *options.split()]
    if kind == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=1",
            "--worker-class=gthread",
            "--threads=4",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            target,
        ]
    if kind == "waitress":
        return [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            "--threads=4",
            target,
        ]
    if kind in ("granian", "granian-wsgi"):
        interface = "wsgi" if kind == "granian-wsgi" else "asgi"
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            interface,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--blocking-threads",
            "4" if interface == "wsgi" else "1",
            "--log-level",
            "warning",
            "--no-ws",
            target,
        ]
    raise ValueError(f"unknown server {kind!r}")


def start_server(
    kind: str, target: str, env: dict[str, str], ready_path: str = "/json"
) -> tuple[subprocess.Popen[bytes], str]:
    """``server_command`` on a free port, started from this folder; waits until it answers."""
    port = _free_port()
    environ = dict(
        os.environ,
        REQIO_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p),
        **env,
    )
    url = f"http://127.0.0.1:{port}"
    cmd = server_command(kind, target, port)
    return _spawn(cmd, kind, url + ready_path, env=environ, cwd=HERE), url
