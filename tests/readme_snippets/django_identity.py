# myapp/reqio.py: optional, named by REQIO_USER_IDENTITY (the default: pk and email)
from typing import Any


def user_identity(user: Any) -> dict[str, Any]:
    return {"sub": str(user.pk), "email": user.email, "traits": {"plan": "team"}}
