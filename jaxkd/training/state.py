"""The state of a training run as it goes, its errors, and what carries over
from an interrupted run in the same workdir (its configuration, its latest
checkpoint and loop state)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from jaxkd import config as config_keys
from jaxkd import schedules
from jaxkd.data.pipeline import EncodedCorpus
from jaxkd.evaluate import METRIC_NAMES
from jaxkd.training.checkpoints import MID_EPOCH, Checkpoints, write_json
from jaxkd.training.mesh import Placement, is_main_process
from jaxkd.training.preemption import StopRequests
from jaxkd.training.steps import DistillSpec, Split


class TrainingError(RuntimeError):
    """A run cannot go on (bad configuration, NaN loss, incompatible teacher)."""


def log(msg: str) -> None:
    """A line on standard error (from process 0 alone, with several)."""
    if is_main_process():
        print(msg, file=sys.stderr, flush=True)


@dataclasses.dataclass
class RunState:
    """What the steps of a run share; ``params``, ``opt_state``, ``history`` and
    ``best`` change as it trains."""

    config: Any
    workdir: Path
    spec: DistillSpec
    corpus: Any
    encoded: EncodedCorpus
    parts: Split
    fns: Any  # steps.StudentFns
    placement: Placement  # one device, or a mesh (data parallel)
    checkpoints: Checkpoints  # <workdir>/checkpoints, writable
    steps_per_epoch: int  # labelled + unlabelled batches of a distilling epoch (dropout keys)
    unlabeled_per_epoch: int  # unlabelled batches in an epoch whose lambda is above 0
    params: Any
    opt_state: Any
    history: list = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: {"epoch": -1, "dev_score": -1.0})
    best_dev: dict | None = None  # dev's scores of ``best``, where this process scored that epoch (not saved)
    start_epoch: int = 0
    start_step: int = 0  # steps of start_epoch done before (a mid-epoch checkpoint)
    start_sums: tuple = (0.0, 0.0)  # their summed losses (labelled, unlabelled), float32 values
    stops: StopRequests = dataclasses.field(default_factory=StopRequests)  # SIGTERM, Ctrl-C (preemption.py)

    @property
    def metric(self) -> str:
        """What ranks the epochs: ``"f1"`` (entities) or ``"accuracy"`` (token tags)."""
        return "f1" if self.corpus.labels.chunks else "accuracy"

    @property
    def rest(self):
        return self.parts.rest

    @property
    def distilling(self) -> bool:
        return self.config.mode == "student" and self.spec.method != "vanilla"

    def kd_lambda(self, epoch: int) -> float:
        """The weight of the KD term in ``epoch`` (0 when not distilling)."""
        c = self.config
        if not self.distilling:
            return 0.0
        return schedules.kd_weight(c.distill.lambda_schedule, epoch, c.train.epochs, c.distill.lambda_value)


def pin_config(workdir: Path, config) -> None:
    """Writes the run's ``config.json``. Only a run that saved a checkpoint
    pins its configuration: another one is refused unless it changes only the
    resumable keys (:data:`jaxkd.config.RESUMABLE_KEYS`; noted)."""
    saved = workdir / "config.json"
    new = json.loads(config.to_json())
    if saved.is_file():
        try:
            old = json.loads(saved.read_text())
        except ValueError:
            old = {}
        diff = config_keys.changed_keys(old, new)
        pinned = any(Checkpoints(workdir, mid_epoch=mid).step("latest") is not None for mid in (False, True))
        resumable = config_keys.RESUMABLE_KEYS
        if diff and pinned and not set(diff) <= resumable:
            raise TrainingError(
                f"{workdir} holds a run with a different configuration (differs in: {', '.join(diff)}); "
                "use a new --workdir, or the same configuration to resume "
                f"(a resumed run may change only {', '.join(sorted(resumable))})"
            )
        if diff:
            what = "resuming with" if pinned else "it saved no checkpoint; starting again with"
            log(f"[jaxkd] note: {workdir}: {what} a changed configuration ({', '.join(diff)})")
    if is_main_process():
        write_json(saved, new)


def restore_latest(state: RunState, allowed: bool) -> None:
    """Restores the latest checkpoint and the loop state saved with it, if any
    (``allowed=False``: refuses a workdir that holds one): the mid-epoch
    checkpoint of the epoch after the latest one's, when there is one."""
    saved = state.checkpoints.loop_state()  # committed with the weights of `latest`
    mid_epoch = _mid_epoch(state)
    mid = mid_epoch.loop_state() if mid_epoch is not None else None
    if mid is not None and mid["epoch"] != (saved["epoch"] + 1 if saved else 0):
        mid = None  # of an epoch whose own checkpoint was saved (a kill before it was removed)
    if saved is None and mid is None:
        return
    if not allowed:
        raise TrainingError(
            f"{state.workdir} already holds a run; rerun with --resume to continue it, or use a new --workdir"
        )
    # Restored into the templates' shardings (this run's mesh, whatever the saving
    # run's); replicated again for the optimizer's scalars, which optax creates
    # on one device and orbax then commits there.
    source = mid_epoch if mid is not None else state.checkpoints
    restored = source.restore("latest", params=state.params, opt_state=state.opt_state)
    state.params, state.opt_state = state.placement.replicate((restored["params"], restored["opt_state"]))
    loop = mid if mid is not None else saved
    best = dict(loop["best"])
    if "dev_f1" in best:  # a run of jaxkd before 2026-12
        best["dev_score"] = best.pop("dev_f1")
    state.history, state.best = loop["history"], best
    if mid is None:
        state.start_epoch = saved["epoch"] + 1
        where = f"after epoch {state.start_epoch}"
    else:
        state.start_epoch, state.start_step, state.start_sums = mid["epoch"], mid["step"], tuple(mid["loss_sums"])
        where = f"in epoch {state.start_epoch + 1}, after its step {state.start_step}"
    log(f"[jaxkd] resuming {state.workdir} {where} "
        f"(best dev {METRIC_NAMES[state.metric]} so far {state.best['dev_score']:.2f})")


def save_mid_epoch(state: RunState, epoch: int, done: int, loss_sums: dict) -> None:
    """Saves where the run is inside ``epoch``: its first ``done`` steps taken,
    their losses summed (``loss_sums``: by gold, the float32 sums read)."""
    loop_state = {"epoch": epoch, "step": done, "loss_sums": [loss_sums[True], loss_sums[False]],
                  "history": state.history, "best": state.best}
    checkpoints = _mid_epoch(state) or Checkpoints(state.workdir, writable=True, mid_epoch=True)
    checkpoints.save(epoch * state.steps_per_epoch + done, params=state.params, opt_state=state.opt_state,
                     loop_state=loop_state, dev_score=None)


def drop_mid_epoch(state: RunState) -> None:
    """Deletes the mid-epoch checkpoints (once an epoch's own is saved)."""
    checkpoints = _mid_epoch(state)
    if checkpoints is not None:
        checkpoints.remove()


def _mid_epoch(state: RunState) -> Checkpoints | None:
    """The run's mid-epoch checkpoints, opened for writing when there are any
    (which discards a save cut short)."""
    if (state.workdir / MID_EPOCH).is_dir():
        return Checkpoints(state.workdir, writable=True, mid_epoch=True)
    return None
