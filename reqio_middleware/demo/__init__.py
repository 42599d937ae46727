"""The ``reqio-middleware demo`` app: every way a page can reach the widget, working offline.

Run it with ``reqio-middleware demo``; :func:`reqio_middleware.demo.app.create_app` builds the
ASGI app for tests and embedding.
"""
