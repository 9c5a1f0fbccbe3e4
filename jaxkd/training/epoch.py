"""One epoch of training steps: the epoch's batches (labelled, with
unlabelled ones spread among them), every compiled variant and shape warmed
up first, the steps dispatched back to back with their losses read (and
summed) every :data:`READ_EVERY` steps, and the epoch's row of the
history with its seconds by phase.

The phases are those of :mod:`jaxkd.training.phases` (docs/measuring.md):
compilation is excluded (:func:`warm_up`); a teacher queried per batch is
timed on its own; the forward alone is timed on ``timing.forward_batches``
batches and scaled to the epoch; the train steps' time is the epoch's wall
time less the separately timed teacher and forward passes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import numpy as np

from jaxkd.data.pipeline import EncodedCorpus
from jaxkd.progress import progress
from jaxkd.training import faults
from jaxkd.training.checkpoints import MID_EPOCH
from jaxkd.training.phases import EpochClock
from jaxkd.training.preemption import Preempted
from jaxkd.training.state import RunState, TrainingError, save_mid_epoch
from jaxkd.training.steps import copy_tree, dropout_key
from jaxkd.training.teacher import Targets


def _variant(lam: float) -> tuple[bool, bool]:
    """``(use_kd, use_nll)`` of the epoch's steps, from its lambda. An
    unlabelled batch (only in an epoch whose lambda is above 0) runs the same
    variant with ``gold`` False: the KD term alone (steps.objective)."""
    return lam > 0.0, lam < 1.0


def _flags(use_kd: bool, use_nll: bool, gold: bool) -> dict:
    """The keyword arguments of a step or forward call: the variant (static)
    and whether the batch has gold tags (traced: one program for both)."""
    return dict(use_kd=use_kd, use_nll=use_nll, gold=np.bool_(gold))


def epoch_steps(state: RunState, epoch: int, lam: float) -> list[tuple[Any, bool]]:
    """The epoch's batches in order, each with whether it has gold tags: the
    shuffled training batches with ``unlabeled_per_epoch`` unlabelled batches
    spread evenly among them (none in an epoch whose lambda is 0)."""
    config = state.config
    labeled = state.encoded.batches("train", config.train.batch_size, shuffle=True, seed=config.seed, epoch=epoch)
    n = state.unlabeled_per_epoch if lam > 0.0 else 0
    if not n:
        return [(b, True) for b in labeled]
    unlabeled = _unlabeled_batches(state.encoded, config.train.batch_size, config.seed, epoch * n, n)
    slots = [((i + 0.5) / len(labeled), 0, i) for i in range(len(labeled))] + [((j + 0.5) / n, 1, j) for j in range(n)]
    return [(labeled[i], True) if kind == 0 else (unlabeled[i], False) for _, kind, i in sorted(slots)]


# Shuffles of the unlabelled rows use epochs from here (apart from train's).
_UNLABELED_PASSES = 1_000_000


def _unlabeled_batches(encoded: EncodedCorpus, batch_size: int, seed: int, start: int, count: int) -> list:
    """Batches ``start .. start + count - 1`` of the endless stream of
    unlabelled batches: pass after pass over every unlabelled row, each pass
    shuffled by ``(seed, pass)``."""
    per_pass = len(encoded.batches("unlabeled", batch_size, shuffle=False))
    out: list = []
    while len(out) < count:
        number, offset = divmod(start + len(out), per_pass)
        stream = encoded.batches("unlabeled", batch_size, shuffle=True, seed=seed, epoch=_UNLABELED_PASSES + number)
        out += stream[offset : offset + count - len(out)]
    return out


def warm_step(fns, params, rest, opt_state, batch, targets, lam, *, use_kd: bool, use_nll: bool, forward: bool,
              gold: bool = True) -> None:
    """Compiles (and runs once, on copies of the state, which the step
    donates) the train step of ``batch``'s shape and variant, and with
    ``forward`` the forward loss too: nothing compiles later inside a timed epoch."""
    key, flags = dropout_key(0, 0), _flags(use_kd, use_nll, gold)
    if forward:
        jax.block_until_ready(fns.forward_loss(params, rest, batch, targets, lam, key, **flags))
    p_copy, o_copy = copy_tree((params, opt_state))
    jax.block_until_ready(fns.train_step(p_copy, rest, o_copy, batch, targets, lam, key, **flags))


def _warm_up(state: RunState, steps, probe, targets_of, lam, warmed: set) -> None:
    """Compiles every shape and variant of this epoch's steps outside the timed epoch."""
    probe_shapes = {steps[i][0].input_ids.shape + steps[i][0].word_mask.shape for i in probe}
    use_kd, use_nll = _variant(lam)
    for host_batch, gold in steps:
        key = (host_batch.input_ids.shape, host_batch.word_mask.shape, use_kd, use_nll)
        if key in warmed:
            continue
        tg = jax.block_until_ready(targets_of(host_batch, gold, use_kd))
        b = state.placement.rows(host_batch)
        forward = b.input_ids.shape + b.word_mask.shape in probe_shapes
        warm_step(state.fns, state.params, state.rest, state.opt_state, b, tg, lam, use_kd=use_kd, use_nll=use_nll,
                  forward=forward, gold=gold)
        warmed.add(key)


