"""Deterministic, realistic HTML pages for the benchmarks.

Real pages are mostly markup with some text, a few external and inline scripts, styles and
comments: the constructs a tag scanner must step over correctly. A fixed seed makes every
run measure the same bytes.
"""

from __future__ import annotations

import random

CHUNK = 64 * 1024
WIDGET_SRC = "https://reqio.app/widget.js"
PROJECT_ID = "proj_abc123"
WIDGET_TAG = f'<script src="{WIDGET_SRC}" data-project-id="{PROJECT_ID}" async></script>'

_WORDS = (  # noqa: SIM905 - one string reads better than 60 quoted words
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est"
).split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _head(rng: random.Random, widget_top: bool) -> str:
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n',
        '<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f'<meta name="description" content="{_text(rng, 18)}">\n',
        '<meta property="og:type" content="website">\n',
        f"<title>{_text(rng, 5)} &amp; {_text(rng, 2)}</title>\n",
        '<link rel="preconnect" href="https://cdn.example.com" crossorigin>\n',
        '<link rel="stylesheet" href="/static/css/app.3f9a1c.css">\n',
        '<link rel="icon" type="image/png" href="/static/favicon-32.png" sizes="32x32">\n',
        '<script src="https://cdn.example.com/vendor/react.production.min.js" defer></script>\n',
        '<script src="/static/js/app.8b21d0.js" type="module"></script>\n',
        "<script>window.dataLayer = window.dataLayer || [];"
        " function gtag(){dataLayer.push(arguments);}"
        " if (a < b && '<script>' !== x) { gtag('js', new Date()); }</script>\n",
        "<style>\nbody{margin:0;font-family:system-ui,sans-serif}"
        ".card>a:hover{color:#c00}/* <script src=x> */\n</style>\n",
    ]
    if widget_top:
        parts.append(WIDGET_TAG + "\n")
    parts.append("</head>\n")
    return "".join(parts)


def _block(rng: random.Random, i: int) -> str:
    kind = rng.random()
    if kind < 0.45:
        links = "".join(
            f'<li><a href="/item/{i}-{k}" class="link link-{k % 3}">{_text(rng, 3)}</a></li>'
            for k in range(rng.randint(2, 6))
        )
        return (
            f'<div class="card" id="card-{i}" data-index="{i}">\n'
            f'  <div class="card-body"><h3 class="title">{_text(rng, 4)}</h3>\n'
            f"    <p>{_text(rng, rng.randint(15, 45))}</p>\n"
            f'    <ul class="links">{links}</ul>\n'
            f'    <img src="/img/{i}.webp" alt="{_text(rng, 3)}" width="320" height="180"'
            ' loading="lazy">\n'
            "  </div>\n</div>\n"
        )
    if kind < 0.65:
        words = _text(rng, rng.randint(40, 90))
        return f"<section><h2>{_text(rng, 3)}</h2><p>{words}</p></section>\n"
    if kind < 0.75:
        return f'<!-- block {i}: {_text(rng, 6)} <script src="/old.js"></script> -->\n'
    if kind < 0.82:
        return (
            f"<script>document.getElementById('card-{i}') && "
            f"console.log('{_text(rng, 3)}', {i} < 10);</script>\n"
        )
    if kind < 0.87:
        return f"<style>#card-{i}{{padding:{i % 16}px}}</style>\n"
    if kind < 0.94:
        return (
            f'<form action="/search" method="get"><label for="q{i}">{_text(rng, 2)}</label>'
            f'<input id="q{i}" name="q" type="search" placeholder="{_text(rng, 2)}">'
            f'<button type="submit" class="btn btn-primary">Go</button></form>\n'
        )
    return (
        f'<table class="grid"><tr><th>{_text(rng, 1)}</th><th>{_text(rng, 1)}</th></tr>'
        f"<tr><td>{rng.randint(0, 9999)}</td><td>{_text(rng, 4)}</td></tr></table>\n"
    )


def make_page(size: int, widget: str | None = None, seed: int = 1) -> bytes:
    """An HTML page of about ``size`` bytes; ``widget`` is None, ``"top"`` or ``"end"``."""
    if widget not in (None, "top", "end"):
        raise ValueError("widget must be None, 'top' or 'end'")
    rng = random.Random(seed)
    head = _head(rng, widget == "top")
    tail = (WIDGET_TAG + "\n" if widget == "end" else "") + "</body>\n</html>\n"
    parts = [head, '<body class="home">\n<div id="root">\n']
    length = sum(len(p) for p in parts) + len(tail) + len("</div>\n")
    i = 0
    while length < size:
        block = _block(rng, i)
        parts.append(block)
        length += len(block)
        i += 1
    parts.append("</div>\n")
    parts.append(tail)
    return "".join(parts).encode()


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


if __name__ == "__main__":
    page = make_page(20_000, "end")
    print(page[:1500].decode())
    print("...")
    print(page[-400:].decode())
    print(len(page), page.count(b"<script"), page.count(b"<!--"))
