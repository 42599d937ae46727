"""Django's ``ReqioMiddleware`` with Django's own ``SessionMiddleware`` and
``AuthenticationMiddleware``: what it skips for visitors who cannot be signed in, and the CSRF
cookie it hands out with a stamped page.

The project runs in a process of its own (``tests/apps/django_real_auth.py``), since it needs
``django.contrib.auth`` installed and the other Django tests configure a project without it.
Every case is fetched with and without ``ReqioMiddleware``, on sync and async stacks, with and
without ``CsrfViewMiddleware``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

from tests.apps.checks import decode

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'data-identity-token="([^"]+)"')
KEYS = [f"{mode}/{stack}" for mode in ("sync", "async") for stack in ("plain", "csrf")]
#: Requests that cannot carry a token: each response must be the project's own, exactly.
UNSTAMPED = ("no-cookie", "no-cookie-json", "no-cookie-reads-user", "signed-out", "signed-in-json")


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.apps.django_real_auth"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("case", UNSTAMPED)
def test_what_cannot_carry_a_token_leaves_as_without_reqio(
    results: dict[str, Any], key: str, case: str
) -> None:
    got = results[f"{key}/{case}"]
    ours, bare = got["ours"], got["bare"]
    assert ours["status"] == 200
    assert TOKEN.search(ours["body"]) is None
    assert (ours["headers"], ours["body"], ours["cookies"]) == (
        bare["headers"],
        bare["body"],
        bare["cookies"],
    )


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("case", ["no-cookie", "no-cookie-json"])
def test_no_session_cookie_means_the_user_is_never_loaded(
    results: dict[str, Any], key: str, case: str
) -> None:
    got = results[f"{key}/{case}"]["ours"]
    assert got["get_user_calls"] == 0
    assert not any(name == "vary" for name, _ in got["headers"])


@pytest.mark.parametrize("key", KEYS)
def test_a_signed_out_session_is_looked_up_and_left_without_vary(
    results: dict[str, Any], key: str
) -> None:
    got = results[f"{key}/signed-out"]["ours"]
    assert got["get_user_calls"] == 1  # a session cookie: the user must be looked up
    assert not any(name == "vary" for name, _ in got["headers"])


@pytest.mark.parametrize("key", KEYS)
def test_a_signed_in_session_is_stamped(results: dict[str, Any], key: str) -> None:
    got = results[f"{key}/signed-in"]["ours"]
    tokens = TOKEN.findall(got["body"])
    assert len(tokens) == 1
    assert decode(tokens[0])["sub"] == "42"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_csrf_cookie_comes_with_a_stamped_page_when_csrf_is_in_use(
    results: dict[str, Any], mode: str
) -> None:
    assert "csrftoken" in results[f"{mode}/csrf/signed-in"]["ours"]["cookies"]
    # Without CsrfViewMiddleware nothing could send it.
    assert results[f"{mode}/plain/signed-in"]["ours"]["cookies"] == {}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_csrf_cookie_the_browser_has_is_sent_again_unchanged(
    results: dict[str, Any], mode: str
) -> None:
    got = results[f"{mode}/csrf/signed-in-with-csrf-cookie"]
    assert TOKEN.search(got["ours"]["body"]) is not None
    assert got["ours"]["cookies"] == {"csrftoken": got["csrf_secret"]}
