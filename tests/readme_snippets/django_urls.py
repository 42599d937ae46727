# urls.py: the token endpoint (Django's session, auth and CSRF apply) and its browser helper
from django.urls import path

from reqio_middleware.adapters.django import script_view, token_view

urlpatterns = [
    path("_reqio/token", token_view),
    path("_reqio/token.js", script_view),
]
