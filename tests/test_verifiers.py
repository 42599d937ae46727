"""Our tokens, checked the way the seeds' backends check them: npm jose, Ruby jwt, Go golang-jwt.

Go is checked twice: with Debian's golang-jwt v4, and with v5 (the Go seed's library, vendored
under ``tests/verifiers/golang-jwt-v5``), which decodes ``sub``, ``aud``, ``iat`` and ``exp`` with
stricter types; the v5 controls at the end show that strictness rejecting what it must.

Each verifier is a small script in ``tests/verifiers/`` that reads one JSON request on stdin
(token, secret, alg, kind, audience), prints one JSON result and exits 0 when it accepts the token,
1 when it rejects it. The secret goes over stdin, never on a command line.

A missing tool skips with the reason; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import require_tool
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reqio_middleware.identity import Identity, IdentityError
from reqio_middleware.tokens import ReditusMinter, ReqioMinter, mint_token

HERE = Path(__file__).parent / "verifiers"
SECRET = secrets.token_urlsafe(48)
REDITUS_SECRET = secrets.token_urlsafe(64)
AUD = "https://reqio.app/p/proj_abc123"
OTHER_AUD = "https://reqio.app/p/proj_other"
GO_JWT_SRC = "/usr/share/gocode/src/github.com/golang-jwt/jwt"
GO_JWT_V5_SRC = HERE / "golang-jwt-v5"
RUN_TIMEOUT = 60
BUILD_TIMEOUT = 300

IDENTITY = Identity(
    123,
    email="zoë@example.com",
    traits={"plan": "pro", "amount": 12_000, "interval": "year", "seats": 5, "note": None},
)


def _unavailable(reason: str) -> None:
    """A tool that is present but unusable: skip locally, fail under CI (like require_tool)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


