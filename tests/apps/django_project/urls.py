from __future__ import annotations

from django.urls import path

from reqio_middleware.adapters.django import script_view, token_view

from . import views

urlpatterns = [
    path("page", views.html_page),
    path("stream", views.streamed),
    path("json", views.json_page),
    path("user/page", views.user_page),
    path("user/stream", views.user_stream),
    path("user/astream", views.user_async_stream),
    path("user/file", views.user_file),
    path("user/attachment", views.user_attachment),
    path("user/cached", views.cached_page),
    path("user/cached.json", views.cached_json),
    path("_reqio/token", token_view),
    path("_reqio/token.js", script_view),
]
