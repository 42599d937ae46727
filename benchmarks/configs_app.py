"""One documented configuration, for a server of the end-to-end section (``configs_app:app``).

``REQIO_BENCH_CONFIG`` names it (see ``configs.NAMES``), ``REQIO_BENCH_VARIANT`` is ``bare``,
``ours`` or ``forward``; the page is the 20 KB one the end-to-end rows use.
"""

from __future__ import annotations

import os

from configs import build
from pages import make_page

PAGE_SIZE = 20_000
app, COOKIE = build(
    os.environ["REQIO_BENCH_CONFIG"],
    os.environ.get("REQIO_BENCH_VARIANT", "bare"),
    make_page(PAGE_SIZE, "end"),
)
