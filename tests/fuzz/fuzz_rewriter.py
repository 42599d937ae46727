"""Coverage-guided fuzzing of HTMLRewriter (atheris / libFuzzer).

Run: ``python tests/fuzz/fuzz_rewriter.py -max_total_time=20 -dict=tests/fuzz/rewriter.dict``.
Every input is a document plus split points; the target fails (libFuzzer reports a crash) when
the rewriter raises, when a chunked feed gives other bytes than the whole, or when the output
differs from the input by more than the token attributes it stamped.

The first byte picks how the rest is read: as raw bytes, or as a list of indexes into the
pieces the Hypothesis generators in ``tests/test_rewriter.py`` use, so the fuzzer reaches widget
tags, comments and raw-text elements far sooner than from random bytes alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the shared helpers

with atheris.instrument_imports(include=["reqio_middleware"]):
    from reqio_middleware import HTMLRewriter, rewrite_html, tokenizer

from test_rewriter import PIECES, STAMP, TOKEN, only_token_attrs_differ

#: The rewriter's state functions in C (when the extension was built) and their pattern twins.
TWINS = [
    (name, getattr(tokenizer, name), getattr(tokenizer, name + "_pattern"))
    for name in tokenizer._ACCELERATED
]
BUILT = any(fast is not slow for _, fast, slow in TWINS)


def rewrite_by_patterns(doc: bytes, project_id: str | None) -> bytes:
    """The rewrite with the pure-Python twins of the C functions, whatever the install built."""
    for name, _, slow in TWINS:
        setattr(tokenizer, name, slow)
    try:
        return rewrite_html(doc, TOKEN, project_id=project_id)
    finally:
        for name, fast, _ in TWINS:
            setattr(tokenizer, name, fast)


def document(fdp: atheris.FuzzedDataProvider) -> bytes:
    if fdp.ConsumeBool():
        raw: bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
        return raw
    out = []
    for byte in fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)):
        out.append(PIECES[byte] if byte < len(PIECES) else bytes([byte]))
    return b"".join(out)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    sizes = [fdp.ConsumeIntInRange(0, 96) for _ in range(fdp.ConsumeIntInRange(0, 12))]
    project_id = "proj_abc123" if fdp.ConsumeBool() else None
    doc = document(fdp)

    whole = rewrite_html(doc, TOKEN, project_id=project_id)
    if BUILT and rewrite_by_patterns(doc, project_id) != whole:
        raise AssertionError(f"the C functions and their patterns rewrite differently: doc={doc!r}")
    stream = HTMLRewriter(TOKEN, project_id=project_id)
    parts, at = [], 0
    for size in sizes:
        parts.append(stream.feed(doc[at : at + size]))
        at += size
    parts.append(stream.feed(doc[at:]))
    parts.append(stream.close())
    streamed = b"".join(parts)

    if streamed != whole:
        raise AssertionError(f"split-variant: sizes={sizes} doc={doc!r}")
    if stream.found == 0:
        if whole != doc:
            raise AssertionError(f"changed without a stamp: doc={doc!r}")
    else:
        if whole.count(STAMP) < stream.found:
            raise AssertionError(f"found={stream.found} but fewer stamps: doc={doc!r}")
        if not only_token_attrs_differ(doc, whole):
            raise AssertionError(f"more than the token changed: doc={doc!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