# Steps between two reads of the losses, which wait on the device: the host
# dispatches steps and prepares the next batches (row ids, transfer) without
# waiting on any, at most this many ahead; a NaN stops the epoch at the read
# after it, before anything is saved.
READ_EVERY = 16


def train_epoch(state: RunState, epoch: int, targets: Targets, warmed: set) -> dict:
    """One epoch of training steps (compiled first: ``warmed`` holds the
    shapes and variants compiled so far). Returns the epoch's row of the
    history, dev F1 still to come."""
    config, fns, rest = state.config, state.fns, state.rest
    lam = state.kd_lambda(epoch)
    steps = epoch_steps(state, epoch, lam)

    def targets_of(batch, gold, use_kd):
        return targets.of(batch, gold) if use_kd else {}

    start = state.start_step if epoch == state.start_epoch else 0  # steps a mid-epoch checkpoint holds
    probe = {i for i in _probe_batches(steps, config.timing.forward_batches) if i >= start}
    _warm_up(state, steps, probe, targets_of, lam, warmed)
    clock = EpochClock()
    first = dict(zip((True, False), state.start_sums)) if start else {True: 0.0, False: 0.0}
    bar = progress(len(steps), f"epoch {epoch + 1}/{config.train.epochs}", config.log.progress, unit="batch")
    read = _LossReads(state, epoch, bar, start, first)
    wall0 = time.perf_counter()
    use_kd, use_nll = _variant(lam)
    for i in range(start, len(steps)):
        host_batch, gold = steps[i]
        flags = _flags(use_kd, use_nll, gold)
        step_key = dropout_key(config.seed, epoch * state.steps_per_epoch + i)
        if use_kd and not targets.cached:  # the teacher per batch: timed on its own
            read(i)
            t0 = time.perf_counter()
            tg = jax.block_until_ready(targets_of(host_batch, gold, use_kd))
            clock.teacher += time.perf_counter() - t0
        else:
            tg = targets_of(host_batch, gold, use_kd)
        batch = state.placement.rows(host_batch)
        if i in probe:  # the forward alone, then the step, each timed on an idle device
            read(i)
            t0 = time.perf_counter()
            jax.block_until_ready(fns.forward_loss(state.params, rest, batch, tg, lam, step_key, **flags))
            clock.forward += time.perf_counter() - t0
            t0 = time.perf_counter()
        faults.point("step")
        state.params, state.opt_state, loss = fns.train_step(state.params, rest, state.opt_state, batch, tg, lam,
                                                             step_key, **flags)
        read.add(gold, loss)
        if i in probe:
            read(i + 1)
            clock.probed_steps += time.perf_counter() - t0
        elif i + 1 - read.steps >= READ_EVERY:
            read(i + 1)
        if i + 1 < len(steps):
            _midway(state, epoch, i + 1, len(steps), read)
    read(len(steps))
    clock.wall = time.perf_counter() - wall0
    read.bar.close()
    return _epoch_row(state, epoch, lam, steps, len(steps) - start, len(probe), clock, read.totals)


def _midway(state: RunState, epoch: int, done: int, total: int, read: _LossReads) -> None:
    """After step ``done`` of ``total`` (not the last): a mid-epoch checkpoint
    every ``checkpoint.every_steps`` steps, and one before stopping on a
    signal (:mod:`jaxkd.training.preemption`)."""
    every = state.config.checkpoint.every_steps
    due = bool(every) and done % every == 0
    stop = state.stops.agreed(at_read=due or read.steps == done)  # where every process reads
    if not (stop or due):
        return
    read(done)
    save_mid_epoch(state, epoch, done, read.totals)
    if stop:
        read.bar.close()
        raise Preempted(
            f"stopped on {state.stops.name} in epoch {epoch + 1}, after its step {done} of {total}, and saved there "
            f"({state.workdir / MID_EPOCH}); rerun the same command to continue"
        )


