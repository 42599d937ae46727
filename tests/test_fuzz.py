"""Fuzzing (issue 7): many documents x chunkings for the rewriter, a bounded atheris run, and
random ASGI message sequences / WSGI block splits through the middlewares.

The heavy properties choose ``max_examples`` by environment: 10,000 documents under ``CI=true``
(the issue's floor), a few hundred locally so the suite stays quick. Generators and oracles are
imported from the other test files, not copied, so a fix there reaches the fuzzing too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, ROOT_DIR, TESTS_DIR
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_asgi import HTML as ASGI_HTML
from test_asgi import (
    PAGE,
    PLAIN_PAGE,
    TAG,
    Message,
    assert_complete,
    body,
    body_of,
    call,
    cl,
    expected,
    middleware,
    scripted,
    start,
)
from test_rewriter import (
    TOKEN,
    _widget_scripts_per_html5lib,
    documents,
    only_token_attrs_differ,
    rewrite,
    splits,
    streamed,
)
from test_wsgi import HTML as WSGI_HTML
from test_wsgi import assert_length_right_or_absent, make_app, pieces, run
from test_wsgi import cl as wsgi_cl
from test_wsgi import expected as wsgi_expected
from test_wsgi import middleware as wsgi_middleware

from reqio_middleware import tokenizer

# Longer hunts: REQIO_FUZZ_DOCUMENTS=100000 REQIO_FUZZ_SEQUENCES=50000 REQIO_FUZZ_SECONDS=600
DOCUMENTS = int(os.environ.get("REQIO_FUZZ_DOCUMENTS", 10_000 if IN_CI else 300))
SEQUENCES = int(os.environ.get("REQIO_FUZZ_SEQUENCES", 4_000 if IN_CI else 150))
FUZZ_SECONDS = int(os.environ.get("REQIO_FUZZ_SECONDS", 20 if IN_CI else 5))

heavy = settings(
    max_examples=DOCUMENTS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the rewriter: documents x chunkings ----------------------------------------------------


_WIDGET_HOST = re.compile(rb"reqio\.app", re.I)


#: The rewriter's state functions in C (when the extension was built) and their pattern twins.
_TWINS = [
    (name, getattr(tokenizer, name), getattr(tokenizer, name + "_pattern"))
    for name in tokenizer._ACCELERATED
]


def by_patterns(doc: bytes) -> bytes:
    """The rewrite with the pure-Python twins of the C functions, whatever the install built."""
    for name, _, slow in _TWINS:
        setattr(tokenizer, name, slow)
    try:
        return rewrite(doc)
    finally:
        for name, fast, _ in _TWINS:
            setattr(tokenizer, name, fast)


@heavy
@given(st.data())
def test_rewriter_documents_times_chunkings(data: st.DataObject) -> None:
    """One generated document, one chunking, every property (generation is most of the cost)."""
    doc = data.draw(documents(), label="doc")
    sizes = data.draw(splits(doc), label="sizes")
    whole = rewrite(doc)
    # split-invariance, and the C functions agree with their pattern twins
    assert streamed(doc, sizes) == whole
    assert by_patterns(doc) == whole
    # nothing but token attributes changes, and the token is only where html5lib sees a
    # script start tag with the widget's src
    assert only_token_attrs_differ(doc, whole)
    seen, stamped = _widget_scripts_per_html5lib(whole)
    assert seen == stamped, whole
    assert whole.count(TOKEN.encode()) == stamped, whole
    # the same document with the widget's host renamed comes back unchanged, however split
    plain = _WIDGET_HOST.sub(b"example.org", doc)
    assert rewrite(plain) == plain
    assert streamed(plain, sizes) == plain
    event(f"stamped tags: {min(stamped, 3)}{'+' if stamped >= 3 else ''}")
    event(f"chunks: {'1' if not sizes else '2-4' if len(sizes) < 4 else '5+'}")


# --- atheris ----------------------------------------------------------------------------------

FUZZ_DIR = TESTS_DIR / "fuzz"


def require_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        reason = "atheris not installed (pip install atheris; it is in the test extra)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: every tool must be installed)")
        pytest.skip(reason)


def test_atheris_target_catches_a_broken_rewriter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's checks can fail: a rewrite that changes more than the token is reported."""
    require_atheris()
    monkeypatch.syspath_prepend(str(FUZZ_DIR))
    import fuzz_rewriter

    data = bytes(range(64)) * 4  # whatever it decodes to, the broken whole differs from the stream
    fuzz_rewriter.test_one_input(data)  # the real rewriter passes
    real = fuzz_rewriter.rewrite_html

    def broken(doc: bytes, token: str, **kw: Any) -> bytes:
        return real(doc, token, **kw) + b" "

    monkeypatch.setattr(fuzz_rewriter, "rewrite_html", broken)
    with pytest.raises(AssertionError, match="split-variant"):
        fuzz_rewriter.test_one_input(data)


