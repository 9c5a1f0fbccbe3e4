"""The one fault-injection hook of the tests: a process kills itself (SIGKILL)
at a chosen point, as a crash would, or sends itself a SIGTERM, as a
cluster's preemption does.

``JAXKD_KILL_AT=<counter>:<n>`` kills the process at the n-th point of that
counter (counted from 1 over the process's life); ``<counter>:<n>:TERM``
(or ``:INT``, Ctrl-C's) sends that signal there instead:

* ``step``: as the training loop dispatches each train step;
* ``save``: at each of the four points of a checkpoint save (before it; inside
  orbax's write; after orbax's commit; after the digests).

``JAXKD_FAULT_LOG=<file>`` appends a line ``<n> <counter> <name>`` at every
point passed, so a test can list the points before it chooses one. Without
either variable a point costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

COUNTERS = ("step", "save")
_passed: dict[str, int] = {}


def reset() -> None:
    """Counts from 1 again (a test that reruns in its own process)."""
    _passed.clear()


def point(counter: str, name: str = "") -> None:
    """A point of ``counter`` (one of :data:`COUNTERS`) called ``name``."""
    target, log = os.environ.get("JAXKD_KILL_AT"), os.environ.get("JAXKD_FAULT_LOG")
    if not (target or log):
        return
    _passed[counter] = count = _passed.get(counter, 0) + 1
    if log:
        with open(log, "a") as f:
            f.write(f"{count} {counter} {name}\n")
    if target:
        kind, _, rest = target.partition(":")
        n, _, how = rest.partition(":")
        if kind not in COUNTERS or not n.isdigit() or how not in ("", "TERM", "INT"):
            raise ValueError(
                f"JAXKD_KILL_AT must be <counter>:<n>[:TERM|:INT] with counter one of "
                f"{', '.join(COUNTERS)}; got {target!r}"
            )
        if kind == counter and count == int(n):
            os.kill(os.getpid(), getattr(signal, f"SIG{how or 'KILL'}"))
