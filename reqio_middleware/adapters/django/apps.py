"""The Django app: ``INSTALLED_APPS += ["reqio_middleware.adapters.django"]`` adds the checks."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped,unused-ignore]


class ReqioConfig(AppConfig):  # type: ignore[misc,unused-ignore]
    name = "reqio_middleware.adapters.django"
    label = "reqio"
    verbose_name = "Reqio"

    def ready(self) -> None:
        from .checks import register

        register()
