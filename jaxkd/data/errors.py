"""The one exception type of :mod:`jaxkd.data`."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data: a malformed file, an unknown tag, an
    unreachable dataset. The message names the file (or split) and, where it
    applies, the 1-based line number and the problem."""


def where(path: object, line: int | None = None) -> str:
    """``"path:line"`` (or ``"path"``) for the start of an error message."""
    return f"{path}:{line}" if line is not None else f"{path}"