def test_atheris_target_runs_clean_for_a_bounded_time(tmp_path: Path) -> None:
    require_atheris()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(TESTS_DIR), str(ROOT_DIR), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_DIR / "fuzz_rewriter.py"),
            f"-max_total_time={FUZZ_SECONDS}",
            f"-dict={FUZZ_DIR / 'rewriter.dict'}",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
            "-print_final_stats=1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 60,
    )
    log = proc.stderr[-4000:]
    assert proc.returncode == 0, log
    runs = re.search(r"Done (\d+) runs", proc.stderr)
    assert runs is not None and int(runs.group(1)) > 1000, log


# --- ASGI: random message sequences ------------------------------------------------------------

ASGI_PAGES = [PAGE, PAGE + TAG, PLAIN_PAGE, b"", TAG]
NON_BODY = ("http.response.start", "http.response.body")


@st.composite
def asgi_sequences(draw: st.DrawFn) -> tuple[list[Message], bytes, bool, bool]:
    page = draw(st.sampled_from(ASGI_PAGES), label="page")
    html = draw(st.booleans(), label="html")
    declared = draw(st.booleans(), label="declared")
    cuts = draw(st.lists(st.integers(0, max(1, len(page))), max_size=12), label="cuts")
    points = sorted({c for c in cuts if 0 < c < len(page)})
    blocks = [page[a:b] for a, b in zip([0, *points], [*points, len(page)], strict=True)]
    messages: list[Message] = [body(b, more=True) for b in blocks]
    # empty bodies anywhere before the end
    for at in draw(st.lists(st.integers(0, len(messages)), max_size=4), label="empties"):
        messages.insert(at, body(b"", more=True))
    final_kind = draw(st.sampled_from(["empty", "keyless", "explicit"]), label="final")
    if final_kind == "empty" or not messages:
        messages.append(body(b""))
    else:
        last = messages.pop()
        final: Message = {"type": "http.response.body", "body": last["body"]}
        if final_kind == "explicit":
            final["more_body"] = False
        messages.append(final)
    ctype = ASGI_HTML if html else (b"content-type", b"text/plain")
    head = start(ctype, cl(len(page))) if declared else start(ctype)
    sent = [head, *messages]
    if draw(st.booleans(), label="debug"):
        sent.insert(0, {"type": "http.response.debug", "info": {"template": "t"}})
    # messages of kinds we do not know, anywhere: before the start, between bodies, after the end
    noise = draw(st.lists(st.integers(0, len(sent)), max_size=4), label="noise")
    for n, at in enumerate(sorted(noise, reverse=True)):
        sent.insert(at, {"type": "x.unknown", "n": n})
    return sent, page, html, declared


@settings(max_examples=SEQUENCES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=asgi_sequences(), identified=st.booleans())
def test_asgi_any_message_sequence(
    seq: tuple[list[Message], bytes, bool, bool], identified: bool
) -> None:
    sent, page, html, _declared = seq
    event(f"identified={identified} html={html} widget={TAG in page}")
    out = call(middleware(scripted(sent, identity={"sub": 42} if identified else None)))
    if not (identified and html):
        assert out == sent  # not eligible: the very messages the app sent
        return
    assert body_of(out) == expected(page)
    assert_complete(out)  # one start, one final body, Content-Length right or absent
    # every other message, in the order the app sent it; what preceded the start still does
    others = [m for m in out if m["type"] not in NON_BODY]
    assert others == [m for m in sent if m["type"] not in NON_BODY]
    first = next(i for i, m in enumerate(sent) if m["type"] == "http.response.start")
    assert out[:first] == sent[:first]


# --- WSGI: random block splits, wsgiref.validate on both sides ---------------------------------

WSGI_PAGES = [PAGE, PAGE + TAG, PLAIN_PAGE, b"", TAG]


@settings(max_examples=SEQUENCES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.sampled_from(WSGI_PAGES),
    cuts=st.lists(st.integers(0, len(PAGE + TAG)), max_size=12),
    empties=st.lists(st.integers(0, 12), max_size=4),
    declared=st.booleans(),
    html=st.booleans(),
    identified=st.booleans(),
    as_list=st.booleans(),
)
def test_wsgi_any_block_split(
    page: bytes,
    cuts: list[int],
    empties: list[int],
    declared: bool,
    html: bool,
    identified: bool,
    as_list: bool,
) -> None:
    blocks = pieces(page, cuts) if page else []
    for at in empties:
        blocks.insert(min(at, len(blocks)), b"")
    ctype = WSGI_HTML if html else ("Content-Type", "text/plain")
    headers = [ctype, wsgi_cl(len(page))] if declared else [ctype]
    app: Any = make_app(
        blocks if as_list else iter(blocks), headers, identity={"sub": 42} if identified else None
    )
    server = run(wsgi_middleware(app))
    if identified and html:
        assert server.body == wsgi_expected(page)
    else:
        assert server.body == page
    assert_length_right_or_absent(server)
