"""Waits as a fixed histogram, so percentiles of any span merge from daily rollups.

A wait (submitted to started) falls in bucket 0 below `FLOOR` seconds; otherwise in
bucket `1 + floor(8 * log2(wait / FLOOR))`, a bucket 2^(1/8) wide (about 9 %), up to
bucket `SIZE - 1`, which also holds every longer wait (over a year). A percentile is
the nearest-rank one of the merged histogram, reported as its bucket's geometric
middle: within 2^(1/16) - 1 (4.4 %) of the exact nearest-rank wait, or below `FLOOR`
for bucket 0 (reported as 0). docs/history.md says the same.

A histogram is stored densely from its lowest to its highest non-empty bucket, as
little-endian 32-bit words: the lowest bucket, then the counts from it (empty bytes
when there are no waits). A report reads it with `numpy.frombuffer`, without a parse,
and adds it into a numpy vector in one step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

FLOOR = 0.01  # seconds: waits below this are bucket 0
STEPS = 8  # buckets per doubling
SIZE = 256  # buckets; the last holds every wait from about 1.1 years on
RELATIVE_ERROR = 2 ** (1 / (2 * STEPS)) - 1

Histogram = bytes  # <u4 words: the first bucket, then the counts from it; b"" if none
WORD = np.dtype("<u4")
Counts = np.ndarray  # a merged histogram: SIZE counts


def bucket(seconds: float) -> int:
    if seconds < FLOOR:
        return 0
    return min(SIZE - 1, 1 + math.floor(STEPS * math.log2(seconds / FLOOR)))


def middle(index: int) -> float:
    """The value a bucket stands for: its geometric middle (0 for bucket 0)."""
    if index == 0:
        return 0.0
    return FLOOR * 2 ** ((index - 1 + 0.5) / STEPS)


def histogram(waits: Iterable[float]) -> Histogram:
    keys = [bucket(seconds) for seconds in waits]
    if not keys:
        return b""
    low, high = min(keys), max(keys)
    words = np.zeros(high - low + 2, dtype=WORD)
    words[0] = low
    np.add.at(words, np.asarray(keys, dtype=np.int64) - low + 1, 1)
    return words.tobytes()


def unpack(histogram: Histogram) -> dict[int, int]:
    """A stored histogram as {bucket: jobs} (its non-empty buckets), for reading."""
    if not histogram:
        return {}
    words = np.frombuffer(histogram, dtype=WORD)
    low = int(words[0])
    return {low + i: int(n) for i, n in enumerate(words[1:]) if n}


def new() -> Counts:
    return np.zeros(SIZE, dtype=np.int64)


def merge(into: Counts, histogram: Histogram | memoryview) -> None:
    """Add a stored histogram into merged counts."""
    if histogram:
        words = np.frombuffer(histogram, dtype=WORD)
        low = int(words[0])
        into[low : low + len(words) - 1] += words[1:]


def percentile(counts: Counts, q: float) -> float | None:
    """The nearest-rank `q`-percentile (0 < q <= 100) of merged counts; None if empty."""
    return percentiles(counts, (q,))[0]


def percentiles(counts: Counts, qs: tuple[float, ...]) -> list[float | None]:
    """Several nearest-rank percentiles of merged counts."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    if total == 0:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q / 100 * total)) for q in qs]
    return [middle(int(np.searchsorted(cumulative, rank))) for rank in ranks]
