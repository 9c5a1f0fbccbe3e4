"""One training run: :func:`run` checks the configuration, sets the run up
(data, tokenizer, the teacher, the student's files and compiled functions),
resumes what the workdir holds, then trains epoch after epoch, scoring dev
and saving checkpoints after each, and writes ``<workdir>/results.json``.

Each step of it lives in a module of its own: the configuration's keys and
checks in :mod:`jaxkd.config`; inputs in :mod:`~jaxkd.training.inputs`; the
teacher in :mod:`~jaxkd.training.teacher`; one epoch in
:mod:`~jaxkd.training.epoch`; run state and resuming in
:mod:`~jaxkd.training.state`; scores and results in
:mod:`~jaxkd.training.evaluation`; the run on disk in
:mod:`~jaxkd.training.run_dir` and :mod:`~jaxkd.training.checkpoints`.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections

from jaxkd import config as config_keys
from jaxkd.data.pipeline import encode_corpus
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.evaluate import METRIC_NAMES
from jaxkd.models.heads import build_tagger, unsupported
from jaxkd.training import preemption, run_dir, workdir_lock
from jaxkd.training.checkpoints import Checkpoints, write_json
from jaxkd.training.compiles import CompileLog, use_persistent_cache
from jaxkd.training.epoch import train_epoch
from jaxkd.training.evaluation import final_results, score
from jaxkd.training.inputs import encoder_dir, load_data, load_unlabeled
from jaxkd.training.mesh import Placement, is_main_process
from jaxkd.training.state import RunState, TrainingError, drop_mid_epoch, log, pin_config, restore_latest
from jaxkd.training.steps import DistillSpec, OptimizerSettings, split, student_fns
from jaxkd.training.teacher import open_teacher, teacher_targets, with_targets_in_step

__all__ = ["Preempted", "TrainingError", "run"]

Preempted = preemption.Preempted


def run(config: ml_collections.ConfigDict, workdir: str | Path, *, resume: bool = True,
        stop_after_epochs: int | None = None) -> dict:
    """Trains (or resumes) a run and returns the content of ``results.json``.

    ``resume=False`` refuses a workdir that already holds a checkpoint.
    ``stop_after_epochs`` stops early as an interruption would (for tests).
    A SIGTERM or Ctrl-C stops the run after its current step, saved there:
    raises :class:`Preempted` (:mod:`jaxkd.training.preemption`).
    """
    with CompileLog() as compiles:
        t_start = time.perf_counter()
        try:
            config_keys.validate(config, warn=log)
        except config_keys.ConfigError as err:
            raise TrainingError(str(err)) from None
        use_persistent_cache(config.compile_cache)
        try:
            with workdir_lock.hold(Path(workdir), main=is_main_process(), note=log), \
                    preemption.stop_requests(note=log) as stops:
                results = _train(config, Path(workdir), resume, stop_after_epochs, stops)
                if "interrupted_after_epoch" not in results:
                    results["run_wall_s"] = time.perf_counter() - t_start
                    results["compiles"] = compiles.summary()  # XLA compilations, persistent-cache hits, seconds
                    if is_main_process():
                        write_json(Path(workdir) / run_dir.RESULTS, results)
                return results
        except workdir_lock.WorkdirInUse as err:  # raised only on entering: nothing was written
            raise TrainingError(str(err)) from None


def _train(config, workdir: Path, resume: bool, stop_after_epochs: int | None, stops) -> dict:
    """The run, inside its workdir's lock: set up, resume, the epochs, the final scores."""
    state, teacher = _set_up(config, workdir)
    state.stops = stops
    restore_latest(state, resume)
    targets = teacher_targets(state, teacher)
    writer = _tensorboard(state.workdir) if config.log.tensorboard and is_main_process() else None
    try:
        warmed: set = set()
        for epoch in range(state.start_epoch, config.train.epochs):
            row = train_epoch(state, epoch, targets, warmed)
            _end_epoch(state, epoch, row, writer)
            stopped = stop_after_epochs is not None and epoch + 1 - state.start_epoch >= stop_after_epochs
            if stopped and epoch + 1 < config.train.epochs:
                return {"interrupted_after_epoch": epoch + 1}
            if epoch + 1 < config.train.epochs and stops.agreed(at_read=True):
                raise Preempted(f"stopped on {stops.name} after epoch {epoch + 1}, saved "
                                f"({state.checkpoints.directory}); rerun the same command to continue")
        return final_results(state, targets)
    finally:
        if writer is not None:
            writer.close()


def _placement(config) -> Placement:
    try:
        placement = Placement(int(config.mesh.data), int(config.mesh.model))
        placement.check_batch("train.batch_size", config.train.batch_size)
        placement.check_batch("train.eval_batch_size", config.train.eval_batch_size)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    return placement


def _spec(config) -> DistillSpec:
    return DistillSpec(
        method=config.distill.method,
        emissions_only=bool(config.distill.emissions_only),
        centered=bool(config.distill.centered),
        kbest_k=int(config.distill.kbest_k),
        kbest_weights=config.distill.kbest_weights,
        temperature=float(config.distill.temperature),
        algorithm=config.distill.algorithm,
        head=config.model.head,
    )


