"""The one error a data file that cannot be used raises."""

from __future__ import annotations


class DataError(ValueError):
    """A data file that cannot be used at all (missing, empty, not a CSV, wrong columns, over a limit)."""


MESSAGE_PATH_CHARS = 200  # a path or argument quoted in an error line is cut to this many characters


def clipped(text: object, limit: int = MESSAGE_PATH_CHARS) -> str:
    """``text`` as a string of at most ``limit`` characters: a hostile 5,000-character path keeps
    its start and its end (usually the file name) around an ellipsis."""
    text = str(text)
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return text[:keep] + "…" + text[len(text) - (limit - 1 - keep):]
