"""The rewriter on realistic pages against the ``bytes.find`` floor, lol-html, a regex and
``html.parser``."""

from __future__ import annotations

import html.parser
import re
from collections.abc import Callable
from typing import Any

from common import NEEDLE, find_all
from pages import CHUNK, PROJECT_ID, WIDGET_SRC, chunks, make_page
from report import NOTES, fmt_rate, fmt_size, fmt_t, row, verdict
from timing import Timer

#: (page size, widget position) -> {measure: seconds}, for the plot.
REWRITER: dict[tuple[int, str | None], dict[str, float]] = {}


NAIVE = re.compile(rb"<script[^>]*>", re.IGNORECASE)


def naive_regex(page: bytes, token: bytes) -> bytes:
    def sub(m: re.Match[bytes]) -> bytes:
        tag = m.group()
        if NEEDLE in tag:
            return tag[:-1] + b' data-identity-token="' + token + b'">'
        return tag

    return NAIVE.sub(sub, page)


class _ScriptFinder(html.parser.HTMLParser):
    found = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and ("src", WIDGET_SRC) in attrs:
            self.found += 1


def stdlib_parser(page: bytes) -> int:
    p = _ScriptFinder(convert_charrefs=False)
    p.feed(page.decode("utf-8", "surrogateescape"))
    p.close()
    return p.found


def lolhtml_rewriter(token: str) -> Callable[[list[bytes]], list[bytes]] | None:
    try:
        import lolhtml
    except ImportError:
        return None

    class Handler:
        def element(self, el: Any) -> None:
            el.set_attribute("data-identity-token", token)

    selector = f'script[src="{WIDGET_SRC}"]'

    def run(parts: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        rw = lolhtml.HTMLRewriter(out.append)
        rw.on(selector, Handler())
        for part in parts:
            rw.write(part)
        rw.end()
        return out

    return run


def bench_rewriter(timer: Timer, quick: bool, token: str) -> None:
    try:
        from reqio_middleware.rewriter import HTMLRewriter, rewrite_html
    except ImportError as exc:
        row("rewriter", "all", f"n/a ({exc})", "", "")
        return
    lol = lolhtml_rewriter(token)
    if lol is None:
        NOTES.append("python-lolhtml is not installed: pip install python-lolhtml")
    tok = token.encode()
    for size in (20_000, 100_000, 1_000_000, 10_000_000):
        for where in (None, "top", "end"):
            page = make_page(size, where)
            parts = chunks(page, CHUNK)
            n = len(page)

            def streamed(parts: list[bytes] = parts) -> list[bytes]:
                rw = HTMLRewriter(token, project_id=PROJECT_ID)
                out = [rw.feed(p) for p in parts]
                out.append(rw.close())
                return out

            whole_out = rewrite_html(page, token, project_id=PROJECT_ID)
            expected = 0 if where is None else 1
            if whole_out.count(tok) != expected or b"".join(streamed()) != whole_out:
                NOTES.append(f"WRONG OUTPUT from ours on {fmt_size(size)} {where}")
            if lol is not None and b"".join(lol(parts)).count(tok) != expected:
                NOTES.append(f"WRONG OUTPUT from lol-html on {fmt_size(size)} {where}")

            fns: dict[str, Callable[[], object]] = {
                "whole": lambda page=page: rewrite_html(page, token, project_id=PROJECT_ID),
                "stream": streamed,
                "find": lambda page=page: find_all(page),
                "regex": lambda page=page: naive_regex(page, tok),
            }
            if lol is not None:
                fns["lol"] = lambda parts=parts: lol(parts)
            t = timer.compare(fns)
            t_whole, t_stream, t_find, t_regex = t["whole"], t["stream"], t["find"], t["regex"]
            t_lol = t.get("lol")
            REWRITER[(size, where)] = t
            t_parser = None  # slow: timed on its own, outside the round-robin
            if not (quick and size >= 10_000_000):
                t_parser = timer(lambda page=page: stdlib_parser(page))

            label = {None: "no widget", "top": "widget near top", "end": "widget near end"}[where]
            ours = (
                f"whole {fmt_t(t_whole)} ({fmt_rate(n, t_whole)}); "
                f"64 KiB stream {fmt_t(t_stream)} ({fmt_rate(n, t_stream)})"
            )
            comp = [f"find {fmt_t(t_find)} ({fmt_rate(n, t_find)})"]
            if t_lol is not None:
                comp.append(f"lol-html {fmt_t(t_lol)} ({fmt_rate(n, t_lol)})")
            comp.append(f"regex {fmt_t(t_regex)}")
            if t_parser is not None:
                comp.append(f"html.parser {fmt_t(t_parser)}")
            best = min(t_whole, t_stream)
            checks = [f"{best / t_find:.1f}x find"]
            if where is None:
                checks.append(verdict(n / t_whole >= 2e9, "≥ 2 GB/s"))
            else:
                checks.append(verdict(n / best >= 500e6, "best ≥ 500 MB/s"))
            if t_lol is not None:
                checks.append(verdict(best <= t_lol, f"best {best / t_lol:.2f}x lol-html"))
            row("rewriter", f"{fmt_size(size)}, {label}", ours, " · ".join(comp), "; ".join(checks))