def _set_up(config, workdir: Path):
    """(the run's state, the teacher's files or None): data, tokenizer and
    teacher checks, the student's files and compiled functions."""
    placement = _placement(config)
    workdir.mkdir(parents=True, exist_ok=True)
    pin_config(workdir, config)
    spec = _spec(config)
    corpus, unlabeled = load_data(config), load_unlabeled(config)
    labels = corpus.labels
    refusal = None if labels.chunks else unsupported(config.model.head, "token tags")
    if refusal:
        raise TrainingError(f"{corpus.name}: {refusal}")
    enc_dir = encoder_dir(config.model.checkpoint)
    encoder = SubwordEncoder.from_pretrained(enc_dir, config.model.window or None)
    teacher = None
    if config.mode == "student" and config.teacher_workdir:
        teacher = open_teacher(config, labels, encoder)
        spec = spec._replace(teacher_head=teacher.head)
    encoded = encode_corpus(corpus, encoder, min_length=config.data.min_bucket_length, unlabeled=unlabeled)
    spec = with_targets_in_step(spec, encoded, len(labels), config.distill.cache_teacher)
    log(f"[jaxkd] {corpus.name}: {len(corpus.train)}/{len(corpus.dev)}/{len(corpus.test)} sentences, "
        f"{len(labels)} tags, batch shapes (T, W) {list(encoded.buckets.shapes)}")
    for note in corpus.notes:
        log(f"[jaxkd] note: {note}")
    tagger = build_tagger(
        enc_dir, labels, num_layers=config.model.num_layers or None, dropout=config.model.dropout,
        constrained=config.model.constraints, dtype=config.model.dtype, seed=config.seed, head=config.model.head,
    )
    run_dir.write_model_files(workdir, enc_dir, tagger, labels, dtype=config.model.dtype)
    parts = split(tagger)
    parts = parts._replace(params=placement.replicate(parts.params), rest=placement.replicate(parts.rest))
    labeled = len(encoded.batches("train", config.train.batch_size, shuffle=False))
    unlabeled_per_epoch = max(1, round(config.data.unlabeled_ratio * labeled)) if unlabeled else 0
    if unlabeled:
        log(f"[jaxkd] unlabelled text ({config.data.unlabeled}): {len(unlabeled)} sentences; "
            f"{unlabeled_per_epoch} of their batches mixed with the {labeled} labelled ones per epoch")
    state = RunState(
        config=config, workdir=workdir, spec=spec, corpus=corpus, encoded=encoded, parts=parts, fns=None,
        placement=placement, checkpoints=Checkpoints(workdir, writable=True),
        steps_per_epoch=labeled + unlabeled_per_epoch, unlabeled_per_epoch=unlabeled_per_epoch,
        params=parts.params, opt_state=None,
    )
    state.fns = student_fns(parts, spec, _optimizer_settings(state, labeled))  # shared with earlier runs
    state.opt_state = state.fns.optimizer.init(parts.params)
    return state, teacher


def _optimizer_settings(state: RunState, labeled: int) -> OptimizerSettings:
    """The optimizer's settings; its schedule spans every step of every epoch."""
    t = state.config.train
    extra = [state.unlabeled_per_epoch if state.kd_lambda(e) > 0 else 0 for e in range(t.epochs)]
    return OptimizerSettings(
        encoder_lr=float(t.encoder_lr),
        head_lr=float(t.head_lr),
        total_steps=sum(labeled + n for n in extra),
        warmup_fraction=float(t.warmup_fraction),
        weight_decay=float(t.weight_decay),
        clip_norm=float(t.clip_norm),
    )


def _end_epoch(state: RunState, epoch: int, row: dict, writer) -> None:
    """Scores dev, saves `best` (when improved) and `latest` with the loop state, logs."""
    config = state.config
    dev = score(state, state.params, "dev")
    row["dev_score"] = dev["score"]
    if config.train.eval_test_every_epoch:
        row["test_score"] = score(state, state.params, "test")["score"]
    state.history.append(row)
    improved = dev["score"] > state.best["dev_score"]  # of equal scores the earlier is best, as the checkpoints rank
    if improved:
        state.best, state.best_dev = {"epoch": epoch, "dev_score": dev["score"]}, dev
    loop_state = {"epoch": epoch, "history": state.history, "best": state.best}
    state.checkpoints.save(
        epoch, params=state.params, opt_state=state.opt_state, loop_state=loop_state, dev_score=dev["score"]
    )
    drop_mid_epoch(state)  # the epoch's own checkpoint holds more
    _write_scalars(writer, row, state.metric)
    fwd, t_teacher = row["student_forward_s"], row["teacher_forward_s"]
    t_step = row["total_s"] - t_teacher
    split_s = f"forward {fwd:.1f}, backward {t_step - fwd:.1f})" if fwd is not None else "forward + backward not split)"
    log(
        f"[jaxkd] epoch {epoch + 1}/{config.train.epochs}  loss {row['loss']:.4f}  lambda {row['lambda']:.2f}  "
        f"dev {METRIC_NAMES[dev['metric']]} {dev['score']:.2f}{'  (best)' if improved else ''}  "
        f"time {row['total_s']:.1f}s "
        f"(teacher {t_teacher:.1f}, " + split_s
    )


def _tensorboard(workdir: Path):
    try:
        from tensorboardX import SummaryWriter  # optional: runs still write results.json
    except ImportError:
        log("[jaxkd] note: tensorboardX is not installed, so no TensorBoard scalars "
            "(pip install 'jaxkd[tensorboard]', or --config.log.tensorboard=false)")
        return None
    return SummaryWriter(str(workdir / "tensorboard"))


def _write_scalars(writer, row: dict, metric: str) -> None:
    if writer is None:
        return
    step = row["epoch"]
    writer.add_scalar("train/loss", row["loss"], step)
    writer.add_scalar("train/lambda", row["lambda"], step)
    if row.get("unlabeled_loss") is not None:
        writer.add_scalar("train/unlabeled_loss", row["unlabeled_loss"], step)
    writer.add_scalar(f"dev/{metric}", row["dev_score"], step)
    for phase in ("teacher_forward_s", "student_forward_s", "student_backward_s", "total_s"):
        if row[phase] is not None:
            writer.add_scalar(f"time/{phase}", row[phase], step)
    writer.flush()
