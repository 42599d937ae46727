"""URLs of the real-server project: Django's ``LoginView``, pages, JSON and the token view."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import LoginView
from django.urls import path

from reqio_middleware.adapters.django import script_view, token_view

from . import views


def username_identity(user: Any) -> dict[str, str]:
    """``REQIO_USER_IDENTITY``: the username as ``sub``, so tests can name the user."""
    return {"sub": user.get_username(), "email": user.email}


urlpatterns = [
    path("login/", LoginView.as_view()),
    path("page", views.user_page),
    path("stream", views.user_stream),
    path("json", views.json_page),
    path("helper", views.helper_page),
    path("_reqio/token", token_view),
    path("_reqio/token.js", script_view),
]
