# Order: Reqio(app) after LoginManager(app); Flask-Compress may come before or after it.
from flask import Flask, g

from reqio_middleware.adapters.flask import Reqio

app = Flask(__name__)
app.config["REQIO_PROJECT_ID"] = "proj_abc123"  # REQIO_SECRET comes from the environment
app.config["REQIO_TOKEN_PATH"] = "/_reqio/token"  # optional: the token endpoint, a route
reqio = Reqio(app)


@reqio.identity_loader  # optional: the default is Flask-Login's current_user
def current_identity() -> dict[str, str] | None:
    user = g.get("user")
    return {"sub": str(user.id), "email": user.email} if user else None
