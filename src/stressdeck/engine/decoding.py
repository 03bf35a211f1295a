"""Compressed answers: decoded as they arrive, bounded, for checks, extracts and figures.

A profile asks for compression with ``compress = true`` (``ACCEPT_ENCODING`` is then sent),
or with its own Accept-Encoding header. Whatever was asked, an answer whose Content-Encoding
is gzip or deflate is decoded piece by piece as it is read: checks and extracts see the
decoded body, ``bytes`` stays what came over the wire and ``decoded_bytes`` counts what it
decoded to. Nothing is buffered here: each piece decodes in slices of at most SLICE bytes,
and an answer decoding past DECODED_CAP (a decompression bomb) ends as a ``decode`` error.

br and zstd are not decoded: neither library is a dependency, and their streaming APIs
(brotli's process, zstandard's decompressobj) cannot bound one piece's output the way zlib's
``max_length`` does. An answer in a coding not decoded is taken as it came.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

# One answer may decode to at most this much: 1 KiB of gzip decodes to up to ~1 MiB, 10 MiB
# to ~10 GiB. Past it the answer is the error class ``decode``; it is never held in memory.
# Decoding holds the worker's loop (~0.2 s for 64 MiB of zeros on one core), so the cap is
# kept modest: bodies that decode past it are not what a load test measures.
DECODED_CAP = 64 * 1024 * 1024
SLICE = 256 * 1024  # decoded at a time: memory stays bounded whatever the ratio
ACCEPT_ENCODING = "gzip, deflate"  # what ``compress = true`` asks for


class DecodeError(Exception):
    """An answer that does not decode, or decodes past DECODED_CAP."""


class Decoder:
    """Decodes one gzip or deflate body, piece by piece; counts what it decoded to."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.decoded = 0
        # gzip: wbits 31. deflate: zlib-wrapped as RFC 9110 says, or raw as some servers
        # send it (and browsers accept): told apart by the zlib header's first two bytes.
        self._obj: Any = zlib.decompressobj(31) if coding == "gzip" else None
        self._start = b""

    @staticmethod
    def for_answer(content_encoding: str | None) -> Decoder | None:
        """The decoder of a Content-Encoding value; None for none, identity, or a coding
        not decoded (that body is taken as it came)."""
        if not content_encoding:
            return None
        coding = content_encoding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return Decoder("gzip")
        if coding == "deflate":
            return Decoder("deflate")
        return None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``data``, each at most SLICE bytes, one at a time: a caller
        reads each before the next is decoded (iterate to the end). Raises DecodeError."""
        if self._obj is None:
            self._start += data
            if len(self._start) < 2:
                return
            data, self._start = self._start, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._obj = zlib.decompressobj(15 if wrapped else -15)
        pending = data
        while pending and not self._obj.eof:
            try:
                piece = self._obj.decompress(pending, SLICE)
            except zlib.error as exc:
                raise DecodeError(f"invalid {self.coding} data") from exc
            self._count(piece)
            yield piece
            pending = self._obj.unconsumed_tail

    def finish(self) -> list[bytes]:
        """What is left at the end of the body (a truncated stream is taken as it is)."""
        if self._obj is None:
            return []  # fewer than two bytes of body: nothing to decode
        try:
            rest = self._obj.flush()
        except zlib.error as exc:
            raise DecodeError(f"invalid {self.coding} data") from exc
        self._count(rest)
        return [rest]

    def _count(self, piece: bytes) -> None:
        self.decoded += len(piece)
        if self.decoded > DECODED_CAP:
            raise DecodeError(
                f"decoded body over {DECODED_CAP // 2**20} MiB (a decompression bomb)"
            )
