"""Progress of long work: a bar on a terminal, a log line every 30 s elsewhere.

    bar = progress(len(batches), "epoch 1/3", mode="auto", unit="batch")
    for batch in batches:
        ...
        bar.update()
    bar.close()

``mode``: ``"auto"`` (a tqdm bar when standard error is a terminal, else log
lines), ``"always"`` (a bar even off a terminal), ``"lines"`` (log lines even
on a terminal) or ``"never"``.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

MODES = ("auto", "always", "lines", "never")
LINE_EVERY_S = 30.0


def progress(total: int, desc: str, mode: str = "auto", *, unit: str = "it"):
    """A progress reporter with ``update(n=1)``, ``set_postfix_str(text)`` and ``close()``."""
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {MODES}; got {mode!r}")
    if mode == "always" or (mode == "auto" and sys.stderr.isatty()):
        return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
    return LogLines(total, desc, unit, silent=mode == "never")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class LogLines:
    """``[jaxkd] desc: n/total units (rate/s, elapsed, about T left) postfix``,
    at most once per ``every_s`` seconds, and once at the end if any was printed."""

    def __init__(self, total: int, desc: str, unit: str = "it", *, every_s: float = LINE_EVERY_S, silent: bool = False):
        self.total, self.desc, self.unit = total, desc, unit
        self.every_s, self.silent = every_s, silent
        self.n, self.postfix, self.printed = 0, "", False
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._print(now)

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        self.postfix = text

    def _print(self, now: float) -> None:
        if self.silent:
            return
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        left = f", about {_duration((self.total - self.n) / rate)} left" if rate > 0 and self.n < self.total else ""
        extra = f"  {self.postfix}" if self.postfix else ""
        print(
            f"[jaxkd] {self.desc}: {self.n}/{self.total} {self.unit} ({rate:.1f}/s, {_duration(elapsed)}{left}){extra}",
            file=sys.stderr,
            flush=True,
        )
        self.printed = True

    def close(self) -> None:
        if self.printed:
            self._print(time.monotonic())