class _LossReads:
    """An epoch's summed losses by gold (labelled, unlabelled batches), and
    the host's reads of them. Each step's loss stays on the device until a
    read, which waits for the steps dispatched so far, adds their losses on
    the host in float32 in step order (the sums a device would give, without
    an operation per step: in a run of several processes each one waited for
    all of them), checks the sums are finite and moves the progress bar."""

    def __init__(self, state: RunState, epoch: int, bar, steps: int, totals: dict):
        self.state, self.epoch, self.bar = state, epoch, bar
        self.steps = steps  # steps covered by the last read
        self.totals = totals  # their summed losses by gold, as floats
        self._sums = {gold: np.float32(value) for gold, value in totals.items()}
        self._pending: list = []  # (gold, loss on the device) of the steps since
        if steps:
            bar.update(steps)

    def add(self, gold: bool, loss) -> None:
        self._pending.append((gold, loss))

    def __call__(self, steps: int) -> None:
        """Reads the losses once the first ``steps`` steps are dispatched."""
        if steps <= self.steps:
            return
        values = jax.device_get([loss for _, loss in self._pending])
        for (gold, _), value in zip(self._pending, values):
            self._sums[gold] = np.float32(self._sums[gold] + np.float32(value))
        self._pending = []
        totals = {gold: float(value) for gold, value in self._sums.items()}
        for value in totals.values():
            if not math.isfinite(value):
                self.bar.close()
                _stop_on_nan(self.state, value, self.epoch, self.steps, steps)
        self.bar.update(steps - self.steps)
        self.bar.set_postfix_str(f"loss {sum(totals.values()) / steps:.4f}")
        self.steps, self.totals = steps, totals


def _epoch_row(state: RunState, epoch: int, lam: float, steps, timed: int, probed: int, clock: EpochClock,
               loss_sums: dict) -> dict:
    """The epoch's row of the history: mean losses, and seconds by phase of
    the ``timed`` steps this process took (all but a mid-epoch checkpoint's)."""
    labeled = sum(gold for _, gold in steps)
    row = {
        "epoch": epoch + 1,
        "loss": loss_sums[True] / labeled,
        "lambda": lam,
        "dev_score": None,  # set by _end_epoch
        **clock.phases(probed, timed),
        "wall_s": clock.wall,
        "forward_timed_batches": probed,
    }
    if state.unlabeled_per_epoch:  # the KD term of the unlabelled batches
        row["unlabeled_batches"] = len(steps) - labeled
        row["unlabeled_loss"] = loss_sums[False] / row["unlabeled_batches"] if row["unlabeled_batches"] else None
    return row


def _stop_on_nan(state: RunState, loss: float, epoch: int, first: int, end: int) -> None:
    """Stops on a loss that is not finite, somewhere in steps ``first`` to ``end - 1``."""
    kept = (
        f"The last good checkpoint is kept in {state.checkpoints.directory} (latest: after epoch {len(state.history)}; "
        f"best: epoch {state.best['epoch'] + 1}); rerunning in this workdir resumes from it."
        if state.history
        else "No checkpoint was saved (no epoch finished)."
    )
    raise TrainingError(
        f"the loss became {loss} in epoch {epoch + 1}, batches {first + 1}-{end}; stopping. {kept} "
        "Try lower learning rates (--config.train.encoder_lr=... --config.train.head_lr=...)."
    )


def _probe_batches(steps, count: int) -> set[int]:
    """Indices of the labelled steps whose forward pass is timed on its own:
    all when ``count < 0``, else the first ``count`` of the most common shape
    (one extra compilation instead of one per shape)."""
    labeled = [i for i, (_, gold) in enumerate(steps) if gold]
    if count < 0:
        return set(labeled)
    if count == 0:
        return set()
    shapes = {i: steps[i][0].input_ids.shape + steps[i][0].word_mask.shape for i in labeled}
    values = list(shapes.values())
    common = max(set(values), key=values.count)
    return set([i for i in labeled if shapes[i] == common][:count])

