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
import shutil
from pathlib import Path

import jax

from jaxkd.training.orbax_reports import silence

FULL = ("RESOURCE_EXHAUSTED", "No space left")  # how orbax and tensorstore say the disk is full
# A writer thread calling into the loop of the failed save, or into an
# executor that the ending process has shut down.
AFTER = ("Event loop is closed", "cannot schedule new futures after")


@contextlib.contextmanager
def reported_once(directory: Path, trees, *, mid_epoch: bool = False):
    """The body (a checkpoint save into ``directory`` of the arrays of
    ``trees``; steps numbered by run step with ``mid_epoch``, else by epoch)
    with orbax's full-disk reports silenced; a full disk raises the one
    OSError described in the module docstring."""
    restore = silence(*FULL, *AFTER)
    try:
        yield
    except Exception as err:  # noqa: BLE001 - orbax and tensorstore report a full disk in their own ways
        if getattr(err, "errno", None) == errno.ENOSPC or any(phrase in str(err) for phrase in FULL):
            raise _error(directory, trees, mid_epoch) from None  # still silenced: the writer threads report on
        restore()
        raise
    restore()


def _error(directory: Path, trees, mid_epoch: bool) -> OSError:
    arrays = sum(leaf.nbytes for leaf in jax.tree.leaves(trees) if hasattr(leaf, "nbytes"))
    saved = [int(p.name) for p in directory.iterdir() if p.name.isdigit()]
    step_bytes = max([_bytes(directory / str(s)) for s in saved] + [arrays])
    free = shutil.disk_usage(directory).free
    last = (f"step {max(saved)}" if mid_epoch else f"epoch {max(saved) + 1}") if saved else ""
    kept = f"{last}'s checkpoint is kept" if saved else "no checkpoint was saved yet"
    return OSError(
        errno.ENOSPC,
        f"No space left on device: a checkpoint needs about {_mib(step_bytes)} and {_mib(free)} is free "
        f"({kept}; free space, then rerun the same command to resume)",
        str(directory),
    )


def _bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
