"""Rewrite a compressed page as it streams: decode, rewrite, re-encode in the same coding.

A page that reaches the middleware already compressed (the compressing middleware was put
inside it) would otherwise go out without a token. :func:`wrap` puts a decoder in front of a
rewriter and an encoder of the same coding behind it, so the wrong order costs CPU, not a
token: ``gzip`` and ``x-gzip``, ``deflate`` (zlib-wrapped or raw, as browsers accept both),
``br`` with the ``brotli`` or ``brotlicffi`` package (1.2 or later: earlier ones cannot bound
their output), and ``zstd`` with the ``zstandard`` package or Python 3.14's
``compression.zstd``.

Memory stays bounded whatever the body: the decoder hands on at most :data:`PIECE` bytes at a
time, each piece is rewritten and re-encoded at once, and what a feed returns is the encoded
output, about as large as the encoded input it came from. A decompression bomb therefore only
ever costs CPU: its expansion is compressed again on the way out and never held. Each feed
ends with a flush, so the bytes of a chunk leave with it. ``zstd`` frames that need a window
larger than 8 MiB are refused, as RFC 9659 lets browsers do.

Broken input never raises into the server:

- a body that cannot be decoded before anything went out (not really compressed, or an
  unsupported variant) goes out exactly as it came, and a WARNING says so;
- a body that breaks later ends at the last byte that could be decoded, as a complete, valid
  stream (the client's decoder would have stopped there too), with a WARNING;
- a truncated body is finished as a valid stream of what arrived, with a WARNING (``zstd``
  through ``zstandard`` cannot tell a truncated frame from a complete one, so there no
  warning is given);
- bytes after the end of the encoded stream are dropped, as Chromium ignores them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

__all__ = ["PIECE", "Stream", "supported", "wrap"]

logger = logging.getLogger("reqio_middleware")

#: The most decoded bytes handed to the rewriter at a time.
PIECE = 64 * 1024
# Re-encoding is paid per signed-in page, so each coding gets the setting that keeps most of
# its compression at a fraction of the CPU: on an HTML page, these three give sizes within a
# few percent of one another, where zlib's default (6) costs about 2.5x the time of 4 for 7%
# less, and brotli's default (11) is meant for files compressed once.
_ZLIB_LEVEL = 4
_BROTLI_QUALITY = 4
_ZSTD_LEVEL = 3  # zstd's own default
_ZSTD_WINDOW_LOG_MAX = 23  # 8 MiB: the largest window RFC 9659 asks HTTP clients to accept
_GZIP_WBITS, _ZLIB_WBITS, _RAW_WBITS = 31, 15, -15


class Stream(Protocol):
    """What :func:`wrap` takes and gives: :class:`~reqio_middleware.HTMLRewriter`'s shape."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


Sink = Callable[[bytes], None]


class _Decoder(Protocol):
    def decode(self, data: bytes, sink: Sink) -> None:
        """Decode ``data``, giving ``sink`` the output in pieces of at most :data:`PIECE`."""

    @property
    def finished(self) -> bool | None:
        """Whether the encoded stream has ended (``None``: this decoder cannot tell)."""


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes:
        """All output so far, decodable by the client without waiting for more."""

    def finish(self) -> bytes: ...


class _Codec(NamedTuple):
    #: How many leading bytes ``make`` needs to see (``deflate`` tells its two forms apart).
    header: int
    #: The decoder and the encoder for a body that starts with the given bytes.
    make: Callable[[bytes], tuple[_Decoder, _Encoder]]
    #: What the decoder raises on input it cannot decode.
    errors: tuple[type[Exception], ...]


def supported() -> frozenset[str]:
    """The content codings :func:`wrap` can rewrite here (lowercase)."""
    return frozenset(_codecs())


