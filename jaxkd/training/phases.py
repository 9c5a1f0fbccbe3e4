"""Seconds of a training epoch by phase (docs/measuring.md): the
one definition that the training loop's history (``results.json``), the demo's
Table 2 and ``benchmarks/epoch_timing.py`` all report.

* ``teacher_forward_s``: what the method needs from the teacher for the
  epoch's batches (0 when the targets come from the cache);
* ``student_forward_s``: the loss value alone, on its own compiled function;
* ``student_backward_s``: the train steps (loss, gradient, update) less the
  forward;
* ``total_s``: teacher forward plus the train steps.

Only compiled calls are timed, after every shape has been compiled, and a
clock stops on ``block_until_ready``. The loop times the forward on a few
probe batches (``timing.forward_batches``) and scales it to the epoch by the
probes' own step time (:meth:`EpochClock.phases`); the benchmark times it on
every batch (:func:`time_calls`).
"""

from __future__ import annotations

import dataclasses
import time

import jax

PHASES = ("teacher_forward_s", "student_forward_s", "student_backward_s", "total_s")


def phase_row(teacher_s: float, forward_s: float | None, steps_s: float) -> dict:
    """The four phases from the seconds of the teacher, of the forward alone
    (None: not timed) and of the train steps."""
    forward = None if forward_s is None else min(forward_s, steps_s)
    return {
        "teacher_forward_s": teacher_s,
        "student_forward_s": forward,
        "student_backward_s": None if forward is None else steps_s - forward,
        "total_s": teacher_s + steps_s,
    }


def time_calls(calls) -> tuple[float, list]:
    """Seconds of a phase over an epoch: the calls issued back to back, one
    block at the end; and their results."""
    t0 = time.perf_counter()
    outs = [c() for c in calls]
    jax.block_until_ready(outs)
    return time.perf_counter() - t0, outs


@dataclasses.dataclass
class EpochClock:
    """Seconds of an epoch of the training loop: its wall time and the passes
    timed on their own."""

    teacher: float = 0.0  # teacher targets computed per batch
    forward: float = 0.0  # the probed batches' forward alone
    probed_steps: float = 0.0  # the probed batches' train steps
    wall: float = 0.0

    def phases(self, probed: int, steps: int) -> dict:
        """:func:`phase_row` of an epoch of ``steps`` steps, ``probed`` of them
        with their forward timed alone."""
        # The steps' share: the wall time less the separately timed teacher
        # and forward passes (host preparation overlaps the steps).
        t_step = max(self.wall - self.teacher - self.forward, 0.0)
        if not probed:
            forward = None
        elif probed == steps:
            forward = self.forward
        else:  # scaled from the probed batches to the epoch
            forward = self.forward / max(self.probed_steps, 1e-12) * t_step
        return phase_row(self.teacher, forward, t_step)
