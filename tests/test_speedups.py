"""The C data-state scanner and the pattern it stands in for agree on every input."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
from conftest import IN_CI
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rewriter import PIECES  # the same HTML-ish alphabet as the rewriter's properties

from reqio_middleware import rewriter, tokenizer

if os.environ.get("CI") == "true":  # CI builds the extension: its absence is a failure there
    from reqio_middleware import _speedups as speedups
else:
    speedups = pytest.importorskip("reqio_middleware._speedups", reason="C extension not built")

EDGES = [
    b"<",
    b"</",
    b"<!",
    b"<!-",
    b"<?",
    b"<a",
    b"<a b",
    b'<a b="',
    b"<a b=",
    b"<a =",
    b"<s",
    b"<scrip",
    b"<script",
    b"<STYLE ",
    b"</x y='>'",
    b"<a/",
    b"\x00",
    b"\xff",
    b"=",
    b"'",
    b"<script src=/a.js>",
    b"<Script\t>",
    b"</scRipt\n",
    b"<script/",
    b"<script type=module>",
]

PATH = b"/widget.js"


documents = st.lists(st.sampled_from(PIECES + EDGES) | st.binary(max_size=6), max_size=30)


@settings(max_examples=3000)
@given(documents, st.integers(min_value=0, max_value=400), st.sampled_from([b"", PATH]))
def test_c_scanner_stops_where_the_pattern_does_or_past_a_whole_element(
    pieces: list[bytes], at: int, path: bytes
) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    c, pattern = speedups.scan_data(doc, pos, path), tokenizer._scan_data_pattern(doc, pos, path)
    if c != pattern:
        # The C scanner also passes over complete comments, raw-text elements and scripts that
        # cannot be the widget, which the pattern leaves to the rewriter's own states; it
        # resumes in the data state after them.
        assert c > pattern
        name = tokenizer._SPECIAL_OPEN.match(doc, pattern)
        if doc.startswith(b"<!--", pattern):
            return
        assert name is not None
        assert name.group(1).lower() != b"plaintext"
        if name.group(1).lower() == b"script":
            end = tokenizer._tag_end_pattern(doc, name.end())
            assert path and end != -1 and not tokenizer._may_be_widget(doc, pattern, end, path)


@settings(max_examples=3000)
@given(documents, st.integers(min_value=0, max_value=400), st.sampled_from([b"", PATH]))
def test_c_last_candidate_equals_the_pattern(pieces: list[bytes], at: int, path: bytes) -> None:
    doc = b"".join(pieces)
    hi = min(at, len(doc))
    expected = tokenizer._last_candidate_pattern(doc, hi, path)
    assert speedups.last_candidate(doc, hi, path) == expected


def test_c_last_candidate_finds_every_candidate_on_a_long_page() -> None:
    """Every position of the SIMD blocks and the scalar tail, from the last candidate back."""
    tag = b'<SCRIPT src="https://reqio.app/widget.js">'
    filler = b"<s<scr<script-t>ttt<<<sc<script\x00 <scriptt>"
    doc = filler * 20
    spots = [i * 37 for i in range(1, 20)]
    for at in spots:
        doc = doc[:at] + tag + doc[at:]
    found, hi = [], len(doc)
    while (at := speedups.last_candidate(doc, hi, PATH)) != -1:
        found.append(at)
        hi = at
    expected, hi = [], len(doc)
    while (at := tokenizer._last_candidate_pattern(doc, hi, PATH)) != -1:
        expected.append(at)
        hi = at
    assert found == expected
    assert len(found) == len(spots)


@settings(max_examples=3000)
@given(documents, st.integers(min_value=0, max_value=400))
def test_c_tag_end_equals_the_pattern(pieces: list[bytes], at: int) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    assert speedups.tag_end(doc, pos) == tokenizer._tag_end_pattern(doc, pos)


@settings(max_examples=1000)
@given(documents, st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=9))
def test_c_tag_states_equal_the_pattern(pieces: list[bytes], at: int, state: int) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    assert speedups.tag_states(doc, pos, state) == tokenizer._tag_states_pattern(doc, pos, state)


@settings(max_examples=1000)
@given(documents, st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_c_tag_end_with_a_limit_equals_the_pattern(pieces: list[bytes], at: int, to: int) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    limit = min(max(pos, to), len(doc))
    assert speedups.tag_end(doc, pos, limit) == tokenizer._tag_end_pattern(doc, pos, limit)


@settings(max_examples=1000)
@given(documents, st.lists(st.integers(min_value=1, max_value=64), max_size=8))
def test_both_scanners_rewrite_alike(pieces: list[bytes], sizes: list[int]) -> None:
    doc = b"".join(pieces) + b'<script src="https://reqio.app/widget.js"></script>'
    with_c = rewriter.rewrite_html(doc, "TOKEN")
    streamed_c = _streamed(doc, sizes)
    for name in tokenizer._ACCELERATED:
        setattr(tokenizer, name, getattr(tokenizer, name + "_pattern"))
    try:
        assert rewriter.rewrite_html(doc, "TOKEN") == with_c
        assert _streamed(doc, sizes) == streamed_c == with_c
    finally:
        for name in tokenizer._ACCELERATED:
            setattr(tokenizer, name, getattr(speedups, name.lstrip("_")))


def _streamed(doc: bytes, sizes: list[int]) -> bytes:
    r = rewriter.HTMLRewriter("TOKEN")
    out, at = [], 0
    for size in sizes:
        out.append(r.feed(doc[at : at + size]))
        at += size
    out.append(r.feed(doc[at:]))
    return b"".join(out) + r.close()


def test_the_rewriter_uses_the_c_scanner() -> None:
    assert tokenizer._scan_data is speedups.scan_data


def test_bad_arguments_raise_instead_of_reading_out_of_bounds() -> None:
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", 4)
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", -1)
    with pytest.raises(TypeError):
        speedups.scan_data("abc", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        speedups.scan_data(b"abc", 0, "path")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        speedups.tag_end(b"abc", 0, b"path")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        speedups.last_candidate(b"abc", 4, b"/w.js")
    with pytest.raises(TypeError):
        speedups.last_candidate(b"abc", 0)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        speedups.tag_end(b"abc", 2, 1)
    with pytest.raises(ValueError):
        speedups.tag_end(b"abc", 0, 4)
    with pytest.raises(ValueError):
        speedups.tag_states(b"abc", 0, 10)
    with pytest.raises(TypeError):
        speedups.tag_states(b"abc", 0)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The extension built with -DREQIO_PORTABLE: the branches MSVC and other C libraries
    take (no __builtin_clz, no memmem), which GCC on glibc never compiles otherwise."""
    cc = sysconfig.get_config_var("CC") or "cc"
    if shutil.which(cc.split()[0]) is None:
        if IN_CI:
            pytest.fail(f"CI=true: a C compiler ({cc}) must be installed")
        pytest.skip(f"no C compiler ({cc})")
    out = tmp_path_factory.mktemp("portable") / (
        "_speedups" + sysconfig.get_config_var("EXT_SUFFIX")
    )
    source = Path(tokenizer.__file__).with_name("_speedups.c")
    if not source.is_file():  # an installed wheel carries what it built, not the C source
        pytest.skip(f"no C source beside the package ({source}): compiled from a checkout")
    include = sysconfig.get_paths()["include"]
    build = [*cc.split(), "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-DREQIO_PORTABLE"]
    subprocess.run([*build, f"-I{include}", str(source), "-o", str(out)], check=True, timeout=120)
    spec = importlib.util.spec_from_file_location("_speedups", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=500)
@given(documents, st.integers(min_value=0, max_value=400), st.sampled_from([b"", PATH]))
def test_portable_build_equals_the_patterns(
    portable: ModuleType, pieces: list[bytes], at: int, path: bytes
) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    assert portable.tag_end(doc, pos) == tokenizer._tag_end_pattern(doc, pos)
    assert portable.last_candidate(doc, pos, path) == tokenizer._last_candidate_pattern(
        doc, pos, path
    )
    assert portable.scan_data(doc, pos, path) == speedups.scan_data(doc, pos, path)
    for state in range(10):
        expected = tokenizer._tag_states_pattern(doc, pos, state)
        assert portable.tag_states(doc, pos, state) == expected


def test_portable_build_finds_every_candidate_on_a_long_page(portable: ModuleType) -> None:
    tag = b'<SCRIPT src="https://reqio.app/widget.js">'
    doc = (b"<s<scr<script-t>ttt<<<sc<script\x00 <scriptt>" * 30).join([tag] * 12)
    found, hi = [], len(doc)
    while (at := portable.last_candidate(doc, hi, PATH)) != -1:
        found.append(at)
        hi = at
    assert len(found) == 12
