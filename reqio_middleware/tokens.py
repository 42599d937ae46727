"""Signed identity tokens: the Reqio HS256 JWT of the seeds, and the Reditus HS512 one.

The middleware mints a token for every identified HTML response, so what does not depend on the
request is checked once, in a minter object: the key (with PyJWT's own ``prepare_key``, which
refuses keys that look like PEM or SSH keys) and the encoded header. Each token is then what
``jwt.encode(claims, secret, algorithm="HS256")`` returns, byte for byte: the same header and
payload JSON, the same base64url, signed with the standard library's ``hmac``, so no PyJWT
internals are overridden and every PyJWT version from the floor up gives the same tokens.

Secrets are checked where they are given: an empty one is an error that says what to set, a short
one (under the hash size, RFC 7518 section 3.2) gives an :class:`InsecureSecretWarning` that says
how to make a good one. No message and no ``repr`` ever contains the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
import warnings
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError

from .identity import Identity, IdentityError, coerce_identity

__all__ = [
    "DEFAULT_TTL",
    "MAX_CLAIMS_BYTES",
    "InsecureSecretWarning",
    "Minter",
    "ReditusMinter",
    "ReqioMinter",
    "mint_token",
    "token_expiry",
]

#: Seconds a Reqio token lives (the seeds use five minutes).
DEFAULT_TTL = 300

#: Largest payload JSON we sign. A token rides in an HTML attribute on every page and in a
#: request header at Reqio; anything bigger means someone put a document into ``traits``.
MAX_CLAIMS_BYTES = 4096

_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'

_HASHES = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}

# PyJWT encodes the payload with json.dumps(payload, separators=(",", ":")); one encoder with the
# same settings gives the same bytes without building an encoder per call.
_PAYLOAD_JSON = json.JSONEncoder(separators=(",", ":")).encode
#: How that encoder writes a str (it escapes to ASCII by default).
_JSON_STR = json.encoder.encode_basestring_ascii


class InsecureSecretWarning(UserWarning):
    """The signing secret is shorter than the HMAC hash, so it is easier to guess than the MAC."""


@runtime_checkable
class Minter(Protocol):
    """Anything that turns an identity into the token string the widget is given."""

    def __call__(self, identity: Identity) -> str: ...


class _Signer:
    """HMAC signing of compact JWS tokens for one algorithm and one secret, checked once."""

    __slots__ = ("_digest", "_header", "_key")

    def __init__(self, secret: str | bytes, algorithm: str, *, what: str, stacklevel: int) -> None:
        key = _secret_bytes(secret, what)
        self._digest = _HASHES[algorithm]
        needed = self._digest().digest_size
        if len(key) < needed:
            warnings.warn(
                f"the signing secret ({what}) is {len(key)} bytes long; {algorithm} needs at "
                f"least {needed} bytes (RFC 7518 section 3.2) or tokens are easier to forge. "
                f"Generate one with: {_GENERATE}",
                InsecureSecretWarning,
                stacklevel=stacklevel + 1,
            )
        try:
            self._key = HMACAlgorithm(self._digest).prepare_key(key)
        except InvalidKeyError:
            # PyJWT refuses PEM/SSH/DER-looking HMAC keys (algorithm confusion); say so plainly.
            raise ValueError(
                f"the signing secret ({what}) looks like a public/private key or certificate, "
                f"not an HMAC secret; generate one with: {_GENERATE}"
            ) from None
        # PyJWT's header for these tokens: sorted keys, compact separators.
        header = _PAYLOAD_JSON({"alg": algorithm, "typ": "JWT"}).encode("ascii")
        self._header = _b64(header) + b"."

    def sign(self, payload: bytes) -> str:
        signing_input = self._header + _b64(payload)
        signature = hmac.new(self._key, signing_input, self._digest).digest()
        return (signing_input + b"." + _b64(signature)).decode("ascii")


def mint_token(
    identity: Identity | Mapping[str, Any],
    *,
    secret: str | bytes,
    audience: str,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """Mint the Reqio HS256 identity token for one identity (``now`` is for tests)."""
    signer = _Signer(secret, "HS256", what="REQIO_SECRET", stacklevel=2)
    return _mint_reqio(signer, identity, _check_audience(audience), _check_ttl(ttl), now)


class ReqioMinter:
    """``mint_token`` with the secret, audience and ttl bound, checked and warned about once."""

    __slots__ = ("_audience", "_signer", "_ttl")

    def __init__(self, secret: str | bytes, audience: str, ttl: int = DEFAULT_TTL) -> None:
        self._signer = _Signer(secret, "HS256", what="REQIO_SECRET", stacklevel=2)
        self._audience = _check_audience(audience)
        self._ttl = _check_ttl(ttl)

    @property
    def audience(self) -> str:
        return self._audience

    @property
    def ttl(self) -> int:
        return self._ttl

    def __call__(self, identity: Identity | Mapping[str, Any], *, now: float | None = None) -> str:
        return _mint_reqio(self._signer, identity, self._audience, self._ttl, now)

    def __repr__(self) -> str:
        return f"ReqioMinter(secret=<hidden>, audience={self._audience!r}, ttl={self._ttl})"


class ReditusMinter:
    """The Reditus referral-widget token: HS512 over ``ProductId``, ``UserId`` and ``iat``.

    Reditus' example sets no ``exp``, so neither do we; ``token_expiry`` gives ``None`` for it.
    """

    __slots__ = ("_product_id", "_signer")

    def __init__(self, secret: str | bytes, product_id: str) -> None:
        self._signer = _Signer(secret, "HS512", what="the Reditus product secret", stacklevel=2)
        if not isinstance(product_id, str) or not product_id.strip():
            raise ValueError("product_id must be the non-empty Reditus product id (a str)")
        self._product_id = product_id

    @property
    def product_id(self) -> str:
        return self._product_id

    def __call__(self, identity: Identity | Mapping[str, Any], *, now: float | None = None) -> str:
        ident = _require_identity(identity)
        claims = {"ProductId": self._product_id, "UserId": ident.sub, "iat": _issued_at(now)}
        return self._signer.sign(_payload(claims, {"sub": ident.sub}))

    def __repr__(self) -> str:
        return f"ReditusMinter(secret=<hidden>, product_id={self._product_id!r})"


def token_expiry(token: str) -> int | None:
    """The token's ``exp`` as epoch seconds, read without verifying (we just minted it)."""
    if not isinstance(token, (str, bytes)):
        return None
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    exp = payload.get("exp")
    if isinstance(exp, bool):
        return None
    if isinstance(exp, int):
        return exp
    if isinstance(exp, float) and math.isfinite(exp):
        return int(exp)
    return None


