"""Tokens: the seeds' claims, PyJWT's bytes, secrets checked and never shown."""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqio_middleware.identity import Identity, IdentityError
from reqio_middleware.tokens import (
    MAX_CLAIMS_BYTES,
    InsecureSecretWarning,
    Minter,
    ReditusMinter,
    ReqioMinter,
    mint_token,
    token_expiry,
)

SECRET = secrets.token_urlsafe(48)
REDITUS_SECRET = secrets.token_urlsafe(64)
AUD = "https://reqio.app/p/proj_abc123"
NOW = 1_700_000_000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
traits = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "plan": st.none() | st.text(max_size=20),
        "amount": st.none() | st.integers(min_value=0, max_value=10**12),
        "interval": st.none() | st.sampled_from(["month", "year"]),
        "seats": json_values,
        "team": json_values,
    },
)
identities = st.builds(
    Identity,
    sub=st.integers() | st.text(min_size=1, max_size=40).filter(str.strip),
    email=st.none() | st.emails() | st.text(max_size=40),
    traits=traits,
)
audiences = st.text(min_size=1, max_size=60).filter(str.strip) | st.just(AUD)
times = st.integers(min_value=0, max_value=2**33)
ttls = st.integers(min_value=1, max_value=10**7)


def _decode(token: str, secret: str = SECRET, audience: str = AUD) -> dict[str, Any]:
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience=audience,
        options={"verify_exp": False, "verify_iat": False, "require": ["sub", "aud", "iat", "exp"]},
    )


def _segment(token: str, index: int) -> Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# mint_token: claims and bytes


@given(identities, audiences, times, ttls)
def test_any_identity_round_trips_through_pyjwt(
    ident: Identity, audience: str, now: int, ttl: int
) -> None:
    token = mint_token(ident, secret=SECRET, audience=audience, ttl=ttl, now=now)
    claims = _decode(token, audience=audience)
    assert claims == {**ident.claims(), "aud": audience, "iat": now, "exp": now + ttl}
    assert isinstance(claims["sub"], str)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


@given(identities, audiences, times, ttls)
def test_tokens_are_the_bytes_jwt_encode_makes(
    ident: Identity, audience: str, now: int, ttl: int
) -> None:
    token = mint_token(ident, secret=SECRET, audience=audience, ttl=ttl, now=now)
    claims = {**ident.claims(), "aud": audience, "iat": now, "exp": now + ttl}
    assert token == jwt.encode(claims, SECRET, algorithm="HS256")


@given(identities, audiences, times, ttls)
def test_reqio_minter_makes_the_same_bytes_as_mint_token(
    ident: Identity, audience: str, now: int, ttl: int
) -> None:
    minter = ReqioMinter(SECRET, audience, ttl=ttl)
    assert minter(ident, now=now) == mint_token(
        ident, secret=SECRET, audience=audience, ttl=ttl, now=now
    )


def test_header_is_exactly_hs256_jwt() -> None:
    token = mint_token(Identity("1"), secret=SECRET, audience=AUD)
    assert token.split(".")[0] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    assert _segment(token, 0) == {"alg": "HS256", "typ": "JWT"}


def test_claims_match_the_seed_snippet() -> None:
    """The Python seed's payload, minted by hand with PyJWT, is what we mint."""
    user: dict[str, Any] = {
        "id": 42,
        "email": "a@b.c",
        "plan": "pro",
        "amount": 1200,
        "interval": "month",
    }
    seed = jwt.encode(
        {
            "sub": str(user["id"]),
            "email": user["email"],
            "traits": {
                "plan": user["plan"],
                "amount": user["amount"],
                "interval": user["interval"],
            },
            "aud": AUD,
            "iat": NOW,
            "exp": NOW + 300,
        },
        SECRET,
        algorithm="HS256",
    )
    ident = Identity(
        user["id"],
        email="a@b.c",
        traits={"plan": "pro", "amount": 1200, "interval": "month"},
    )
    assert mint_token(ident, secret=SECRET, audience=AUD, now=NOW) == seed


def test_integer_sub_arrives_as_a_string() -> None:
    token = mint_token(Identity(123), secret=SECRET, audience=AUD, now=NOW)
    assert _segment(token, 1)["sub"] == "123"
    assert _decode(token)["sub"] == "123"


def test_none_email_and_traits_are_left_out() -> None:
    ident = Identity("1", email=None, traits={"plan": None, "amount": None})
    payload = _segment(mint_token(ident, secret=SECRET, audience=AUD, now=NOW), 1)
    assert set(payload) == {"sub", "aud", "iat", "exp"}


