"""Who the signed-in user is, checked once, so that a bad value fails here and not in the widget.

An :class:`Identity` is validated when it is built: every later step (minting, the endpoint, the
rewriter) can trust it. Bad input raises :class:`IdentityError`, a ``ValueError`` that names the
field at fault, because "invalid identity" alone sends people hunting through their user model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIELDS", "INTERVALS", "Identity", "IdentityError", "coerce_identity"]

#: The keys an identity mapping may have (the keyword arguments of :class:`Identity`).
FIELDS = ("sub", "email", "traits")

#: The billing cadences Reqio understands for the ``interval`` trait.
INTERVALS = ("month", "year")


class IdentityError(ValueError):
    """An identity the widget could not trust; ``field`` names the key (e.g. ``traits.amount``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Identity:
    """The claims that identify a user to the widget.

    ``sub`` is stored (and minted) as a string: RFC 7519 says so, PyJWT >= 2.10 and Go's
    ``RegisteredClaims`` refuse a numeric one, and a database key is usually an int. ``traits``
    is stored as a copy without its ``None`` values (an empty result becomes ``None``), so a
    caller mutating its dict later cannot change a validated identity.
    """

    sub: str | int
    email: str | None = None
    traits: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sub", _check_sub(self.sub))
        if self.email is not None and not isinstance(self.email, str):
            raise IdentityError("email", f"must be a str or None, not {_kind(self.email)}")
        object.__setattr__(self, "traits", _check_traits(self.traits))

    def claims(self) -> dict[str, Any]:
        """The identity's part of the token payload, in the seeds' order (sub, email, traits)."""
        claims: dict[str, Any] = {"sub": self.sub}
        if self.email is not None:
            claims["email"] = self.email
        if self.traits:
            claims["traits"] = dict(self.traits)
        return claims


def coerce_identity(value: object) -> Identity | None:
    """Accept what a resolver may return: ``None`` (anonymous), an ``Identity`` or a mapping."""
    if value is None or isinstance(value, Identity):
        return value
    if isinstance(value, Mapping):
        keys = [key for key in value if not (isinstance(key, str) and key in FIELDS)]
        if keys:
            names = ", ".join(sorted(repr(key) for key in keys))
            raise IdentityError(
                str(keys[0]), f"unknown identity field(s) {names}; expected {', '.join(FIELDS)}"
            )
        if "sub" not in value:
            raise IdentityError("sub", "missing; every identity needs a user id")
        return Identity(**value)
    raise IdentityError("identity", f"expected an Identity, a mapping or None, not {_kind(value)}")


def _check_sub(sub: object) -> str:
    if isinstance(sub, bool) or not isinstance(sub, (str, int)):
        raise IdentityError("sub", f"must be a str or int user id, not {_kind(sub)}")
    text = str(sub) if isinstance(sub, int) else sub
    if not text.strip():
        raise IdentityError("sub", "must not be empty")
    return text


def _check_traits(traits: object) -> dict[str, Any] | None:
    if traits is None:
        return None
    if not isinstance(traits, Mapping):
        raise IdentityError("traits", f"must be a mapping or None, not {_kind(traits)}")
    kept: dict[str, Any] = {}
    for key, value in traits.items():
        if not isinstance(key, str):
            raise IdentityError("traits", f"keys must be str, not {_kind(key)} ({key!r})")
        if value is None:
            continue
        name = f"traits.{key}"
        if key == "plan":
            if not isinstance(value, str):
                raise IdentityError(name, f"must be a str, not {_kind(value)}")
        elif key == "amount":
            if isinstance(value, bool) or not isinstance(value, int):
                raise IdentityError(name, f"must be an int number of cents, not {_kind(value)}")
            if value < 0:
                raise IdentityError(name, f"must be >= 0 cents, not {value}")
        elif key == "interval":
            if value not in INTERVALS:
                raise IdentityError(name, f"must be 'month' or 'year', not {value!r}")
        else:
            _check_json(name, value)
        kept[key] = value
    return kept or None


def _check_json(name: str, value: object, depth: int = 0) -> None:
    """Refuse what would not come back unchanged from a JSON verifier (NaN, tuple keys, objects)."""
    if depth > 32:
        raise IdentityError(name, "nested too deeply for a token")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise IdentityError(name, f"{value!r} is not valid JSON")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(name, item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise IdentityError(name, f"object keys must be str, not {_kind(key)} ({key!r})")
            _check_json(name, item, depth + 1)
        return
    raise IdentityError(name, f"must be JSON-serialisable, not {_kind(value)}")


def _kind(value: object) -> str:
    return type(value).__name__
