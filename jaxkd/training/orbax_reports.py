"""Orbax's repeated reports of a failure it has already raised, dropped.

When a checkpoint save or restore fails, orbax raises once in the caller,
and then reports the same failure again from the places the failure left
behind: its writer threads log it with a traceback, abandoned read tasks log
"Task exception was never retrieved" when they are collected, and abandoned
coroutines reach Python's unraisable-exception hook, which prints a
traceback for each; a read still running when the restore fails ends
later, and asyncio logs "Future exception was never retrieved" when it is
collected. jaxkd reports each failure once, as an error of its own
that names the checkpoint; :func:`silence` drops the repeats.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from pathlib import Path
from typing import Callable

LOGGERS = ("absl", "asyncio")  # where orbax's threads and tasks log their failures
READ_FAILED = "Encountered error while reading"  # orbax's words for a failed array read
# A failed restore's reads have ended once QUIET collections in a row, SETTLE_S
# apart, free nothing (at most SETTLE_TRIES of them: 2 s).
SETTLE_TRIES, SETTLE_S, QUIET = 40, 0.05, 6


def silence(*phrases: str) -> Callable[[], None]:
    """Drops the log records (of :data:`LOGGERS`) and the unraisable
    exceptions whose text contains one of ``phrases``, until the returned
    function is called."""

    def repeated(text: str) -> bool:
        return any(phrase in text for phrase in phrases)

    quiet, previous = _Filter(repeated), sys.unraisablehook

    def hook(unraisable):
        if not repeated(str(unraisable.exc_value)):
            previous(unraisable)

    for name in LOGGERS:
        logging.getLogger(name).addFilter(quiet)
    sys.unraisablehook = hook

    def restore() -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeFilter(quiet)
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous

    return restore


def collect_abandoned_reads(directory: Path) -> None:
    """Collects the read tasks and coroutines of a restore of ``directory``
    that failed, without their reports (the restore raised its own error).
    A read still running then (tensorstore's own threads) fails later, and
    asyncio reports it when it is collected ("Future exception was never
    retrieved"): such reports naming ``directory`` are dropped from then on."""
    _LATE.phrases.add(str(directory))
    logging.getLogger("asyncio").addFilter(_LATE)  # once: a logger keeps one copy of a filter
    # Its coroutines, finalised once their event loop is closed, say only that.
    restore = silence(READ_FAILED, str(directory), "Event loop is closed")
    try:
        found = []  # the objects each collection freed
        for _ in range(SETTLE_TRIES):
            found.append(gc.collect())
            if found[-QUIET:] == [0] * QUIET:
                break
            time.sleep(SETTLE_S)
    finally:
        restore()


class _Filter(logging.Filter):
    def __init__(self, repeated: Callable[[str], bool]):
        super().__init__()
        self.repeated = repeated

    def filter(self, record):
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{record.exc_info[1]}"
        return not self.repeated(text)


class _LateReads(_Filter):
    """Drops asyncio's reports of failures that name a directory whose
    failed restore was already reported (:func:`collect_abandoned_reads`)."""

    def __init__(self):
        self.phrases: set[str] = set()
        super().__init__(lambda text: any(phrase in text for phrase in self.phrases))


_LATE = _LateReads()
