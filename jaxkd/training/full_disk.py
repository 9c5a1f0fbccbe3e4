"""A disk that fills inside a checkpoint save, reported once.

Orbax writes a checkpoint's arrays from its own threads; on a full disk each
thread logs its ``RESOURCE_EXHAUSTED`` error with a traceback, and calls into
event loops that the failed save has closed, long after the save has
raised. :func:`reported_once` silences those reports for the save (and, once
it failed, for the rest of the process, which then ends) and raises one
``OSError`` (ENOSPC) that names the checkpoint directory, the space a
checkpoint needs and the space that is free.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import sys
from pathlib import Path

import jax

LOGGERS = ("absl", "asyncio")  # where orbax's writer threads log their failures


@contextlib.contextmanager
def reported_once(directory: Path, trees):
    """The body (a checkpoint save into ``directory`` of the arrays of
    ``trees``) with orbax's full-disk reports silenced; a full disk raises
    the one OSError described in the module docstring."""
    quiet, unraisable = _Filter(), sys.unraisablehook
    for name in LOGGERS:
        logging.getLogger(name).addFilter(quiet)
    sys.unraisablehook = _ignore_closed_loops(unraisable)
    try:
        yield
    except Exception as err:  # noqa: BLE001 - orbax and tensorstore report a full disk in their own ways
        if getattr(err, "errno", None) == errno.ENOSPC or _mentions(str(err)):
            raise _error(directory, trees) from None  # the filters stay: the writer threads report on
        _restore(quiet, unraisable)
        raise
    _restore(quiet, unraisable)


def _restore(quiet, unraisable) -> None:
    for name in LOGGERS:
        logging.getLogger(name).removeFilter(quiet)
    sys.unraisablehook = unraisable


def _error(directory: Path, trees) -> OSError:
    arrays = sum(leaf.nbytes for leaf in jax.tree.leaves(trees) if hasattr(leaf, "nbytes"))
    saved = [int(p.name) for p in directory.iterdir() if p.name.isdigit()]
    step_bytes = max([_bytes(directory / str(s)) for s in saved] + [arrays])
    free = shutil.disk_usage(directory).free
    kept = f"epoch {max(saved) + 1}'s checkpoint is kept" if saved else "no checkpoint was saved yet"
    return OSError(
        errno.ENOSPC,
        f"No space left on device: a checkpoint needs about {_mib(step_bytes)} and {_mib(free)} is free "
        f"({kept}; free space, then rerun the same command to resume)",
        str(directory),
    )


def _mentions(text: str) -> bool:
    return "RESOURCE_EXHAUSTED" in text or "No space left" in text


class _Filter(logging.Filter):
    """Drops log records of a full disk (the save reports it once, as an OSError)."""

    def filter(self, record):
        return not _mentions(record.getMessage())


def _ignore_closed_loops(previous):
    """An unraisable-exception hook that drops orbax's calls into an event loop
    its failed save closed, and passes anything else to ``previous``."""

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)):
            previous(unraisable)

    return hook


def _bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