def test_partial_traits_keep_only_the_given_ones() -> None:
    ident = Identity("1", traits={"plan": "pro", "amount": None})
    payload = _segment(mint_token(ident, secret=SECRET, audience=AUD, now=NOW), 1)
    assert payload["traits"] == {"plan": "pro"}


def test_a_mapping_is_accepted_where_an_identity_is() -> None:
    mapping: dict[str, Any] = {"sub": 9, "email": "a@b.c", "traits": {"plan": "pro"}}
    expected = mint_token(Identity(**mapping), secret=SECRET, audience=AUD, now=NOW)
    assert mint_token(mapping, secret=SECRET, audience=AUD, now=NOW) == expected
    assert ReqioMinter(SECRET, AUD)(mapping, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "field"),
    [(None, "identity"), ({"sub": ""}, "sub"), ({"sub": "1", "uid": 1}, "uid"), ("1", "identity")],
)
def test_no_token_for_a_missing_or_bad_identity(value: object, field: str) -> None:
    with pytest.raises(IdentityError) as info:
        mint_token(value, secret=SECRET, audience=AUD)  # type: ignore[arg-type]
    assert info.value.field == field


def test_iat_and_exp_are_integer_seconds() -> None:
    payload = _segment(mint_token(Identity("1"), secret=SECRET, audience=AUD, now=NOW + 0.9), 1)
    assert payload["iat"] == NOW
    assert payload["exp"] == NOW + 300
    assert type(payload["iat"]) is int
    assert type(payload["exp"]) is int


def test_default_now_is_the_clock() -> None:
    import time

    before = int(time.time())
    payload = _segment(mint_token(Identity("1"), secret=SECRET, audience=AUD), 1)
    after = int(time.time())
    assert before <= payload["iat"] <= after
    assert payload["exp"] == payload["iat"] + 300


@pytest.mark.parametrize("now", [True, "1700000000", float("nan"), float("inf")])
def test_now_must_be_a_number(now: Any) -> None:
    with pytest.raises(TypeError):
        mint_token(Identity("1"), secret=SECRET, audience=AUD, now=now)


# settings


