# Order: add_middleware(ReqioMiddleware) before add_middleware(GZipMiddleware) (the last added
# is outermost, so GZip compresses the stamped page).
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.middleware.gzip import GZipMiddleware

from reqio_middleware import ReqioMiddleware
from reqio_middleware.adapters.fastapi import remember_identity, token_router


def optional_user(request: Request) -> str | None:  # stands in for your app's own auth
    return request.cookies.get("user")


async def current_identity(
    user: Annotated[str | None, Depends(optional_user)],
) -> dict[str, str] | None:
    return {"sub": user} if user else None


app = FastAPI(dependencies=[Depends(remember_identity(current_identity))])
app.add_middleware(ReqioMiddleware)  # REQIO_SECRET and REQIO_PROJECT_ID from the environment
app.add_middleware(GZipMiddleware)
app.include_router(token_router(current_identity))  # GET/POST /_reqio/token, /_reqio/token.js
