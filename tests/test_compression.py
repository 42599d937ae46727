"""compression.wrap: a compressed page decoded, rewritten and re-encoded as it streams.

Each coding is checked against a decoder that is not ours (the standard library, ``brotli``,
``zstandard``): whatever the split of the encoded body, the output decodes to exactly what
``rewrite_html`` makes of the decoded body. Memory is measured with tracemalloc on 100 MB
bodies, streamed and as a decompression bomb fed at once. Broken bodies never raise.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import importlib
import itertools
import logging
import random
import tracemalloc
import weakref
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from conftest import IN_CI
from hypothesis import given, settings
from hypothesis import strategies as st

from reqio_middleware import HTMLRewriter, compression, rewrite_html

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
WIDGET = b'<script src="https://reqio.app/widget.js" async></script>'
PAGE = b"<!doctype html><title>t</title><p>" + b"some text " * 500 + WIDGET + b"</p>\n"
EXPECTED = rewrite_html(PAGE, TOKEN)


#: A page that compresses little, so that a cut or damage in its encoding lands midway through
#: the text (and through several zstd blocks).
NOISY = (
    b"<p>"
    + random.Random(0)
    .randbytes(600_000)
    .translate(bytes(b"abcdefghijklmnop "[i % 17] for i in range(256)))
    + PAGE
)


def untokened(data: bytes) -> bytes:
    return data.replace(f' data-identity-token="{TOKEN}"'.encode(), b"")


def optional(name: str) -> Any:
    """An optional compression package: skipped locally when missing, required under CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{name} is not installed (CI=true: the test extras include it)")
        pytest.skip(f"{name} is not installed")


# --- reference encoders and decoders (not ours) --------------------------------------------


def _zlib_encode(wbits: int) -> Callable[[bytes], bytes]:
    def encode(data: bytes) -> bytes:
        deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
        return deflater.compress(data) + deflater.flush()

    return encode


