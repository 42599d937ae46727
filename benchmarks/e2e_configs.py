"""The README's configurations under real servers and wrk: ours against the same app without
Reqio and against the seeds' way, anonymous, signed-in and JSON, on the 20 KB page.

Each configuration runs as two server processes (``configs_app`` bare and ours); the seeds'
way is the bare app's ``/seeds`` route. Rounds are interleaved across the three.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from typing import Any

from configs import ASGI, NAMES, Unavailable, build
from pages import make_page
from report import NOTES, row, skipped, verdict
from servers import E2E_SECONDS, _e2e_cell, _interleaved, _stop, start_server

#: (configuration, server) pairs; granian where it is installed.
PAIRS = [
    ("starlette", "uvicorn"),
    ("fastapi", "uvicorn"),
    ("starlette", "granian"),
    ("flask", "gunicorn"),
    ("flask", "waitress"),
    ("django", "gunicorn"),
    ("django", "waitress"),
    ("django-asgi", "uvicorn"),
]
TOKEN = b"data-identity-token"
#: Targets per request kind: anonymous and JSON against bare, signed-in against the seeds.
TARGETS = {"anonymous 20 KB page": 0.95, "JSON": 0.97, "signed-in 20 KB page": 1.00}


def bench_e2e_configs(quick: bool) -> None:
    if shutil.which("wrk") is None:
        skipped("e2e configurations", "all", "wrk not installed")
        return
    rounds = 1 if quick else 3
    for config, server in PAIRS:
        section = f"e2e {server} + {NAMES[config]}, wrk -t1 -c16 -d{E2E_SECONDS}s"
        why = _unavailable(config, server)
        if why:
            skipped(section, "all", why)
            continue
        try:
            _bench_pair(section, config, server, rounds)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            skipped(section, "all", f"{type(exc).__name__}: {exc}"[:200])


def _unavailable(config: str, server: str) -> str | None:
    """Why this pair cannot run here, or ``None``: a missing server or integration."""
    module = server.split("-")[0]
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed"
    try:
        build(config, "ours", make_page(20_000, "end"))
    except Unavailable as exc:
        return str(exc)
    return None


def _bench_pair(section: str, config: str, server: str, rounds: int) -> None:
    kind = server if config in ASGI else {"granian": "granian-wsgi"}.get(server, server)
    procs = {
        variant: start_server(
            kind,
            "configs_app:app",
            {"REQIO_BENCH_CONFIG": config, "REQIO_BENCH_VARIANT": variant},
        )
        for variant in ("bare", "ours")
    }
    try:
        cookie = _cookie(config)
        base = {variant: url for variant, (_, url) in procs.items()}
        if not _answers_right(base, cookie):
            NOTES.append(f"WRONG OUTPUT: e2e {server} {config}: tokens not where expected")
            return
        for label, path in (("anonymous 20 KB page", "/page"), ("JSON", "/json")):
            got = _interleaved({v: base[v] + path for v in base}, rounds)
            _ratio_row(section, label, got["ours"], {"bare": got["bare"]}, "bare")
        got = _interleaved(
            {
                "ours": base["ours"] + "/page",
                "seeds": base["bare"] + "/seeds",
                "bare": base["bare"] + "/page",
            },
            rounds,
            cookies={"ours": cookie, "seeds": cookie, "bare": cookie},
        )
        _ratio_row(
            section,
            "signed-in 20 KB page",
            got["ours"],
            {"seeds": got["seeds"], "bare": got["bare"]},
            "seeds",
        )
    finally:
        for proc, _ in procs.values():
            _stop(proc)


def _cookie(config: str) -> str:
    """The sign-in cookie; Django's is signed with the bench key every process shares."""
    return str(build(config, "bare", make_page(20_000, "end"))[1])


def _get(url: str, cookie: str | None) -> bytes:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
    return body


def _answers_right(base: dict[str, str], cookie: str) -> bool:
    return (
        _get(base["ours"] + "/page", cookie).count(TOKEN) == 1
        and _get(base["ours"] + "/page", None).count(TOKEN) == 0
        and _get(base["bare"] + "/seeds", cookie).count(TOKEN) == 1
        and _get(base["bare"] + "/page", cookie).count(TOKEN) == 0
    )


def _ratio_row(
    section: str, label: str, ours: tuple[float, float], others: dict[str, Any], against: str
) -> None:
    ratio = ours[0] / others[against][0]
    target = TARGETS[label]
    name = "the seeds' way" if against == "seeds" else "bare"
    compared = " · ".join(
        f"{'seeds' if k == 'seeds' else 'bare'} {_e2e_cell(*v)}" for k, v in others.items()
    )
    row(
        section,
        label,
        _e2e_cell(*ours),
        compared,
        verdict(ratio >= target, f"{ratio:.2f}x {name} req/s (≥ {target:.2f}x)"),
    )
