"""Rows in fixed-size chunks: the one loop behind every chunked forward pass and batch step."""

from __future__ import annotations

from collections.abc import Iterator


def row_chunks(n_rows: int, size: int) -> Iterator[slice]:
    """``slice(0, size)``, ``slice(size, 2·size)``, … covering rows 0 … ``n_rows`` − 1; the
    last may be shorter, none when ``n_rows`` is 0. ``stop`` is the chunk's true end."""
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))