def _mint_reqio(
    signer: _Signer,
    identity: Identity | Mapping[str, Any],
    audience: str,
    ttl: int,
    now: float | None,
) -> str:
    ident = _require_identity(identity)
    iat = _issued_at(now)
    if ident.traits is None:  # most identities: written directly, with the encoder's bytes
        email = "" if ident.email is None else f',"email":{_JSON_STR(ident.email)}'
        data = (
            f'{{"sub":{_JSON_STR(str(ident.sub))}{email},"aud":{_JSON_STR(audience)},'
            f'"iat":{iat},"exp":{iat + ttl}}}'
        ).encode("ascii")
        if len(data) <= MAX_CLAIMS_BYTES:
            return signer.sign(data)
    own = ident.claims()
    claims = dict(own)
    claims["aud"] = audience
    claims["iat"] = iat
    claims["exp"] = iat + ttl
    return signer.sign(_payload(claims, own))


def _payload(claims: dict[str, Any], identity_claims: dict[str, Any]) -> bytes:
    data = _PAYLOAD_JSON(claims).encode("utf-8")
    if len(data) > MAX_CLAIMS_BYTES:
        sizes = {name: len(_PAYLOAD_JSON(value)) for name, value in identity_claims.items()}
        biggest = max(sizes, key=sizes.__getitem__)
        raise IdentityError(
            biggest,
            f"identity too large for a token: the claims are {len(data)} bytes of JSON, over "
            f"the {MAX_CLAIMS_BYTES}-byte limit, and {biggest!r} is the largest part "
            f"({sizes[biggest]} bytes); keep only what the widget needs",
        )
    return data


def _b64(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 section 2), as PyJWT's ``base64url_encode``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _require_identity(identity: object) -> Identity:
    ident = coerce_identity(identity)
    if ident is None:
        raise IdentityError("identity", "no identity to mint a token for (None is anonymous)")
    return ident


def _issued_at(now: float | None) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise TypeError(f"now must be epoch seconds (int or float), not {now!r}")
    return int(now)


def _secret_bytes(secret: object, what: str) -> bytes:
    if secret is None or (isinstance(secret, (str, bytes, bytearray)) and not secret):
        raise ValueError(f"no signing secret: set {what} (or pass secret=)")
    if isinstance(secret, str):
        return secret.encode("utf-8")
    if isinstance(secret, (bytes, bytearray)):
        return bytes(secret)
    raise TypeError(f"secret must be str or bytes, not {type(secret).__name__}")


def _check_audience(audience: object) -> str:
    if not isinstance(audience, str) or not audience.strip():
        raise ValueError(
            "audience must be a non-empty str, e.g. https://reqio.app/p/<project_id> "
            "(set REQIO_AUDIENCE or REQIO_PROJECT_ID)"
        )
    return audience


def _check_ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"ttl must be a positive int number of seconds, not {ttl!r}")
    return ttl
