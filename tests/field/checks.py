"""The checks every field test applies to a document, through the public API only."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from field.oracle import TOKEN, Verdict, judge
from reqio_middleware import HTMLRewriter, rewrite_html
from reqio_middleware.rewriter import explain


def rewrite(doc: str) -> str:
    """``doc`` rewritten as bytes (the middleware's path), decoded for the oracle."""
    out: bytes = rewrite_html(doc.encode("utf-8"), TOKEN)
    return out.decode("utf-8")


def feed(data: bytes, cuts: list[int]) -> tuple[bytes, HTMLRewriter]:
    """``data`` through an :class:`HTMLRewriter`, cut at ``cuts`` (ascending)."""
    rewriter = HTMLRewriter(TOKEN)
    pieces: list[bytes] = []
    last = 0
    for cut in [*cuts, len(data)]:
        pieces.append(rewriter.feed(data[last:cut]))
        last = cut
    pieces.append(rewriter.close())
    return b"".join(pieces), rewriter


def random_cuts(size: int, rng: random.Random) -> list[int]:
    """A random split of ``size`` bytes: a few pieces, some of them tiny."""
    if size < 2:
        return []
    count = rng.randint(1, min(12, size - 1))
    return sorted(rng.sample(range(1, size), count))


def chunking_mismatch(doc: str, rng: random.Random, *, splits: int, bytewise: bool) -> str:
    """Empty when every split tried gives ``rewrite_html``'s bytes; else the split that did not."""
    data = doc.encode("utf-8")
    whole: bytes = rewrite_html(data, TOKEN)
    tries = [random_cuts(len(data), rng) for _ in range(splits)]
    if bytewise:
        tries.append(list(range(1, len(data))))
    for cuts in tries:
        fed, _ = feed(data, cuts)
        if fed != whole:
            return f"cuts {cuts[:20]}{'...' if len(cuts) > 20 else ''} give different bytes"
    return ""


@dataclass
class Outcome:
    """One document's verdict, and whether each missed widget tag was given a reason."""

    doc: str
    verdict: Verdict
    unexplained: list[str]


def _missed_reasons(rewriter: HTMLRewriter) -> list[str]:
    missed = getattr(rewriter, "missed", None)  # the tokenizer's "unsure" record, when it has one
    if not missed:
        return []
    return [missed] if isinstance(missed, str) else [str(m) for m in missed]


def _explained(doc: bytes, probe: str) -> bool:
    probe_attr = re.compile(
        rb"""data-probe\s*=\s*["']?""" + re.escape(probe.encode()) + rb"\b", re.I
    )
    return any(
        not report.rewritten and report.reason and probe_attr.search(report.tag)
        for report in explain(doc)
    )


def outcome(doc: str) -> Outcome:
    """Rewrite ``doc``, judge it, and look for the reason of each miss."""
    verdict = judge(rewrite(doc))
    unexplained: list[str] = []
    if verdict.missed:
        data = doc.encode("utf-8")
        _, rewriter = feed(data, [])
        reasons = _missed_reasons(rewriter)
        unexplained = [p for p in sorted(verdict.missed) if not reasons and not _explained(data, p)]
    return Outcome(doc, verdict, unexplained)


def describe(doc: str, problems: list[str]) -> str:
    shown = doc if len(doc) <= 300 else doc[:300] + "..."
    return f"{shown!r}: {'; '.join(problems)}"
