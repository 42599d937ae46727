"""Shared test helpers and fixtures. Only helpers live here; tests live in their own files.

Helpers (import them with ``from conftest import require_tool, free_port, serve``):

``require_tool(name: str) -> str``
    Path of an external tool: a binary on ``PATH`` (``"node"``, ``"ruby"``, ``"go"``,
    ``"chromium"``, ``"wrk"``...), or ``"jose"``: the folder holding ``node_modules/jose``
    (``$REQIO_JOSE_DIR``, which ``.ci/run`` sets; run node with that folder as ``cwd`` so
    ``import "jose"`` resolves). Missing: the test is skipped with the reason, except when
    ``CI=true``, where it fails: CI installs every tool, so a missing one is a broken CI.

``free_port() -> int``
    A TCP port on 127.0.0.1 that was free a moment ago.

``serve(app, *, server="uvicorn", timeout=20.0, **options) -> ContextManager[str]``
    Runs ``app`` under a real server on 127.0.0.1 and yields its base URL
    (``"http://127.0.0.1:PORT"``); stops it on exit. ``server`` is ``"uvicorn"`` or
    ``"hypercorn"`` (ASGI) or ``"waitress"`` (WSGI). ``app`` is either an application
    object (served from a thread of the test process, so closures and events work) or an
    import string ``"module:attr"`` (served from a subprocess; ``tests/`` and the checkout
    are on its ``PYTHONPATH``). ``options`` go to ``uvicorn.Config``, hypercorn's ``Config``
    attributes or ``waitress.create_server``. Start-up is awaited with a bounded readiness
    poll; a server that does not come up within ``timeout`` seconds fails the test.

Fixtures:

``secret`` -> str
    A fresh random 48-character URL-safe secret, registered with ``no_secret_leak``.

``no_secret_leak`` (autouse)
    Captures every log record that reaches the root logger during the test (the
    ``reqio_middleware`` loggers at DEBUG, others at their own level) and fails the test if a
    registered secret appears in one (message, arguments or formatted exception). Register
    other secrets with ``no_secret_leak.register(value)``; check any text or exception
    yourself with ``no_secret_leak.check(value)``.

Hypothesis profile: ``"ci"`` when ``CI=true`` (no deadline, more examples, ``too_slow`` health
check off), ``"dev"`` otherwise (no deadline). A heavy property picks its own
``max_examples`` with ``@settings``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI") == "true"
TESTS_DIR = Path(__file__).resolve().parent
ROOT_DIR = TESTS_DIR.parent

settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


# --- external tools -----------------------------------------------------------------------


def _missing(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every tool must be installed; see .ci/run)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Skip locally, fail under CI: a green CI must mean every cross-check really ran."""
    if name == "jose":
        folder = os.environ.get("REQIO_JOSE_DIR", "")
        if folder and (Path(folder) / "node_modules" / "jose" / "package.json").is_file():
            return folder
        _missing("missing tool: npm jose (set REQIO_JOSE_DIR to a folder with node_modules/jose)")
    path = shutil.which(name)
    if path is None:
        _missing(f"missing tool: {name} not found on PATH")
    assert path is not None
    return path


# --- secrets never leak -------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)