def wrap(content_encoding: str, stream: Stream) -> Stream | None:
    """``stream`` behind a decoder and in front of an encoder for ``content_encoding`` (a
    Content-Encoding value); ``None`` for a coding not in :func:`supported` or for several
    codings stacked (``gzip, br``). ``identity`` counts as no coding: alone, it gives
    ``stream`` back as it is."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return stream
    codec = _codecs().get(codings[0]) if len(codings) == 1 else None
    return None if codec is None else _Recoded(codings[0], codec, stream)


class _Recoded:
    """One body: decoded, rewritten and re-encoded as it comes (see the module docstring)."""

    def __init__(self, coding: str, codec: _Codec, stream: Stream) -> None:
        self._coding, self._codec, self._stream = coding, codec, stream
        self._decoder: _Decoder | None = None
        self._encoder: _Encoder | None = None
        self._held: list[bytes] = []  # the raw input, until some output has gone out
        self._out: list[bytes] = []  # this call's encoded output
        self._unflushed = False  # the encoder has had input since its last flush
        self._sent = False
        self._raw = False  # undecodable from the start: the body passes as it came
        self._done = False  # the encoded stream has ended (or broke): the rest is dropped

    def feed(self, chunk: bytes) -> bytes:
        if self._raw:
            return chunk
        if self._done or not chunk:
            return b""
        if not self._sent:
            self._held.append(chunk)
        if self._decoder is None:
            if sum(map(len, self._held)) < self._codec.header:
                return b""
            chunk = b"".join(self._held)
            self._decoder, self._encoder = self._codec.make(chunk)
        try:
            self._decoder.decode(chunk, self._through)
        except self._codec.errors as exc:
            return self._broken(exc)
        if self._decoder.finished:
            self._end()
        return self._take()

    def close(self) -> bytes:
        if self._raw or self._done:
            return b""
        if self._decoder is None or (not self._sent and self._decoder.finished is not True):
            return self._give_raw("ended before it could be decoded") if self._held else b""
        if self._decoder.finished is False:
            logger.warning("compressed page (%s) truncated: finished where it ended", self._coding)
        self._end()
        return self._take()

    def _through(self, piece: bytes) -> None:
        assert self._encoder is not None
        rewritten = self._stream.feed(piece)
        if rewritten:
            self._out.append(self._encoder.compress(rewritten))
            self._unflushed = True

    def _end(self) -> None:
        """The rewriter's last bytes, and the end of the encoded stream."""
        assert self._encoder is not None
        rest = self._stream.close()
        if rest:
            self._out.append(self._encoder.compress(rest))
        self._out.append(self._encoder.finish())
        self._unflushed, self._done = False, True

    def _take(self) -> bytes:
        if self._unflushed:
            assert self._encoder is not None
            self._out.append(self._encoder.flush())
            self._unflushed = False
        out = b"".join(self._out)
        self._out.clear()
        if out:
            self._sent = True
            self._held.clear()
        return out

    def _broken(self, exc: Exception) -> bytes:
        if not self._sent:
            return self._give_raw(f"cannot be decoded ({exc})")
        logger.warning(
            "compressed page (%s) cannot be decoded past this point (%s): it ends there",
            self._coding,
            exc,
        )
        self._end()
        return self._take()

    def _give_raw(self, why: str) -> bytes:
        logger.warning(
            "compressed page (%s) %s: sent as it came, without a token", self._coding, why
        )
        raw = b"".join(self._held)
        self._held.clear()
        self._out.clear()
        self._raw = True
        return raw


# --- zlib: gzip and deflate ----------------------------------------------------------------


class _ZlibDecoder:
    def __init__(self, wbits: int) -> None:
        self._inflater = zlib.decompressobj(wbits)

    @property
    def finished(self) -> bool:
        return self._inflater.eof

    def decode(self, data: bytes, sink: Sink) -> None:
        inflater = self._inflater
        while not inflater.eof:
            piece = inflater.decompress(data, PIECE)
            if piece:
                sink(piece)
            if len(piece) < PIECE:  # zlib stops short of the limit only when out of input
                return
            data = inflater.unconsumed_tail


class _ZlibEncoder:
    def __init__(self, wbits: int) -> None:
        self._deflater = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, wbits)

    def compress(self, data: bytes) -> bytes:
        return self._deflater.compress(data)

    def flush(self) -> bytes:
        return self._deflater.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._deflater.flush(zlib.Z_FINISH)


def _gzip(_first: bytes) -> tuple[_Decoder, _Encoder]:
    return _ZlibDecoder(_GZIP_WBITS), _ZlibEncoder(_GZIP_WBITS)


def _deflate(first: bytes) -> tuple[_Decoder, _Encoder]:
    """``deflate`` is meant to be zlib-wrapped (RFC 9110) but often is raw; browsers take a
    valid zlib header for the first and anything else for the second. So do we, both ways."""
    wbits = _ZLIB_WBITS if _is_zlib_header(first[0], first[1]) else _RAW_WBITS
    return _ZlibDecoder(wbits), _ZlibEncoder(wbits)


def _is_zlib_header(cmf: int, flg: int) -> bool:
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


# --- brotli --------------------------------------------------------------------------------


class _BrotliDecoder:
    def __init__(self, module: Any) -> None:
        self._decompressor = module.Decompressor()

    @property
    def finished(self) -> bool:
        return bool(self._decompressor.is_finished())

    def decode(self, data: bytes, sink: Sink) -> None:
        decompressor = self._decompressor
        if decompressor.is_finished():
            return
        piece = decompressor.process(data, output_buffer_limit=PIECE)
        while True:
            if piece:
                sink(piece)
            if decompressor.is_finished():
                return
            # A short piece and room for input: what it was given is all decoded. (It may
            # accept input while it still holds output, so both are asked.)
            if len(piece) < PIECE and decompressor.can_accept_more_data():
                return
            piece = decompressor.process(b"", output_buffer_limit=PIECE)