@dataclass
class Verifier:
    name: str
    command: list[str]
    env: dict[str, str]

    def __call__(self, token: str, **request: Any) -> tuple[int, dict[str, Any]]:
        request = {"token": token, "secret": SECRET, "alg": "HS256", "kind": "reqio", **request}
        request.setdefault("audience", AUD)
        proc = subprocess.run(
            self.command,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert proc.returncode in (0, 1), f"{self.name} failed to run: {proc.stderr}{proc.stdout}"
        if os.environ.get("REQIO_VERIFY_DEBUG"):
            print(self.name, proc.returncode, proc.stdout.strip())
        lines = proc.stdout.strip().splitlines()
        assert lines, f"{self.name} printed nothing: {proc.stderr}"
        result: dict[str, Any] = json.loads(lines[-1])
        return proc.returncode, result


# tools


@pytest.fixture(scope="session")
def node_verifier(tmp_path_factory: pytest.TempPathFactory) -> Verifier:
    node = require_tool("node")
    jose_dir = os.environ.get("REQIO_JOSE_DIR")
    if not jose_dir:
        npm = require_tool("npm")
        jose_dir = str(tmp_path_factory.mktemp("jose"))
        try:
            proc = subprocess.run(
                [npm, "install", "--prefix", jose_dir, "--no-audit", "--no-fund", "jose@6"],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _unavailable("npm install jose timed out")
        if proc.returncode != 0:
            _unavailable(f"npm install jose failed: {proc.stderr.strip()[-500:]}")
    if not (Path(jose_dir) / "node_modules" / "jose").is_dir():
        _unavailable(f"no node_modules/jose under REQIO_JOSE_DIR={jose_dir}")
    return Verifier("jose", [node, str(HERE / "verify.mjs")], {"REQIO_JOSE_DIR": jose_dir})


@pytest.fixture(scope="session")
def ruby_verifier() -> Verifier:
    ruby = require_tool("ruby")
    probe = subprocess.run(
        [ruby, "-e", 'require "jwt"; print JWT::VERSION::STRING'],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if probe.returncode != 0:
        _unavailable(f"ruby cannot load the jwt gem (Debian: ruby-jwt): {probe.stderr.strip()}")
    return Verifier("ruby-jwt", [ruby, str(HERE / "verify.rb")], {})


def _go_env(work: Path) -> dict[str, str]:
    """Offline module mode: every module comes from a local replace directive."""
    return {
        **os.environ,
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GO111MODULE": "on",
        "GOTOOLCHAIN": "local",
        "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "gopath"),
    }


def _build_go(work: Path, template: str, source: str, jwt_src: Path, name: str) -> Verifier:
    go = require_tool("go")
    (work / "go.mod").write_text((HERE / template).read_text().replace("{{JWT_SRC}}", str(jwt_src)))
    shutil.copy(HERE / source, work / "verify.go")
    binary = work / "verify-go"
    try:
        proc = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=work,
            env=_go_env(work),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"go build of {source} took over {BUILD_TIMEOUT} s")
    if proc.returncode != 0:
        _unavailable(f"go build of {source} failed: {proc.stderr.strip()[-1000:]}")
    return Verifier(name, [str(binary)], {})


@pytest.fixture(scope="session")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Verifier:
    require_tool("go")
    src = Path(os.environ.get("REQIO_GO_JWT_SRC", GO_JWT_SRC))
    module = src / "go.mod"
    if not module.is_file() or "github.com/golang-jwt/jwt/v4" not in module.read_text():
        _unavailable(
            f"golang-jwt v4 source not at {src} (Debian: golang-github-golang-jwt-jwt-dev)"
        )
    work = tmp_path_factory.mktemp("goverify")
    return _build_go(work, "go.mod.tmpl", "verify.go", src, "golang-jwt")


@pytest.fixture(scope="session")
def go_v5_verifier(tmp_path_factory: pytest.TempPathFactory) -> Verifier:
    """The Go seed's own library, golang-jwt v5, from the copy vendored under tests/verifiers."""
    work = tmp_path_factory.mktemp("goverify5")
    return _build_go(work, "go.mod.v5.tmpl", "verify_v5.go", GO_JWT_V5_SRC, "golang-jwt-v5")


VERIFIERS = {
    "jose": "node_verifier",
    "ruby-jwt": "ruby_verifier",
    "golang-jwt": "go_verifier",
    "golang-jwt-v5": "go_v5_verifier",
}


@pytest.fixture(params=list(VERIFIERS))
def verify(request: pytest.FixtureRequest) -> Verifier:
    fixture = VERIFIERS
    verifier: Verifier = request.getfixturevalue(fixture[request.param])
    return verifier


# token surgery


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _flip_signature(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(_unb64(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64(bytes(raw))}"


def _swap_payload(token: str, change: Callable[[dict[str, Any]], None]) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(_unb64(body))
    change(claims)
    return f"{head}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{sig}"


@pytest.fixture
def now() -> int:
    return int(time.time())


def _rejected(outcome: tuple[int, dict[str, Any]], reason: str) -> None:
    """Rejected (exit 1, ok false) and for the expected reason, not some other failure."""
    code, result = outcome
    assert (code, result["ok"]) == (1, False), result
    assert re.search(reason, result["error"], re.IGNORECASE), result["error"]


SIGNATURE = r"signature"


# Reqio tokens


def test_accepts_an_integer_user_id_as_a_string_sub(verify: Verifier, now: int) -> None:
    token = ReqioMinter(SECRET, AUD)(IDENTITY, now=now)
    code, result = verify(token)
    assert code == 0, result
    assert result["ok"] is True
    claims = result["claims"]
    assert claims["sub"] == "123"
    assert claims["email"] == "zoë@example.com"
    assert claims["traits"] == {"plan": "pro", "amount": 12_000, "interval": "year", "seats": 5}
    aud = claims["aud"]
    assert (aud if isinstance(aud, list) else [aud]) == [AUD]
    assert claims["iat"] == now
    assert claims["exp"] == now + 300
    assert result["header"] == {"alg": "HS256", "typ": "JWT"}


def test_accepts_an_identity_without_email_or_traits(verify: Verifier, now: int) -> None:
    token = mint_token({"sub": "user_9"}, secret=SECRET, audience=AUD, now=now)
    code, result = verify(token)
    assert code == 0, result
    assert result["claims"]["sub"] == "user_9"
    assert "email" not in result["claims"]
    assert "traits" not in result["claims"]


def test_rejects_an_expired_token(verify: Verifier, now: int) -> None:
    token = mint_token(IDENTITY, secret=SECRET, audience=AUD, now=now - 3600)
    _rejected(verify(token), r"expire")


def test_rejects_the_wrong_audience(verify: Verifier, now: int) -> None:
    token = mint_token(IDENTITY, secret=SECRET, audience=AUD, now=now)
    _rejected(verify(token, audience=OTHER_AUD), r"aud")


def test_rejects_a_tampered_signature(verify: Verifier, now: int) -> None:
    token = mint_token(IDENTITY, secret=SECRET, audience=AUD, now=now)
    _rejected(verify(_flip_signature(token)), SIGNATURE)


def test_rejects_a_tampered_payload(verify: Verifier, now: int) -> None:
    token = mint_token(IDENTITY, secret=SECRET, audience=AUD, now=now)
    forged = _swap_payload(token, lambda claims: claims.update(sub="1"))
    _rejected(verify(forged), SIGNATURE)


def test_rejects_the_wrong_secret(verify: Verifier, now: int) -> None:
    token = mint_token(IDENTITY, secret=secrets.token_urlsafe(48), audience=AUD, now=now)
    _rejected(verify(token), SIGNATURE)


def test_rejects_another_algorithm_for_the_same_key(verify: Verifier, now: int) -> None:
    claims = {**IDENTITY.claims(), "aud": AUD, "iat": now, "exp": now + 300}
    token = jwt.encode(claims, SECRET.ljust(64, "x")[:64], algorithm="HS512")
    _rejected(verify(token, secret=SECRET.ljust(64, "x")[:64]), r"alg|signing method")


def test_control_an_integer_sub_is_rejected(verify: Verifier, now: int) -> None:
    """What a naive ``jwt.encode({"sub": user.id})`` makes: proves the string check bites."""
    claims = {"sub": 123, "aud": AUD, "iat": now, "exp": now + 300}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    _rejected(verify(token), r"string")


# Reditus tokens


def test_accepts_a_reditus_token(verify: Verifier, now: int) -> None:
    token = ReditusMinter(REDITUS_SECRET, "prod_42")(IDENTITY, now=now)
    code, result = verify(token, secret=REDITUS_SECRET, alg="HS512", kind="reditus")
    assert code == 0, result
    assert result["claims"] == {"ProductId": "prod_42", "UserId": "123", "iat": now}
    assert result["header"] == {"alg": "HS512", "typ": "JWT"}


def test_rejects_a_tampered_reditus_token(verify: Verifier, now: int) -> None:
    token = ReditusMinter(REDITUS_SECRET, "prod_42")(IDENTITY, now=now)
    for forged in (
        _flip_signature(token),
        _swap_payload(token, lambda claims: claims.update(UserId="1")),
    ):
        _rejected(verify(forged, secret=REDITUS_SECRET, alg="HS512", kind="reditus"), SIGNATURE)


def test_rejects_a_reditus_token_signed_with_another_secret(verify: Verifier, now: int) -> None:
    token = ReditusMinter(secrets.token_urlsafe(64), "prod_42")(IDENTITY, now=now)
    _rejected(verify(token, secret=REDITUS_SECRET, alg="HS512", kind="reditus"), SIGNATURE)


# golang-jwt v5: the Go seed's library accepts every token we mint, and its type checks bite


def _sign_hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    """A correctly signed token with any claims at all: no encoder's checks in the way."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def test_v5_accepts_a_token_signed_by_hand(go_v5_verifier: Verifier, now: int) -> None:
    """The control's baseline: the hand signer makes tokens v5 accepts when the claims are right."""
    claims = {"sub": "123", "aud": [AUD], "iat": now, "exp": now + 300}
    code, result = go_v5_verifier(_sign_hs256(claims))
    assert code == 0, result
    assert result["claims"]["sub"] == "123"


V5_CONTROLS: dict[str, tuple[dict[str, Any], str]] = {
    "integer sub": ({"sub": 123}, r"sub|string"),
    "numeric aud": ({"aud": 42}, r"invalid type|aud is invalid"),
    "aud array with a number": ({"aud": [AUD, 7]}, r"invalid type|aud is invalid"),
    "string exp": ({"exp": "EXP"}, r"exp is invalid"),
    "string iat": ({"iat": "IAT"}, r"iat is invalid"),
    "iat in the future": ({"iat": "FUTURE"}, r"before issued"),
    "no exp": ({"exp": None}, r"exp"),
    "no iat": ({"iat": None}, r"iat"),
}


@pytest.mark.parametrize("change", list(V5_CONTROLS))
def test_v5_rejects_claims_of_the_wrong_type(
    go_v5_verifier: Verifier, now: int, change: str
) -> None:
    update, reason = V5_CONTROLS[change]
    values = {"EXP": str(now + 300), "IAT": str(now), "FUTURE": now + 3600}
    claims: dict[str, Any] = {"sub": "123", "aud": [AUD], "iat": now, "exp": now + 300}
    for name, value in update.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = values.get(value, value) if isinstance(value, str) else value
    _rejected(go_v5_verifier(_sign_hs256(claims)), reason)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)
TRAITS = st.fixed_dictionaries(
    {},
    optional={
        "plan": TEXT,
        "amount": st.integers(0, 10**9),
        "interval": st.sampled_from(["month", "year"]),
        "seats": st.integers(-(10**6), 10**6),
        "tags": st.lists(TEXT, max_size=3),
    },
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sub=st.one_of(st.integers(-(10**18), 10**18), TEXT),
    email=st.one_of(st.none(), TEXT),
    traits=st.one_of(st.none(), TRAITS),
    ttl=st.integers(60, 86_400),
)
def test_v5_accepts_every_identity_we_mint(
    go_v5_verifier: Verifier,
    sub: int | str,
    email: str | None,
    traits: dict[str, Any] | None,
    ttl: int,
) -> None:
    try:
        identity = Identity(sub, email=email, traits=traits)
    except IdentityError:
        assume(False)
        raise
    now = int(time.time())
    token = mint_token(identity, secret=SECRET, audience=AUD, ttl=ttl, now=now)
    code, result = go_v5_verifier(token)
    assert code == 0, result
    assert result["claims"]["sub"] == str(sub)
    assert (result["claims"]["iat"], result["claims"]["exp"]) == (now, now + ttl)
