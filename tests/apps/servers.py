"""Real servers in subprocesses for the framework tests: gunicorn (which ``conftest.serve``
does not run) next to the others, each on a fresh loopback port, with a bounded start-up."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command(server: str, app: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if server == "gunicorn":  # the sync worker
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-b",
            bind,
            "-w",
            "1",
            "--log-level",
            "warning",
            app,
        ]
    if server == "gunicorn-gthread":
        return [sys.executable, "-m", "gunicorn", "-b", bind, "-k", "gthread", "--threads", "4",
                "--log-level", "warning", app]  # fmt: skip
    if server == "gunicorn-uvicorn":
        return [sys.executable, "-m", "gunicorn", "-b", bind, "-k",
                "uvicorn.workers.UvicornWorker", "--log-level", "warning", app]  # fmt: skip
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", app, "--bind", bind]
    if server == "waitress":
        return [sys.executable, "-m", "waitress", "--listen", bind, app]
    raise ValueError(f"unknown server {server!r}")


def refused(server: str, app: str, env: dict[str, str], timeout: float = 60.0) -> str:
    """Start ``server`` for an app that must not start; the server's output once it exited."""
    environ = dict(os.environ, **env)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environ.get("PYTHONPATH", "")) if p
    )
    command = _command(server, app, _free_port())
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{server} kept serving {app} for {timeout} s although it cannot work")
    assert done.returncode != 0, f"{server} exited with 0"
    return done.stdout + done.stderr


@contextlib.contextmanager
def run(server: str, app: str, env: dict[str, str] | None = None, timeout: float = 30.0
        ) -> Iterator[str]:  # fmt: skip
    """Serve ``"module:attr"`` with ``server``; yields the base URL, stops the server on exit."""
    port = _free_port()
    environ = dict(os.environ, **(env or {}))
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environ.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.Popen(_command(server, app, port), cwd=ROOT, env=environ)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{server} serving {app} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{server} serving {app} not ready after {timeout} s")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
