"""Minting a token: ours against PyJWT's ``encode`` of the same claims."""

from __future__ import annotations

import time

from common import AUDIENCE, IDENTITY, SECRET
from report import NOTES, fmt_t, row
from timing import Timer


def bench_tokens(timer: Timer) -> tuple[float, str]:
    import jwt

    from reqio_middleware.identity import Identity
    from reqio_middleware.tokens import ReqioMinter, mint_token

    identity = Identity(**IDENTITY)  # type: ignore[arg-type]
    minter = ReqioMinter(SECRET, AUDIENCE)  # what the middlewares call: secret checked once

    def pyjwt() -> str:
        now = int(time.time())
        claims = dict(IDENTITY, aud=AUDIENCE, iat=now, exp=now + 300)
        return jwt.encode(claims, SECRET, algorithm="HS256")

    def ours() -> str:
        return mint_token(identity, secret=SECRET, audience=AUDIENCE)

    token = ours()
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    if decoded["sub"] != "user_42":
        NOTES.append("WRONG TOKEN from mint_token")
    if minter(identity).count(".") != 2:
        NOTES.append("WRONG TOKEN from ReqioMinter")
    t = timer.compare({"pyjwt": pyjwt, "ours": ours, "minter": lambda: minter(identity)})
    t_jwt, t_ours, t_minter = t["pyjwt"], t["ours"], t["minter"]
    row(
        "token",
        "HS256, sub+email+traits",
        f"ReqioMinter {fmt_t(t_minter)} · mint_token {fmt_t(t_ours)}",
        f"PyJWT encode {fmt_t(t_jwt)}",
        f"{t_minter / t_jwt:.2f}x / {t_ours / t_jwt:.2f}x PyJWT",
    )
    return t_jwt, token