@pytest.mark.parametrize("ttl", [0, -1, True, 1.5, "300", None])
def test_ttl_must_be_a_positive_int(ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        mint_token(Identity("1"), secret=SECRET, audience=AUD, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        ReqioMinter(SECRET, AUD, ttl=ttl)


@pytest.mark.parametrize("audience", ["", "  ", None, 5, [AUD]])
def test_audience_must_be_a_non_empty_str(audience: Any) -> None:
    with pytest.raises(ValueError, match="audience"):
        mint_token(Identity("1"), secret=SECRET, audience=audience)
    with pytest.raises(ValueError, match="audience"):
        ReqioMinter(SECRET, audience)


# size


def test_big_traits_are_refused() -> None:
    ident = Identity("1", traits={"notes": "x" * MAX_CLAIMS_BYTES})
    with pytest.raises(IdentityError, match="identity too large for a token") as info:
        mint_token(ident, secret=SECRET, audience=AUD)
    assert info.value.field == "traits"
    with pytest.raises(IdentityError, match="identity too large for a token"):
        ReqioMinter(SECRET, AUD)(ident)


def test_the_biggest_field_is_named() -> None:
    ident = Identity("1", email="e" * 5000 + "@example.com", traits={"plan": "pro"})
    with pytest.raises(IdentityError) as info:
        mint_token(ident, secret=SECRET, audience=AUD)
    assert info.value.field == "email"
    with pytest.raises(IdentityError) as info:
        ReditusMinter(REDITUS_SECRET, "prod")(Identity("u" * 5000))
    assert info.value.field == "sub"


@given(st.integers(min_value=3900, max_value=4300))
def test_the_limit_is_on_the_payload_json(size: int) -> None:
    ident = Identity("1", traits={"notes": "x" * size})
    claims = {**ident.claims(), "aud": AUD, "iat": NOW, "exp": NOW + 300}
    fits = len(json.dumps(claims, separators=(",", ":")).encode()) <= MAX_CLAIMS_BYTES
    try:
        token = mint_token(ident, secret=SECRET, audience=AUD, now=NOW)
    except IdentityError as err:
        assert not fits
        assert err.field == "traits"
    else:
        assert fits
        assert _decode(token) == claims


def test_non_ascii_is_counted_as_it_is_encoded() -> None:
    # PyJWT writes JSON with \\u escapes: one "é" is 6 bytes in the token.
    ident = Identity("1", traits={"notes": "é" * 700})
    with pytest.raises(IdentityError, match="too large"):
        mint_token(ident, secret=SECRET, audience=AUD)


# secrets


@pytest.mark.parametrize("secret", ["", b"", None])
def test_empty_secret_says_to_set_reqio_secret(secret: Any) -> None:
    with pytest.raises(ValueError, match="REQIO_SECRET"):
        mint_token(Identity("1"), secret=secret, audience=AUD)
    with pytest.raises(ValueError, match="REQIO_SECRET"):
        ReqioMinter(secret, AUD)
    with pytest.raises(ValueError, match="secret"):
        ReditusMinter(secret, "prod")


@pytest.mark.parametrize("secret", [123, ["s" * 40], object()])
def test_secret_of_another_type_is_refused(secret: Any) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        mint_token(Identity("1"), secret=secret, audience=AUD)


def test_bytes_and_str_secrets_sign_alike() -> None:
    as_str = mint_token(Identity("1"), secret=SECRET, audience=AUD, now=NOW)
    assert mint_token(Identity("1"), secret=SECRET.encode(), audience=AUD, now=NOW) == as_str
    minter = ReqioMinter(bytearray(SECRET.encode()), AUD)  # type: ignore[arg-type]
    assert minter(Identity("1"), now=NOW) == as_str


def test_secret_that_looks_like_a_key_is_refused_without_echoing_it() -> None:
    body = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + "A" * 40
    pem = f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ValueError) as info:
        ReqioMinter(pem, AUD)
    assert "MFkwEwYH" not in str(info.value)
    assert "HMAC" in str(info.value)


@given(identities, times)
def test_a_bound_minter_makes_the_bytes_jwt_encode_makes(ident: Identity, now: int) -> None:
    # The minter lets its own, already checked key skip PyJWT's per-token key checks.
    minter = ReqioMinter(SECRET, AUD, ttl=60)
    claims = {**ident.claims(), "aud": AUD, "iat": now, "exp": now + 60}
    assert minter(ident, now=now) == minter(ident, now=now) == jwt.encode(claims, SECRET, "HS256")


def test_minting_does_not_use_pyjwts_per_token_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    # check_key_length exists only from PyJWT 2.11 and PyJWS.encode's checks change between
    # versions: minting relies on neither, so every PyJWT from the floor up gives one token.
    from jwt.algorithms import HMACAlgorithm
    from jwt.api_jws import PyJWS

    minter = ReqioMinter(SECRET, AUD, ttl=60)
    want = jwt.encode({"sub": "7", "aud": AUD, "iat": 1000, "exp": 1060}, SECRET, "HS256")

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("a PyJWT internal was used per token")

    monkeypatch.setattr(HMACAlgorithm, "check_key_length", refuse, raising=False)
    monkeypatch.setattr(HMACAlgorithm, "prepare_key", refuse)
    monkeypatch.setattr(PyJWS, "encode", refuse)
    assert minter(Identity(sub=7), now=1000) == want


def _warnings_from(make: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
    return caught


@given(st.binary(min_size=1, max_size=31))
def test_short_hs256_secret_warns_once_with_advice(secret: bytes) -> None:
    caught = _warnings_from(lambda: mint_token(Identity("1"), secret=secret, audience=AUD))
    # Ours only: PyJWT's own InsecureKeyLengthWarning would repeat it.
    assert [w.category for w in caught] == [InsecureSecretWarning]
    message = str(caught[0].message)
    assert f"is {len(secret)} bytes long" in message
    assert "at least 32 bytes" in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in message
    assert caught[0].filename == __file__


def test_warning_does_not_show_the_secret() -> None:
    secret = "hunter2-is-my-password"
    caught = _warnings_from(lambda: ReqioMinter(secret, AUD))
    assert caught
    assert secret not in str(caught[0].message)


@pytest.mark.parametrize("secret", ["s" * 32, b"\x00" * 32, SECRET, "é" * 16])
def test_long_enough_hs256_secret_is_quiet(secret: str | bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mint_token(Identity("1"), secret=secret, audience=AUD)
        ReqioMinter(secret, AUD)(Identity("1"))


def test_reqio_minter_warns_at_construction_only() -> None:
    caught = _warnings_from(lambda: ReqioMinter("short", AUD))
    assert [w.category for w in caught] == [InsecureSecretWarning]
    assert caught[0].filename == __file__
    with pytest.warns(InsecureSecretWarning):
        minter = ReqioMinter("short", AUD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minter(Identity("1"))
        minter(Identity("2"))


def test_reditus_warns_under_64_bytes() -> None:
    caught = _warnings_from(lambda: ReditusMinter("r" * 63, "prod"))
    assert [w.category for w in caught] == [InsecureSecretWarning]
    assert "is 63 bytes long" in str(caught[0].message)
    assert "HS512 needs at least 64 bytes" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ReditusMinter("r" * 64, "prod")(Identity("1"))


def test_insecure_secret_warning_is_a_user_warning() -> None:
    assert issubclass(InsecureSecretWarning, UserWarning)


# minters


def test_minter_attributes_and_protocol() -> None:
    minter = ReqioMinter(SECRET, AUD, ttl=60)
    assert minter.ttl == 60
    assert minter.audience == AUD
    assert isinstance(minter, Minter)
    assert isinstance(ReditusMinter(REDITUS_SECRET, "prod"), Minter)
    payload = _segment(minter(Identity("1"), now=NOW), 1)
    assert payload["exp"] - payload["iat"] == 60


@pytest.mark.parametrize(
    "make",
    [
        lambda s: ReqioMinter(s, AUD),
        lambda s: ReqioMinter(s.encode(), AUD, ttl=5),
        lambda s: ReditusMinter(s, "prod"),
        lambda s: ReditusMinter(s.encode(), "prod"),
    ],
)
def test_repr_hides_the_secret(make: Any, no_secret_leak: Any) -> None:
    secret = no_secret_leak.register(secrets.token_urlsafe(64))
    minter = make(secret)
    for text in (repr(minter), str(minter), f"{minter!r}"):
        assert secret not in text
        assert "secret=<hidden>" in text
    assert not hasattr(minter, "__dict__")


@pytest.mark.parametrize(
    "bad",
    [
        lambda s: mint_token(Identity("1"), secret=s, audience=""),
        lambda s: mint_token(Identity("1"), secret=s, audience=AUD, ttl=0),
        lambda s: mint_token({"sub": "1", "secret": s}, secret=s, audience=AUD),
        lambda s: mint_token({"sub": "1", "traits": {"x": "y" * 5000}}, secret=s, audience=AUD),
        lambda s: ReditusMinter(s, ""),
        lambda s: ReqioMinter(s[:10], AUD),
    ],
)
def test_errors_and_warnings_never_carry_the_secret(bad: Any, no_secret_leak: Any) -> None:
    secret = no_secret_leak.register(secrets.token_urlsafe(64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            bad(secret)
        except ValueError as err:
            no_secret_leak.check(err, "an exception")
        else:
            assert caught, "expected an error or a warning"
    for w in caught:
        no_secret_leak.check(str(w.message), "a warning")
        assert secret[:10] not in str(w.message)


@given(identities, times)
def test_reditus_token_is_the_seed_shape(ident: Identity, now: int) -> None:
    token = ReditusMinter(REDITUS_SECRET, "prod_42")(ident, now=now)
    assert jwt.get_unverified_header(token) == {"alg": "HS512", "typ": "JWT"}
    expected = {"ProductId": "prod_42", "UserId": ident.sub, "iat": now}
    decoded = jwt.decode(token, REDITUS_SECRET, algorithms=["HS512"], options={"verify_iat": False})
    assert decoded == expected
    assert list(_segment(token, 1)) == ["ProductId", "UserId", "iat"]
    assert token == jwt.encode(expected, REDITUS_SECRET, algorithm="HS512")


def test_reditus_user_id_is_a_string_for_an_int_sub() -> None:
    token = ReditusMinter(REDITUS_SECRET, "prod")({"sub": 42})
    assert _segment(token, 1)["UserId"] == "42"
    assert token_expiry(token) is None


@pytest.mark.parametrize("product_id", ["", " ", None, 42])
def test_reditus_product_id_is_required(product_id: Any) -> None:
    with pytest.raises(ValueError, match="product_id"):
        ReditusMinter(REDITUS_SECRET, product_id)


# token_expiry


@given(times, ttls)
def test_token_expiry_reads_exp(now: int, ttl: int) -> None:
    token = ReqioMinter(SECRET, AUD, ttl=ttl)(Identity("1"), now=now)
    assert token_expiry(token) == now + ttl


def test_token_expiry_of_an_expired_token_still_reads_it() -> None:
    token = mint_token(Identity("1"), secret=SECRET, audience=AUD, now=1000)
    assert token_expiry(token) == 1300


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "a.b.c",
        jwt.encode({"sub": "1"}, SECRET, algorithm="HS256"),
        jwt.encode({"exp": "soon"}, SECRET, algorithm="HS256"),
        jwt.encode({"exp": True}, SECRET, algorithm="HS256"),
        None,
        123,
    ],
)
def test_token_expiry_is_none_when_absent_or_unreadable(token: Any) -> None:
    assert token_expiry(token) is None
