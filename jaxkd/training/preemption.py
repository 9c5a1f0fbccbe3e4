"""SIGTERM (and Ctrl-C's SIGINT) as a request to stop: batch schedulers
(Slurm, Kubernetes, cloud preemptible machines) send SIGTERM some time
before SIGKILL. While a run holds :func:`stop_requests`, either signal sets
a flag instead of ending the process; the training loop reads it after each
step, saves a mid-epoch checkpoint and raises :class:`Preempted`, which the
command line turns into exit code :data:`EXIT_CODE`. The same signal again
ends the process at once.

With several processes the signal may reach them at different steps, and
they must stop at the same one (each saves its shards of one checkpoint):
they agree at the loss reads, which every process makes at the same steps,
by gathering every process's flag (:meth:`StopRequests.agreed`).
"""

from __future__ import annotations

import contextlib
import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

EXIT_CODE = 75  # sysexits' EX_TEMPFAIL: a temporary failure, rerun the same command


class Preempted(Exception):
    """The run stopped on SIGTERM after saving where it was; rerunning the
    same command continues from there."""


class StopRequests:
    """Whether a signal asked this run to stop (see the module docstring)."""

    def __init__(self):
        self.requested = False
        self.name = "a signal to another process"  # this process's signal, once one came

    def agreed(self, *, at_read: bool) -> bool:
        """Whether to stop now, after a step. With one process: whenever a
        signal came. With several: only ``at_read`` (a step after which
        every process reads its losses), when any process got one."""
        if jax.process_count() == 1:
            return self.requested
        if not at_read:
            return False
        flags = multihost_utils.process_allgather(np.asarray(self.requested, np.int32))
        return bool(np.any(flags))


AT_ONCE = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}  # a signal's second coming


@contextlib.contextmanager
def stop_requests(note=print):
    """The body with SIGTERM and SIGINT setting :attr:`StopRequests.requested`
    (in the main thread; elsewhere signals cannot be caught, and they act as
    before); ``note`` says what a signal will do."""
    requests = StopRequests()
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return

    def on_signal(signum, frame):
        requests.requested, requests.name = True, signal.Signals(signum).name
        signal.signal(signum, AT_ONCE[signum])
        note(f"[jaxkd] {requests.name}: finishing the current step, then saving where the run is and exiting "
             f"(code {EXIT_CODE}); send it again to stop at once")

    previous = {signum: signal.signal(signum, on_signal) for signum in AT_ONCE}
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
