from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("page", views.html_page),
    path("stream", views.streamed),
    path("json", views.json_page),
]