class _BrotliEncoder:
    def __init__(self, module: Any) -> None:
        self._compressor = module.Compressor(quality=_BROTLI_QUALITY)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.process(data))

    def flush(self) -> bytes:
        return bytes(self._compressor.flush())

    def finish(self) -> bytes:
        return bytes(self._compressor.finish())


# --- zstd ----------------------------------------------------------------------------------


class _ZstandardDecoder:
    """``zstandard``'s stream writer: it hands each output buffer (``PIECE`` bytes) on as it
    fills, where its ``decompressobj`` would join the whole expansion of an input first."""

    def __init__(self, module: Any) -> None:
        self._out = _Forward()
        decompressor = module.ZstdDecompressor(max_window_size=1 << _ZSTD_WINDOW_LOG_MAX)
        self._writer = decompressor.stream_writer(self._out, write_size=PIECE)

    @property
    def finished(self) -> None:
        return None  # its stream writer does not say where a frame ends

    def decode(self, data: bytes, sink: Sink) -> None:
        # The sink is only held during the call: kept, it would make a reference cycle
        # through the stream writer, and each body's decoder context (megabytes) would wait
        # for the garbage collector.
        self._out.sink = sink
        try:
            self._writer.write(data)
        finally:
            self._out.sink = None


class _Forward:
    """Where the stream writer puts each output buffer: passed on to the current sink."""

    __slots__ = ("sink",)

    def __init__(self) -> None:
        self.sink: Sink | None = None

    def write(self, piece: bytes) -> int:
        if piece and self.sink is not None:
            self.sink(bytes(piece))
        return len(piece)


class _ZstandardEncoder:
    def __init__(self, module: Any) -> None:
        self._block = module.COMPRESSOBJ_FLUSH_BLOCK
        self._compressor = module.ZstdCompressor(level=_ZSTD_LEVEL).compressobj()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.compress(data))

    def flush(self) -> bytes:
        return bytes(self._compressor.flush(self._block))

    def finish(self) -> bytes:
        return bytes(self._compressor.flush())


class _StdZstdDecoder:
    """Python 3.14's ``compression.zstd``: the ``max_length`` interface of ``lzma``; one
    decompressor per frame, as a zstd stream may hold several."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._decompressor = self._new()

    def _new(self) -> Any:
        window = self._module.DecompressionParameter.window_log_max
        return self._module.ZstdDecompressor(options={window: _ZSTD_WINDOW_LOG_MAX})

    @property
    def finished(self) -> bool:
        return bool(self._decompressor.eof)

    def decode(self, data: bytes, sink: Sink) -> None:
        while data or not self._decompressor.needs_input:
            piece = self._decompressor.decompress(data, PIECE)
            data = b""
            if piece:
                sink(piece)
            if self._decompressor.eof:
                data = self._decompressor.unused_data
                if not data:
                    return
                self._decompressor = self._new()


class _StdZstdEncoder:
    def __init__(self, module: Any) -> None:
        self._kind = module.ZstdCompressor
        self._compressor = module.ZstdCompressor(level=_ZSTD_LEVEL)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.compress(data))

    def flush(self) -> bytes:
        return bytes(self._compressor.flush(self._kind.FLUSH_BLOCK))

    def finish(self) -> bytes:
        return bytes(self._compressor.flush(self._kind.FLUSH_FRAME))


# --- which codings are here ----------------------------------------------------------------


@functools.cache
def _codecs() -> dict[str, _Codec]:
    gzip = _Codec(0, _gzip, (zlib.error,))
    codecs = {"gzip": gzip, "x-gzip": gzip, "deflate": _Codec(2, _deflate, (zlib.error,))}
    brotli = _brotli()
    if brotli is not None:
        codecs["br"] = brotli
    zstd = _zstd()
    if zstd is not None:
        codecs["zstd"] = zstd
    return codecs


def _brotli() -> _Codec | None:
    for name in ("brotli", "brotlicffi"):
        module = _module(name)
        if module is not None and hasattr(module.Decompressor, "can_accept_more_data"):
            make = functools.partial(_pair, _BrotliDecoder, _BrotliEncoder, module)
            return _Codec(0, make, (module.error,))
    return None


def _zstd() -> _Codec | None:
    module = _module("zstandard")
    if module is not None:
        make = functools.partial(_pair, _ZstandardDecoder, _ZstandardEncoder, module)
        return _Codec(0, make, (module.ZstdError,))
    module = _module("compression.zstd")
    if module is not None:
        make = functools.partial(_pair, _StdZstdDecoder, _StdZstdEncoder, module)
        return _Codec(0, make, (module.ZstdError,))
    return None


def _pair(
    decoder: Callable[[Any], _Decoder], encoder: Callable[[Any], _Encoder], module: Any, _: bytes
) -> tuple[_Decoder, _Encoder]:
    return decoder(module), encoder(module)


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