class SecretGuard:
    """Remembers the test's secrets and looks for them in everything the test logged."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.handler = _Capture()

    def register(self, value: str) -> str:
        if value:
            self.secrets.append(value)
        return value

    def check(self, value: object, where: str = "value") -> None:
        __tracebackhide__ = True  # the failure report must not print the secret itself
        text = value if isinstance(value, str) else repr(value)
        if isinstance(value, BaseException):
            text = f"{value!r} {value}"
        for s in self.secrets:
            if s in text:
                pytest.fail(f"a registered secret leaked into {where}")

    def check_records(self) -> None:
        __tracebackhide__ = True
        if not self.secrets:
            return
        formatter = logging.Formatter()
        for record in list(self.handler.records):
            try:
                text = record.getMessage()
            except Exception:  # a bad format string is not our concern here
                text = f"{record.msg!r} {record.args!r}"
            if record.exc_info:
                text += formatter.formatException(record.exc_info)
            if record.stack_info:
                text += record.stack_info
            self.check(text, where=f"a log record of {record.name!r}")


@pytest.fixture(autouse=True)
def no_secret_leak() -> Iterator[SecretGuard]:
    # Our own logger goes to DEBUG (its records propagate to the root handler whatever the
    # root's level); third-party loggers stay as they are, so httpcore & co. do not flood
    # every failure report and slow every test with DEBUG records.
    guard = SecretGuard()
    root = logging.getLogger()
    ours = logging.getLogger("reqio_middleware")
    old_level = ours.level
    root.addHandler(guard.handler)
    ours.setLevel(logging.DEBUG)
    try:
        yield guard
    finally:
        root.removeHandler(guard.handler)
        ours.setLevel(old_level)
    guard.check_records()


@pytest.fixture
def secret(no_secret_leak: SecretGuard) -> str:
    return no_secret_leak.register(secrets.token_urlsafe(36))


# --- real servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(port: int, timeout: float, alive: Any = None) -> None:
    """Bounded readiness poll: a TCP connect that succeeds means the server listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            pytest.fail(f"server on port {port} exited before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"server on port {port} not ready after {timeout} s")


def _serve_uvicorn_thread(app: Any, port: int, options: dict[str, Any]) -> tuple[Any, Any]:
    import uvicorn

    opts: dict[str, Any] = {"log_level": "warning", "lifespan": "off"}
    opts.update(options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **opts))
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True

    return thread, stop


def _serve_hypercorn_thread(app: Any, port: int, options: dict[str, Any]) -> tuple[Any, Any]:
    import asyncio

    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    for key, value in options.items():
        setattr(config, key, value)
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(hypercorn_serve(app, config, shutdown_trigger=stopping.wait))
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"hypercorn:{port}", daemon=True)
    thread.start()

    def stop() -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stopping.set)

    return thread, stop


def _serve_waitress_thread(app: Any, port: int, options: dict[str, Any]) -> tuple[Any, Any]:
    from waitress.server import create_server  # type: ignore[import-untyped]

    opts: dict[str, Any] = {"threads": 4}
    opts.update(options)
    server = create_server(app, host="127.0.0.1", port=port, **opts)
    thread = threading.Thread(target=server.run, name=f"waitress:{port}", daemon=True)
    thread.start()

    def stop() -> None:
        server.close()
        server.task_dispatcher.shutdown()
        server._map.clear()  # lets waitress's select loop return

    return thread, stop


_THREAD_SERVERS = {
    "uvicorn": _serve_uvicorn_thread,
    "hypercorn": _serve_hypercorn_thread,
    "waitress": _serve_waitress_thread,
}


def _server_command(server: str, app: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ]
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}"]
    if server == "waitress":
        return [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}", app]
    raise ValueError(f"unknown server {server!r}")


@contextlib.contextmanager
def serve(
    app: Any, *, server: str = "uvicorn", timeout: float = 20.0, **options: Any
) -> Iterator[str]:
    """Run a real server on loopback for the duration of the ``with`` block."""
    port = free_port()
    if isinstance(app, str):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(TESTS_DIR), str(ROOT_DIR), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(_server_command(server, app, port), cwd=ROOT_DIR, env=env)
        try:
            _wait_ready(port, timeout, alive=lambda: proc.poll() is None)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return
    if server not in _THREAD_SERVERS:
        raise ValueError(f"unknown server {server!r}; use one of {sorted(_THREAD_SERVERS)}")
    thread, stop = _THREAD_SERVERS[server](app, port, options)
    try:
        _wait_ready(port, timeout, alive=thread.is_alive)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
        thread.join(timeout=10)
        if thread.is_alive():
            pytest.fail(f"{server} on port {port} did not stop within 10 s")


# --- a real browser ---------------------------------------------------------------------------

#: Debian's chromium as root, headless, with nothing reaching for the (closed) network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright, one per test module."""
    chromium = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (it is in the dev extra)")

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def feed_in_pieces(rewriter: Any, doc: bytes, sizes: list[int]) -> bytes:
    """What a streaming rewriter gives for ``doc`` fed in pieces of ``sizes``, then the rest."""
    out, at = [], 0
    for size in sizes:
        out.append(rewriter.feed(doc[at : at + size]))
        at += size
    out.append(rewriter.feed(doc[at:]))
    out.append(rewriter.close())
    return b"".join(out)
