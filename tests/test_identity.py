"""Identity validation: one case per rule, each checking the field named in the error."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqio_middleware.identity import Identity, IdentityError, coerce_identity


def _error(field: str, *args: Any, **kwargs: Any) -> IdentityError:
    with pytest.raises(IdentityError) as info:
        Identity(*args, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)
    return info.value


def test_identity_error_is_a_value_error_naming_its_field() -> None:
    err = IdentityError("traits.plan", "must be a str")
    assert isinstance(err, ValueError)
    assert err.field == "traits.plan"
    assert str(err).startswith("traits.plan")


# sub


def test_str_sub_is_kept() -> None:
    assert Identity("user_1").sub == "user_1"
    assert Identity("user_1").claims() == {"sub": "user_1"}


@given(st.integers())
def test_int_sub_becomes_its_decimal_string(sub: int) -> None:
    ident = Identity(sub)
    assert ident.sub == str(sub)
    assert ident.claims()["sub"] == str(sub)
    assert ident == Identity(str(sub))


@pytest.mark.parametrize("sub", [True, False])
def test_bool_sub_is_refused(sub: bool) -> None:
    _error("sub", sub)


@pytest.mark.parametrize("sub", [None, 1.0, b"1", ["1"], object()])
def test_sub_of_another_type_is_refused(sub: object) -> None:
    err = _error("sub", sub)
    assert type(sub).__name__ in str(err)


@pytest.mark.parametrize("sub", ["", " ", "\t\n"])
def test_empty_sub_is_refused(sub: str) -> None:
    _error("sub", sub)


# email


def test_email_none_is_left_out_of_the_claims() -> None:
    assert "email" not in Identity("1").claims()
    assert "email" not in Identity("1", email=None).claims()


def test_email_str_is_kept() -> None:
    assert Identity("1", email="zoë@example.com").claims()["email"] == "zoë@example.com"


@pytest.mark.parametrize("email", [1, b"a@b.c", ["a@b.c"], True])
def test_email_of_another_type_is_refused(email: object) -> None:
    _error("email", "1", email=email)


# traits


def test_known_traits_are_kept() -> None:
    traits = {"plan": "pro", "amount": 0, "interval": "year"}
    assert Identity("1", traits=traits).claims()["traits"] == traits


@pytest.mark.parametrize("traits", [["plan"], "pro", 3, ("plan", "pro")])
def test_traits_must_be_a_mapping(traits: object) -> None:
    _error("traits", "1", traits=traits)


def test_traits_may_be_any_mapping() -> None:
    ident = Identity("1", traits=MappingProxyType({"plan": "pro"}))
    assert ident.claims()["traits"] == {"plan": "pro"}


def test_trait_keys_must_be_str() -> None:
    _error("traits", "1", traits={1: "x"})


@pytest.mark.parametrize("plan", [1, b"pro", ["pro"], True])
def test_plan_must_be_str(plan: object) -> None:
    _error("traits.plan", "1", traits={"plan": plan})


@pytest.mark.parametrize("amount", [True, False, 12.0, 12.5, "1200", math.nan])
def test_amount_must_be_int_cents(amount: object) -> None:
    _error("traits.amount", "1", traits={"amount": amount})


@given(st.integers(max_value=-1))
def test_negative_amount_is_refused(amount: int) -> None:
    _error("traits.amount", "1", traits={"amount": amount})


@given(st.integers(min_value=0))
def test_any_non_negative_int_amount_is_kept(amount: int) -> None:
    assert Identity("1", traits={"amount": amount}).claims()["traits"] == {"amount": amount}


@pytest.mark.parametrize("interval", ["monthly", "Month", "week", "", 12, ["month"]])
def test_interval_must_be_month_or_year(interval: object) -> None:
    _error("traits.interval", "1", traits={"interval": interval})


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        object(),
        b"bytes",
        math.inf,
        -math.inf,
        math.nan,
        [1, math.nan],
        {"nested": {2: "non-str key"}},
        MappingProxyType({"a": 1}),
    ],
)
def test_other_traits_must_be_json(value: object) -> None:
    _error("traits.seats", "1", traits={"seats": value})


def test_deeply_nested_trait_is_refused() -> None:
    value: Any = "leaf"
    for _ in range(40):
        value = [value]
    _error("traits.deep", "1", traits={"deep": value})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_json_traits_pass_through_unchanged_without_their_none_values(
    traits: dict[str, Any],
) -> None:
    traits = {k: v for k, v in traits.items() if k not in ("plan", "amount", "interval")}
    ident = Identity("1", traits=traits)
    kept = {k: v for k, v in traits.items() if v is not None}
    claims = ident.claims()
    if kept:
        assert claims["traits"] == kept
        assert json.loads(json.dumps(claims, allow_nan=False)) == claims
    else:
        assert "traits" not in claims
        assert ident.traits is None


def test_none_traits_are_dropped() -> None:
    ident = Identity("1", traits={"plan": None, "amount": 500, "interval": None})
    assert ident.claims() == {"sub": "1", "traits": {"amount": 500}}


def test_all_none_traits_leave_no_traits_claim() -> None:
    assert Identity("1", traits={"plan": None}).claims() == {"sub": "1"}
    assert Identity("1", traits={}).claims() == {"sub": "1"}


def test_the_identity_does_not_follow_later_changes_to_the_callers_dict() -> None:
    traits: dict[str, Any] = {"plan": "pro"}
    ident = Identity("1", traits=traits)
    traits["amount"] = -5
    assert ident.claims()["traits"] == {"plan": "pro"}
    ident.claims()["traits"]["plan"] = "changed"
    assert ident.claims()["traits"] == {"plan": "pro"}


def test_identity_is_frozen() -> None:
    ident = Identity("1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.sub = "2"  # type: ignore[misc]


def test_claims_keep_the_seed_order() -> None:
    claims = Identity(7, email="a@b.c", traits={"plan": "pro"}).claims()
    assert list(claims) == ["sub", "email", "traits"]


# coerce_identity


def test_coerce_none_is_anonymous() -> None:
    assert coerce_identity(None) is None


def test_coerce_identity_returns_it() -> None:
    ident = Identity("1")
    assert coerce_identity(ident) is ident


@given(
    st.one_of(st.integers(), st.text().filter(str.strip)),
    st.none() | st.emails(),
    st.none() | st.sampled_from(["month", "year"]),
)
def test_coerce_mapping_equals_keywords(sub: Any, email: str | None, interval: Any) -> None:
    traits = {"plan": "pro", "interval": interval}
    mapping = {"sub": sub, "email": email, "traits": traits}
    assert coerce_identity(mapping) == Identity(sub, email=email, traits=traits)
    assert coerce_identity(OrderedDict(mapping)) == Identity(sub, email=email, traits=traits)


def test_coerce_mapping_with_unknown_keys_names_them() -> None:
    with pytest.raises(IdentityError) as info:
        coerce_identity({"sub": "1", "user_id": 1, "name": "Zoë"})
    assert info.value.field in ("user_id", "name")
    assert "'user_id'" in str(info.value)
    assert "'name'" in str(info.value)


def test_coerce_mapping_without_sub() -> None:
    with pytest.raises(IdentityError) as info:
        coerce_identity({"email": "a@b.c"})
    assert info.value.field == "sub"


def test_coerce_mapping_is_validated() -> None:
    with pytest.raises(IdentityError) as info:
        coerce_identity({"sub": "1", "traits": {"amount": -1}})
    assert info.value.field == "traits.amount"


@pytest.mark.parametrize("value", ["user_1", 1, ["1"], ("1", "a@b.c"), object()])
def test_coerce_refuses_other_types(value: object) -> None:
    with pytest.raises(IdentityError) as info:
        coerce_identity(value)
    assert info.value.field == "identity"