def _brotli(name: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    module = optional(name)
    return (lambda data: bytes(module.compress(data, quality=1))), module.decompress


def _zstd() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    module = optional("zstandard")

    def decode(data: bytes) -> bytes:
        return bytes(module.ZstdDecompressor().decompressobj().decompress(data))

    return module.ZstdCompressor(level=1).compress, decode


def reference(form: str) -> tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """``(Content-Encoding, encode, decode)`` for one form of body."""
    if form in ("gzip", "x-gzip"):
        return form, gzip.compress, gzip.decompress
    if form == "deflate-zlib":
        return "deflate", zlib.compress, zlib.decompress
    if form == "deflate-raw":
        return "deflate", _zlib_encode(-15), lambda data: zlib.decompress(data, -15)
    if form == "br":
        return ("br", *_brotli("brotli"))
    if form == "zstd":
        return ("zstd", *_zstd())
    raise ValueError(form)


FORMS = ["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "br", "zstd"]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run(coding: str, chunks: list[bytes], token: str = TOKEN) -> tuple[bytes, list[bytes]]:
    """The whole output and the output of each feed."""
    stream = compression.wrap(coding, HTMLRewriter(token))
    assert stream is not None
    outputs = [stream.feed(chunk) for chunk in chunks]
    return b"".join(outputs) + stream.close(), outputs


# --- wrap and supported ---------------------------------------------------------------------


def test_supported_codings() -> None:
    always = {"gzip", "x-gzip", "deflate"}
    assert always <= compression.supported()
    extra = compression.supported() - always
    assert extra <= {"br", "zstd"}
    for name, coding in (("brotli", "br"), ("zstandard", "zstd")):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        assert coding in extra


@pytest.mark.parametrize("coding", ["gzip, br", "br, gzip", "gzip,gzip", "compress", "bogus", "*"])
def test_stacked_and_unknown_codings_are_not_wrapped(coding: str) -> None:
    assert compression.wrap(coding, HTMLRewriter(TOKEN)) is None


@pytest.mark.parametrize("coding", ["", "identity", " Identity , identity"])
def test_identity_gives_the_stream_back(coding: str) -> None:
    rewriter = HTMLRewriter(TOKEN)
    assert compression.wrap(coding, rewriter) is rewriter


@pytest.mark.parametrize("coding", [" GZIP ", "gzip, identity", "identity,gzip"])
def test_gzip_however_spelt(coding: str) -> None:
    out, _ = run(coding, [gzip.compress(PAGE)])
    assert gzip.decompress(out) == EXPECTED


# --- round trips ----------------------------------------------------------------------------


documents = st.lists(
    st.sampled_from(
        [WIDGET, b"<p>", b"text ", b"<!-- c -->", b"<script>x</script>", b"\x00\xff", b"<", b"\n"]
    )
    | st.binary(max_size=40),
    max_size=40,
).map(b"".join)


@pytest.mark.parametrize("piece", [compression.PIECE, 7])
@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=60)
@given(document=documents, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_decodes_to_the_rewritten_page(
    form: str, piece: int, document: bytes, cuts: list[int]
) -> None:
    # With 7-byte pieces, zlib and zstd hand on more pieces than they are given chunks (brotli
    # grows its output in larger steps: the bomb test below covers its loop).
    coding, encode, decode = reference(form)
    with mock.patch.object(compression, "PIECE", piece):
        out, _ = run(coding, split(encode(document), cuts))
    assert decode(out) == rewrite_html(document, TOKEN)


@pytest.mark.parametrize("form", FORMS)
def test_a_tag_across_two_pieces(form: str) -> None:
    coding, encode, decode = reference(form)
    page = b"<p>" + b"x" * (compression.PIECE - 30) + WIDGET + b"</p>" + b"y" * compression.PIECE
    out, _ = run(coding, split(encode(page), [1000, 5000]))
    assert decode(out) == rewrite_html(page, TOKEN) != page


@pytest.mark.parametrize("form", FORMS)
def test_bytes_leave_with_each_feed(form: str) -> None:
    # The page, encoded, arrives in pieces: what each feed returns is decodable at once
    # (flushed), and by the last feed the whole rewritten page has gone out.
    coding, encode, _ = reference(form)
    pieces = split(encode(PAGE), list(range(0, 10_000, 7)))
    out, outputs = run(coding, pieces)
    decoded = incremental_decoder(form)
    so_far = b"".join(decoded(chunk) for chunk in outputs)
    assert so_far == EXPECTED
    assert out.startswith(b"".join(outputs))


def incremental_decoder(form: str) -> Callable[[bytes], bytes]:
    """A decoder that gives what it can of each chunk, as a browser's does."""
    if form in ("gzip", "x-gzip", "deflate-zlib", "deflate-raw"):
        wbits = {"deflate-zlib": 15, "deflate-raw": -15}.get(form, 31)
        return zlib.decompressobj(wbits).decompress
    if form == "br":
        return optional("brotli").Decompressor().process  # type: ignore[no-any-return]
    decompressor = optional("zstandard").ZstdDecompressor().decompressobj()
    return decompressor.decompress  # type: ignore[no-any-return]


def test_deflate_keeps_its_form() -> None:
    out, _ = run("deflate", [zlib.compress(PAGE)])
    assert zlib.decompress(out) == EXPECTED
    out, _ = run("deflate", [_zlib_encode(-15)(PAGE)])
    assert zlib.decompress(out, -15) == EXPECTED


@pytest.mark.parametrize("name", ["brotli", "brotlicffi"])
def test_either_brotli_package(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = optional(name)
    monkeypatch.setattr(compression, "_module", lambda n: module if n == name else None)
    codec = compression._brotli()
    assert codec is not None
    stream = compression._Recoded("br", codec, HTMLRewriter(TOKEN))
    body = bytes(module.compress(PAGE))
    out = b"".join(stream.feed(body[i : i + 50]) for i in range(0, len(body), 50)) + stream.close()
    assert bytes(module.decompress(out)) == EXPECTED


def test_zstd_stays_within_the_window_browsers_accept() -> None:
    zstandard = optional("zstandard")
    out, _ = run("zstd", [zstandard.ZstdCompressor().compress(PAGE * 200)])
    assert zstandard.get_frame_parameters(out).window_size <= 8 << 20


def test_zstd_frames_needing_a_larger_window_pass_as_they_came(
    caplog: pytest.LogCaptureFixture,
) -> None:
    zstandard = optional("zstandard")
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=24)
    deflater = zstandard.ZstdCompressor(compression_params=params).compressobj()  # size unknown
    body = deflater.compress(PAGE) + deflater.flush()
    assert zstandard.get_frame_parameters(body).window_size > 8 << 20
    with caplog.at_level(logging.WARNING, "reqio_middleware"):
        out, _ = run("zstd", [body])
    assert out == body
    assert "sent as it came" in caplog.text


def test_zstd_frames_one_after_another() -> None:
    zstandard = optional("zstandard")
    first, second = PAGE[:3000], PAGE[3000:]
    body = zstandard.ZstdCompressor().compress(first) + zstandard.ZstdCompressor().compress(second)
    out, _ = run("zstd", split(body, [10, 500, len(body) // 2]))
    assert reference("zstd")[2](out) == EXPECTED


@pytest.mark.parametrize("form", FORMS)
def test_a_finished_body_is_freed_at_once(form: str) -> None:
    # No reference cycle: a decoder's context (megabytes for zstd) goes with its response,
    # not at the garbage collector's next pass.
    coding, encode, _ = reference(form)
    gc.collect()
    gc.disable()
    try:
        stream = compression.wrap(coding, HTMLRewriter(TOKEN))
        assert stream is not None
        stream.feed(encode(PAGE))
        stream.close()
        gone = weakref.ref(stream)
        del stream
        assert gone() is None
    finally:
        gc.enable()


# --- broken bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_a_body_that_is_not_compressed_goes_out_as_it_came(
    coding: str, caplog: pytest.LogCaptureFixture
) -> None:
    if coding not in compression.supported():
        optional({"br": "brotli", "zstd": "zstandard"}[coding])
    with caplog.at_level(logging.WARNING, "reqio_middleware"):
        out, _ = run(coding, split(PAGE, [100, 2000]))
    assert out == PAGE
    assert "sent as it came, without a token" in caplog.text


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_an_empty_or_tiny_body_goes_out_as_it_came(coding: str) -> None:
    assert run(coding, [])[0] == b""
    assert run(coding, [b""])[0] == b""
    assert run(coding, [b"\x1f"])[0] == b"\x1f"


@pytest.mark.parametrize("form", FORMS)
def test_a_truncated_body_ends_as_a_valid_stream(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    coding, encode, decode = reference(form)
    body = encode(NOISY)
    with caplog.at_level(logging.WARNING, "reqio_middleware"):
        out, _ = run(coding, split(body[: len(body) * 2 // 3], list(range(0, len(body), 8192))))
    decoded = decode(out)  # complete and valid: the reference decoder does not raise
    assert 0 < len(decoded) < len(NOISY) and NOISY.startswith(untokened(decoded))
    if form != "zstd":  # zstandard's stream writer cannot tell where a frame ends
        assert "truncated" in caplog.text


@pytest.mark.parametrize("form", FORMS)
def test_a_body_damaged_midway_still_ends_as_a_valid_stream(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A decoder notices damage only when the data stops making sense or a checksum fails, so
    # what was decoded up to then has gone out, as a browser would have shown it.
    coding, encode, decode = reference(form)
    body = bytearray(encode(NOISY))
    middle = len(body) // 2
    body[middle : middle + 64] = b"\xff" * 64
    with caplog.at_level(logging.WARNING, "reqio_middleware"):
        out, _ = run(coding, split(bytes(body), list(range(0, len(body), 4096))))
    decoded = untokened(decode(out))  # complete and valid: the reference decoder does not raise
    same = next(i for i, (a, b) in enumerate(zip(decoded + b"\0", NOISY, strict=False)) if a != b)
    assert same >= len(NOISY) // 3
    if form in ("gzip", "x-gzip", "deflate-zlib"):  # their checksums catch any damage
        assert len(decoded) < len(NOISY) + 1000
        assert "cannot be decoded past this point" in caplog.text


def test_bytes_after_the_end_are_dropped() -> None:
    body = gzip.compress(PAGE)
    out, _ = run("gzip", [body, b"\x00" * 10, gzip.compress(b"<p>second member</p>")])
    assert gzip.decompress(out) == EXPECTED


@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=60)
@given(garbage=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_arbitrary_bytes_never_raise(form: str, garbage: bytes, cuts: list[int]) -> None:
    coding, encode, decode = reference(form)
    for body in (garbage, encode(PAGE)[:20] + garbage):
        out, _ = run(coding, split(body, cuts))
        if out != body:  # either passed as it came or re-encoded into a valid stream
            as_browsers_do(decode, coding, out)


def as_browsers_do(decode: Callable[[bytes], bytes], coding: str, data: bytes) -> bytes:
    """``decode``, except that ``deflate`` is read as zlib-wrapped only with a zlib header."""
    if coding == "deflate" and not compression._is_zlib_header(data[0], data[1]):
        return zlib.decompress(data, -15)
    return decode(data)


# --- memory ---------------------------------------------------------------------------------

MB = 1 << 20
TOTAL = 100 * MB
BLOCK = 64 * 1024
#: The most Python memory a 100 MB body may make the test hold at once (its own 64 KiB blocks
#: and decoders included): a fraction of a percent of the body.
PEAK = 4 * MB


def page_blocks(token: str | None) -> Iterator[bytes]:
    """A 100 MB page in 64 KiB blocks, the widget tag in the last one (stamped if ``token``)."""
    text = (b"<p>lorem ipsum <b>dolor</b> sit amet, &amp; more text</p>\n" * 1200)[:BLOCK]
    for _ in range(TOTAL // BLOCK - 1):
        yield text
    yield rewrite_html(WIDGET, token) if token else WIDGET


def gzip_stream() -> Iterator[bytes | None]:
    """The page gzipped block by block, as an application's compressor streams it; ``None``
    marks its end."""
    deflater = zlib.compressobj(1, zlib.DEFLATED, 31)
    for block in page_blocks(None):
        yield deflater.compress(block)
    yield deflater.flush()
    yield None


def test_a_100_mb_stream_is_rewritten_in_bounded_memory() -> None:
    expected = hashlib.sha256()
    expected_size = 0
    for block in page_blocks(TOKEN):
        expected.update(block)
        expected_size += len(block)
    got = hashlib.sha256()
    size = 0
    inflater = zlib.decompressobj(31)
    tracemalloc.start()
    try:
        stream = compression.wrap("gzip", HTMLRewriter(TOKEN))
        assert stream is not None
        for chunk in gzip_stream():
            out = stream.close() if chunk is None else stream.feed(chunk)
            while out:
                piece = inflater.decompress(out, BLOCK)
                got.update(piece)
                size += len(piece)
                out = inflater.unconsumed_tail
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert inflater.eof
    assert size == expected_size
    assert got.hexdigest() == expected.hexdigest()
    assert peak < PEAK, f"peak {peak / MB:.1f} MB"


def bomb(form: str) -> bytes:
    """100 MB of spaces and the widget tag, encoded: a body a fraction of a megabyte long."""
    data = b" " * (TOTAL - len(WIDGET)) + WIDGET
    if form == "gzip":
        deflater = zlib.compressobj(1, zlib.DEFLATED, 31)
        return deflater.compress(data) + deflater.flush()
    _, encode, _ = reference(form)
    return encode(data)


@pytest.mark.parametrize("form", ["gzip", "br", "zstd"])
def test_a_decompression_bomb_fed_at_once_is_never_held(form: str) -> None:
    coding, _, _ = reference(form)
    body = bomb(form)
    assert len(body) < MB
    tracemalloc.start()
    try:
        out, _ = run(coding, [body])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) < 2 * MB  # its expansion was encoded again on the way out
    assert peak < PEAK, f"peak {peak / MB:.1f} MB"
    decoded = reference(form)[2](out)
    assert len(decoded) == TOTAL - len(WIDGET) + len(rewrite_html(WIDGET, TOKEN))
    assert decoded.endswith(rewrite_html(WIDGET, TOKEN))
