"""engine/hdr.py's one seam onto pyhdrh (hdrhistogram's private C module), checked against
hdrhistogram's public encoder and decoder: should a release change the private module, this
fails here rather than as wrong percentiles in a run."""

from __future__ import annotations

import base64
import ctypes
import random
import zlib

import numpy as np
import pytest
from hdrh.codec import ext_header_size
from hdrh.histogram import HdrHistogram

from stressdeck.engine.hdr import (
    decode_histogram,
    decode_payload_into,
    new_histogram,
)


def recorded(values: list[int]) -> HdrHistogram:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value)
    return histogram


def public_counts(encoded: bytes) -> dict[int, int]:
    """Index -> count through hdrhistogram's public decoder."""
    decoded = HdrHistogram.decode(encoded)
    counts = (decoded.get_count_at_index(i) for i in range(decoded.counts_len))
    return {i: int(c) for i, c in enumerate(counts) if c}


def inflated_payload(encoded: bytes) -> bytes:
    return zlib.decompress(base64.b64decode(encoded)[ext_header_size:])


VALUES = [
    [1],
    [1, 2, 3, 1000, 1000, 65_000, 3_600_000_000],
    *[[random.Random(seed).randrange(1, 10_000_000) for _ in range(5_000)] for seed in range(3)],
]


@pytest.mark.parametrize("values", VALUES, ids=lambda v: f"{len(v)}-values")
def test_the_seam_decodes_what_the_public_decoder_decodes(values: list[int]) -> None:
    histogram = recorded(values)
    encoded = histogram.encode()
    expected = public_counts(encoded)
    assert sum(expected.values()) == len(values)

    counts_len = histogram.counts_len
    into = (ctypes.c_uint64 * counts_len)()
    decode_payload_into(inflated_payload(encoded), into, counts_len)
    view = np.ctypeslib.as_array(into)
    assert {int(i): int(view[i]) for i in np.flatnonzero(view)} == expected

    counts = decode_histogram(encoded)
    assert dict(zip(counts.index.tolist(), counts.count.tolist(), strict=True)) == expected


def test_the_seam_writes_the_counts_over_what_the_array_held() -> None:
    encoded = recorded([5, 5, 700]).encode()
    counts_len = new_histogram().counts_len
    into = (ctypes.c_uint64 * counts_len)()
    payload = inflated_payload(encoded)
    decode_payload_into(payload, into, counts_len)
    decode_payload_into(payload, into, counts_len)
    view = np.ctypeslib.as_array(into)
    assert {int(i): int(view[i]) for i in np.flatnonzero(view)} == {
        i: c for i, c in public_counts(encoded).items()
    }


def test_the_seam_refuses_counts_past_the_array() -> None:
    encoded = recorded([3_600_000_000]).encode()
    into = (ctypes.c_uint64 * 16)()
    with pytest.raises((IndexError, ValueError)):
        decode_payload_into(inflated_payload(encoded), into, 16)
