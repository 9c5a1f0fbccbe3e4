"""One training run: data, models, the epoch loop, evaluation, checkpoints and
``<workdir>/results.json``.

Per-epoch timings are the phases of :mod:`jaxkd.training.phases` (one
definition, shared with ``benchmarks/epoch_timing.py``): compilation is
excluded (every compiled variant and shape is warmed up before the epoch
starts); the teacher's one-time cache pass is ``teacher_cache_s``; the
forward alone is timed on ``timing.forward_batches`` batches and scaled to
the epoch; the train steps run back to back, the host reading their summed
loss every :data:`READ_EVERY` steps and preparing the next batches
meanwhile, so their time is the epoch's wall time less the separately timed
teacher and forward passes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxkd import losses, methods, offline
from jaxkd.config import base as base_config
from jaxkd.data.pipeline import EncodedCorpus, encode_corpus
from jaxkd.data.sources import load_corpus
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.data.unlabeled import WNUT16_UNUSED, read_sentences, unused_training_sentences
from jaxkd.evaluate import entity_scores
from jaxkd.models.tagger import build_tagger
from jaxkd.progress import MODES as PROGRESS_MODES
from jaxkd.progress import progress
from jaxkd.training import run_dir
from jaxkd.training.compiles import CompileLog, use_persistent_cache
from jaxkd.training.head_fit import fit_head
from jaxkd.training.mesh import Placement, is_main_process
from jaxkd.training.phases import EpochClock
from jaxkd.training.run_dir import Checkpoints
from jaxkd.training.steps import DistillSpec, OptimizerSettings, Split, copy_tree, dropout_key, split, student_fns, teacher_fn
from jaxkd.training.targets import TeacherCache


class TrainingError(RuntimeError):
    """A run cannot go on (bad configuration, NaN loss, incompatible teacher)."""


def log(msg: str) -> None:
    """A line on standard error (from process 0 alone, with several)."""
    if is_main_process():
        print(msg, file=sys.stderr, flush=True)


def _progress(total: int, desc: str, mode: str):
    return progress(total, desc, mode, unit="batch")


# ---------------------------------------------------------------------------
# configuration and inputs
# ---------------------------------------------------------------------------


def validate(config: ml_collections.ConfigDict) -> None:
    if config.mode not in ("teacher", "student"):
        raise TrainingError(f"mode must be 'teacher' or 'student'; got {config.mode!r}")
    if config.distill.method not in methods.REGISTRY:
        raise TrainingError(f"distill.method must be one of {', '.join(methods.REGISTRY)}; got {config.distill.method!r}")
    if config.distill.lambda_schedule not in losses.SCHEDULES:
        raise TrainingError(f"distill.lambda_schedule must be one of {losses.SCHEDULES}")
    if config.mode == "teacher" and config.distill.method != "vanilla":
        raise TrainingError("a teacher is trained with distill.method='vanilla' (gold NLL)")
    if config.mode == "student" and config.distill.method != "vanilla" and not config.teacher_workdir:
        raise TrainingError(f"method {config.distill.method!r} needs teacher_workdir (the teacher run's workdir)")
    if config.data.unlabeled and (config.mode != "student" or config.distill.method == "vanilla"):
        raise TrainingError(
            f"data.unlabeled ({config.data.unlabeled}) is text without gold tags: only a distilling student learns "
            f"from it (mode 'student' and a method other than vanilla; this run: mode {config.mode!r}, "
            f"method {config.distill.method!r}); drop it with --config.data.unlabeled=''"
        )
    for key, (low, high, meaning) in RANGES.items():
        value = _get(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not low <= value <= high:
            raise TrainingError(f"{key} must be {meaning}; got {value!r} (--config.{key}=...)")
    for key, choices in _choices().items():
        if _get(config, key) not in choices:
            raise TrainingError(f"{key} must be one of {', '.join(map(str, choices))}; got {_get(config, key)!r} (--config.{key}=...)")
    if config.model.head == "span" and config.mode == "student" and config.distill.method != "vanilla":
        raise TrainingError(
            f"a span student (model.head = 'span') learns from gold spans only: {config.distill.method!r} has no term for "
            "it (Structural KD's scenarios distil into token-level students). Use --config.distill.method=vanilla, or a "
            "crf or softmax student (--config.model.head=crf)"
        )
    if config.distill.fit_head and config.model.head != "crf" and config.distill.method == "efficient":
        raise TrainingError(
            "distill.fit_head solves for a CRF student's emission layer and transition scores; a softmax student "
            "(model.head = 'softmax') has no transition scores to absorb the fit: use --config.distill.fit_head=false"
        )
    if config.mode == "student" and config.distill.method != "vanilla" and config.train.epochs == 1 and config.distill.lambda_schedule == "paper":
        log("[jaxkd] warning: with train.epochs = 1 the 'paper' schedule gives lambda 0 to the only epoch: the student "
            "learns from the gold tags alone (--config.distill.lambda_schedule=constant to distil)")


INF = float("inf")
# Numeric keys: (lowest, highest, as the error message says it).
RANGES = {
    "seed": (0, INF, "an integer >= 0"),
    "data.max_train_sentences": (0, INF, ">= 0 (0: all)"),
    "data.min_bucket_length": (4, INF, ">= 4"),
    "data.unlabeled_ratio": (0.01, 100.0, "in [0.01, 100] (unlabelled batches per labelled batch)"),
    "model.num_layers": (0, INF, ">= 0 (0: all of the checkpoint's)"),
    "model.dropout": (0.0, 0.99, "in [0, 0.99]"),
    "model.window": (0, INF, ">= 0 (0: the checkpoint's maximum)"),
    "distill.lambda_value": (0.0, 1.0, "in [0, 1]"),
    "distill.kbest_k": (1, 1000, "in [1, 1000]"),
    "distill.temperature": (1e-3, 1e3, "in [0.001, 1000]"),
    "train.epochs": (1, INF, ">= 1"),
    "train.batch_size": (1, INF, ">= 1"),
    "train.eval_batch_size": (1, INF, ">= 1"),
    "train.encoder_lr": (0.0, INF, ">= 0 (0 freezes the encoder)"),
    "train.head_lr": (0.0, INF, ">= 0"),
    "train.warmup_fraction": (0.0, 1.0, "in [0, 1]"),
    "train.weight_decay": (0.0, 1.0, "in [0, 1]"),
    "train.clip_norm": (0.0, INF, ">= 0 (0: no clipping)"),
    "timing.forward_batches": (-1, INF, ">= -1 (-1: every batch, 0: none)"),
    "mesh.data": (0, INF, ">= 0 (0: every device)"),
    "mesh.model": (1, 1, "1 (model parallelism is not built yet)"),
}


def _choices() -> dict:
    from jaxkd import crf
    from jaxkd.models.tagger import DTYPES, HEADS

    return {
        "model.dtype": tuple(DTYPES),
        "model.head": HEADS,
        "distill.kbest_weights": losses.KBEST_WEIGHTS,
        "distill.algorithm": crf.ALGORITHMS,
        "log.progress": PROGRESS_MODES,
        "distill.teacher_checkpoint": ("", "best", "latest"),
    }


def _get(config, key: str):
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def encoder_dir(name: str) -> Path:
    """The pre-trained checkpoint directory of ``model.checkpoint``."""
    if name in offline.CHECKPOINTS:
        return offline.CHECKPOINTS[name]()
    from jaxkd.models.bert_weights import resolve_checkpoint

    return resolve_checkpoint(name)


def load_data(config):
    d = config.data
    source = d.source
    if source == "wnut16":
        corpus = load_corpus(source, allow_unseen_tags=d.allow_unseen_tags)
    elif source.startswith("hf:"):
        corpus = load_corpus(source, task=d.task or "auto", scheme=d.scheme, allow_unseen_tags=d.allow_unseen_tags)
    else:
        corpus = load_corpus(
            source, word_col=d.word_col, tag_col=d.tag_col, scheme=d.scheme, allow_unseen_tags=d.allow_unseen_tags
        )
    if d.max_train_sentences and d.max_train_sentences < len(corpus.train):
        corpus = _limit(corpus, d.max_train_sentences)
    return corpus


def load_unlabeled(config) -> list[tuple[str, ...]]:
    """The sentences of ``data.unlabeled`` (none when it is empty)."""
    name = config.data.unlabeled
    if not name:
        return []
    if name == WNUT16_UNUSED:
        if config.data.source != "wnut16":
            raise TrainingError(
                f"data.unlabeled={WNUT16_UNUSED!r} is the unused part of the wnut16 training split, but data.source "
                f"is {config.data.source!r}: give a text file (one sentence per line) instead"
            )
        full = load_corpus("wnut16", allow_unseen_tags=config.data.allow_unseen_tags)
        return unused_training_sentences(full.train, config.data.max_train_sentences)
    return read_sentences(name)


def _limit(corpus, n):
    import dataclasses

    notes = tuple(corpus.notes) + (f"train limited to its first {n} sentences (data.max_train_sentences)",)
    return dataclasses.replace(corpus, train=list(corpus.train[:n]), notes=notes)


# Keys that a resumed run may change (e.g. a lower learning rate after a NaN).
RESUMABLE_KEYS = frozenset({
    "compile_cache", "train.epochs", "train.encoder_lr", "train.head_lr", "train.eval_test_every_epoch",
    "timing.forward_batches", "log.progress", "mesh.data",
})


def _check_same_config(workdir: Path, config) -> None:
    """Only a run that saved a checkpoint pins its configuration: another one
    is refused unless it changes only :data:`RESUMABLE_KEYS` (noted)."""
    saved = workdir / "config.json"
    if saved.is_file():
        try:
            old = json.loads(saved.read_text())
        except ValueError:
            old = {}
        new = json.loads(config.to_json())
        old_flat, new_flat = _flat(old), _flat(new)
        # A key added to jaxkd since the run started is no change at its default value.
        defaults = _flat(json.loads(base_config().to_json()))
        diff = sorted(
            k for k in set(old_flat) | set(new_flat)
            if old_flat.get(k) != new_flat.get(k) and not (k not in old_flat and new_flat.get(k) == defaults.get(k))
        )
        pinned = Checkpoints(workdir).step("latest") is not None
        if diff and pinned and not set(diff) <= RESUMABLE_KEYS:
            raise TrainingError(
                f"{workdir} holds a run with a different configuration (differs in: {', '.join(diff)}); "
                "use a new --workdir, or the same configuration to resume "
                f"(a resumed run may change only {', '.join(sorted(RESUMABLE_KEYS))})"
            )
        if diff:
            what = "resuming with" if pinned else "it saved no checkpoint; starting again with"
            log(f"[jaxkd] note: {workdir}: {what} a changed configuration ({', '.join(diff)})")
    if is_main_process():
        run_dir.write_json(saved, json.loads(config.to_json()))


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------


def predict_split(decode, params, rest, encoded: EncodedCorpus, split_name: str, batch_size: int, *, place: Placement | None = None) -> list[list[str]]:
    """Viterbi tags of every word of a split, as label strings per sentence
    (``place``: where the parameters are, e.g. a mesh over several processes)."""
    batches = encoded.batches(split_name, batch_size, shuffle=False)
    if place is None:
        values = [np.asarray(decode(params, rest, b)) for b in batches]
    else:
        values = [place.to_host(decode(params, rest, place.rows(b))) for b in batches]
    per_sentence = encoded.stitch(split_name, batches, values)
    return [encoded.corpus.labels.decode(ids) for ids in per_sentence]


def score_split(decode, params, rest, encoded, split_name, batch_size, *, place=None) -> dict:
    pred = predict_split(decode, params, rest, encoded, split_name, batch_size, place=place)
    gold = [list(s.tags) for s in encoded.corpus.splits[split_name]]
    return entity_scores(gold, pred)


# ---------------------------------------------------------------------------
# the teacher of a student
# ---------------------------------------------------------------------------

def check_teacher(config, labels, encoder: SubwordEncoder) -> None:
    """Refuses a teacher that cannot teach this student: unfinished (unless a
    checkpoint is named), without checkpoint, another label set, another
    tokenizer, a window shorter than the student's rows, or an unconstrained
    CRF under a constrained student for a method that matches distributions."""
    teacher = Path(config.teacher_workdir)
    if not (teacher / "model" / "labels.json").is_file():
        raise TrainingError(f"teacher_workdir {teacher} is not a jaxkd training workdir (no model/labels.json)")
    name = config.distill.teacher_checkpoint or "best"
    saved = Checkpoints(teacher)
    if saved.step(name) is None:
        raise TrainingError(f"the teacher {teacher} has no {name!r} checkpoint: train it first (or finish its run)")
    if not config.distill.teacher_checkpoint and not (teacher / "results.json").is_file():
        state = saved.loop_state() or {}
        done = f"stopped after epoch {state['epoch'] + 1}" if "epoch" in state else "stopped early"
        raise TrainingError(
            f"the teacher {teacher} is an unfinished run ({done}; no results.json): finish it by rerunning its "
            "command, or distil from it as it is with --config.distill.teacher_checkpoint=best (or latest)"
        )
    teacher_labels = run_dir.read_labels(teacher)
    if list(teacher_labels.labels) != list(labels.labels):
        raise TrainingError(
            "the student's label set differs from its teacher's:\n"
            f"  teacher ({teacher}): {list(teacher_labels.labels)}\n"
            f"  student data ({config.data.source}): {list(labels.labels)}"
        )
    t_encoder = SubwordEncoder.from_pretrained(run_dir.model_dir(teacher))
    difference = tokenizer_difference(t_encoder, encoder)
    if difference:
        raise TrainingError(
            f"the student's tokenizer ({config.model.checkpoint}) differs from its teacher's ({teacher}): {difference}; "
            "the teacher reads the student's sub-word ids, so both must use the same tokenizer"
        )
    if t_encoder.window < encoder.window:
        raise TrainingError(
            f"the student's rows hold up to {encoder.window} sub-words but its teacher reads at most {t_encoder.window}: "
            f"set --config.model.window={t_encoder.window}"
        )
    meta = run_dir.read_tagger_meta(teacher)
    method = methods.get(config.distill.method)
    if meta["head"] == "span" and method.targets is not None and method.targets_for(config.model.head, "span") is None:
        raise TrainingError(
            f"{config.distill.method!r} cannot learn from the span teacher {teacher}: "
            f"{SPAN_TEACHER_GAPS.get(config.distill.method, 'it has no targets from one')}. A span teacher gives "
            "its per-word BIO marginals (Structural KD's scenario 4): use --config.distill.method=posterior or structkd"
        )
    spans_valid = meta["head"] == "span"  # its marginals are of valid BIO sequences only
    if config.model.head == "crf" and config.model.constraints and not meta["constrained"] and not spans_valid and method.learns_distribution:
        what = "a product of per-word softmaxes" if meta["head"] == "softmax" else "the teacher"
        raise TrainingError(
            f"a constrained student (model.constraints = True) cannot learn {config.distill.method!r} from the "
            f"unconstrained teacher {teacher} ({meta['head']} head, trained with model.constraints = False): {what} puts mass "
            "on moves the student forbids, and the loss has no lower bound. Use --config.model.constraints=false, "
            "a constrained teacher (whose distribution is then over valid tag sequences), or the efficient method"
        )


# Why a method cannot learn from a span teacher.
SPAN_TEACHER_GAPS = {
    "efficient": "it matches the teacher's emission and transition scores, and a span model has neither",
    "kbest": "it learns from the teacher's k best tag sequences, and greedy span decoding ranks none",
}


def tokenizer_difference(a: SubwordEncoder, b: SubwordEncoder) -> str:
    """The first difference between two encoders' tokenizers ("" if none):
    normalisation, pre-tokenisation, special ids, vocabulary."""
    ja, jb = json.loads(a.tokenizer.to_str()), json.loads(b.tokenizer.to_str())
    for part in ("normalizer", "pre_tokenizer"):
        if ja.get(part) != jb.get(part):
            return f"{part} {json.dumps(ja.get(part))} against {json.dumps(jb.get(part))}"
    for name in ("cls_id", "sep_id", "pad_id", "unk_id"):
        if getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(a, name)} against {getattr(b, name)}"
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    if len(va) != len(vb):
        return f"vocabulary of {len(va)} against {len(vb)} entries"
    for token, index in sorted(va.items(), key=lambda kv: kv[1]):
        if vb.get(token) != index:
            return f"sub-word {token!r} has id {index} against {vb.get(token)}"
    return ""


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str | Path, *, resume: bool = True, stop_after_epochs: int | None = None) -> dict:
    """Trains (or resumes) a run and returns the content of ``results.json``.

    ``resume=False`` refuses a workdir that already holds a checkpoint.
    ``stop_after_epochs`` stops early as an interruption would (for tests).
    """
    with CompileLog() as compiles:
        t_start = time.perf_counter()
        validate(config)
        use_persistent_cache(config.compile_cache)
        state = _set_up(config, Path(workdir))
        _resume(state, resume)
        targets = _teacher_targets(state)
        writer = _tensorboard(state.workdir) if config.log.tensorboard and is_main_process() else None
        warmed: set = set()
        for epoch in range(state.start_epoch, config.train.epochs):
            row = _train_epoch(state, epoch, targets, warmed)
            _end_epoch(state, epoch, row, writer)
            if stop_after_epochs is not None and epoch + 1 - state.start_epoch >= stop_after_epochs and epoch + 1 < config.train.epochs:
                return {"interrupted_after_epoch": epoch + 1}
        results = _final_results(state, targets)
        results["run_wall_s"] = time.perf_counter() - t_start
        results["compiles"] = compiles.summary()  # XLA compilations, persistent-cache hits, seconds
        if is_main_process():
            run_dir.write_json(state.workdir / "results.json", results)
        if writer is not None:
            writer.close()
        return results


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
    fns: Any  # StudentFns
    placement: Placement  # one device, or a mesh (data parallel)
    checkpoints: Checkpoints  # <workdir>/checkpoints
    steps_per_epoch: int  # labelled + unlabelled batches of a distilling epoch (dropout keys)
    unlabeled_per_epoch: int  # unlabelled batches in an epoch whose lambda is above 0
    params: Any
    opt_state: Any
    history: list = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: {"epoch": -1, "dev_f1": -1.0})
    start_epoch: int = 0

    @property
    def rest(self):
        return self.parts.rest

    @property
    def distilling(self) -> bool:
        return self.config.mode == "student" and self.spec.method != "vanilla"

    def kd_lambda(self, epoch: int) -> float:
        """The weight of the KD term in ``epoch`` (0 when not distilling)."""
        c = self.config
        return losses.kd_weight(c.distill.lambda_schedule, epoch, c.train.epochs, c.distill.lambda_value) if self.distilling else 0.0


def _set_up(config, workdir: Path) -> RunState:
    """Data, tokenizer and teacher checks, the student's files and compiled functions."""
    try:
        placement = Placement(int(config.mesh.data), int(config.mesh.model))
        placement.check_batch("train.batch_size", config.train.batch_size)
        placement.check_batch("train.eval_batch_size", config.train.eval_batch_size)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    workdir.mkdir(parents=True, exist_ok=True)
    _check_same_config(workdir, config)
    spec = DistillSpec(
        method=config.distill.method,
        emissions_only=bool(config.distill.emissions_only),
        kbest_k=int(config.distill.kbest_k),
        kbest_weights=config.distill.kbest_weights,
        temperature=float(config.distill.temperature),
        algorithm=config.distill.algorithm,
        head=config.model.head,
    )
    corpus = load_data(config)
    unlabeled = load_unlabeled(config)
    labels = corpus.labels
    enc_dir = encoder_dir(config.model.checkpoint)
    encoder = SubwordEncoder.from_pretrained(enc_dir, config.model.window or None)
    if config.mode == "student" and config.teacher_workdir:
        check_teacher(config, labels, encoder)
        spec = spec._replace(teacher_head=run_dir.read_tagger_meta(config.teacher_workdir)["head"])
    encoded = encode_corpus(corpus, encoder, min_length=config.data.min_bucket_length, unlabeled=unlabeled)
    spec = _targets_in_step(spec, encoded, len(labels), config.distill.cache_teacher)
    log(f"[jaxkd] {corpus.name}: {len(corpus.train)}/{len(corpus.dev)}/{len(corpus.test)} sentences, "
        f"{len(labels)} tags, batch shapes (T, W) {list(encoded.buckets.shapes)}")
    for note in corpus.notes:
        log(f"[jaxkd] note: {note}")
    tagger = build_tagger(
        enc_dir,
        labels,
        num_layers=config.model.num_layers or None,
        dropout=config.model.dropout,
        constrained=config.model.constraints,
        dtype=config.model.dtype,
        seed=config.seed,
        head=config.model.head,
    )
    run_dir.write_model_files(workdir, enc_dir, tagger, labels, dtype=config.model.dtype)
    parts = split(tagger)
    parts = parts._replace(params=placement.replicate(parts.params), rest=placement.replicate(parts.rest))
    checkpoints = Checkpoints(workdir, writable=True)
    state = RunState(config, workdir, spec, corpus, encoded, parts, None, placement, checkpoints, 0, 0, parts.params, None)
    labeled = len(encoded.batches("train", config.train.batch_size, shuffle=False))
    state.unlabeled_per_epoch = max(1, round(config.data.unlabeled_ratio * labeled)) if unlabeled else 0
    state.steps_per_epoch = labeled + state.unlabeled_per_epoch
    if unlabeled:
        log(f"[jaxkd] unlabelled text ({config.data.unlabeled}): {len(unlabeled)} sentences; "
            f"{state.unlabeled_per_epoch} of their batches mixed with the {labeled} labelled ones per epoch")
    settings = OptimizerSettings(
        encoder_lr=float(config.train.encoder_lr),
        head_lr=float(config.train.head_lr),
        total_steps=sum(labeled + (state.unlabeled_per_epoch if state.kd_lambda(e) > 0 else 0) for e in range(config.train.epochs)),
        warmup_fraction=float(config.train.warmup_fraction),
        weight_decay=float(config.train.weight_decay),
        clip_norm=float(config.train.clip_norm),
    )
    state.fns = student_fns(parts, spec, settings)  # compiled functions shared with earlier runs of this process
    state.opt_state = state.fns.optimizer.init(parts.params)
    return state


# A cache of per-word targets above this size holds the teacher's scores
# instead, for a method that can compute its targets from them in each step.
IN_STEP_ABOVE_BYTES = 1 << 30


def _targets_in_step(spec: DistillSpec, encoded: EncodedCorpus, num_tags: int, cache: bool) -> DistillSpec:
    """``spec`` with ``targets_in_step`` set when the method allows it and its
    cached targets (N x N floats per word) would exceed IN_STEP_ABOVE_BYTES."""
    if not (cache and methods.get(spec.method).in_step and spec.head == "crf" and spec.teacher_head != "span"):
        return spec
    words = sum(len(r.word_index) for rows in (encoded.rows["train"], encoded.rows.get("unlabeled", [])) for r in rows)
    size = words * num_tags * num_tags * 4
    if size <= IN_STEP_ABOVE_BYTES:
        return spec
    log(f"[jaxkd] {spec.method}: its pair marginals would cache {size / 2**30:.1f} GiB ({words} words x {num_tags}^2 tags); "
        f"caching the teacher's scores ({words * num_tags * 4 / 2**20:.0f} MiB) and computing the marginals in each step")
    return spec._replace(targets_in_step=True)


def _resume(state: RunState, resume: bool) -> None:
    """Restores the latest checkpoint and the loop state saved with it, if any."""
    saved = state.checkpoints.loop_state()  # committed with the weights of `latest`
    if saved is None:
        return
    if not resume:
        raise TrainingError(f"{state.workdir} already holds a run; rerun with --resume to continue it, or use a new --workdir")
    # Restored into the templates' shardings (this run's mesh, whatever the saving
    # run's); replicated again for the optimizer's scalars, which optax creates
    # on one device and orbax then commits there.
    restored = state.checkpoints.restore("latest", params=state.params, opt_state=state.opt_state)
    state.params, state.opt_state = state.placement.replicate((restored["params"], restored["opt_state"]))
    state.history, state.best, state.start_epoch = saved["history"], saved["best"], saved["epoch"] + 1
    log(f"[jaxkd] resuming {state.workdir} after epoch {state.start_epoch} (best dev F1 so far {state.best['dev_f1']:.2f})")


class Targets(NamedTuple):
    """The teacher's targets of a training batch, from the cache or computed."""

    of: Any  # (batch, gold: bool) -> the method's targets (None when not distilling)
    cached: bool
    cache_s: float  # seconds this run spent caching them
    reused: bool = False  # the cache came from an earlier run of this process


# Teacher caches of this process by (teacher checkpoint, method, rows): runs
# that distil the same teacher with the same method (seeds of a study) build
# the cache once.
_TEACHER_CACHES: dict = {}


def _teacher_targets(state: RunState) -> Targets:
    """Restores the teacher, caches its targets (``distill.cache_teacher``) and
    fits the student's head to them (``distill.fit_head``)."""
    config = state.config
    if not (state.distilling and state.start_epoch < config.train.epochs):
        return Targets(None, False, 0.0)
    name = config.distill.teacher_checkpoint or "best"
    saved = Checkpoints(config.teacher_workdir)
    t_ckpt = saved.directory / str(saved.require(name))  # the step directory, which keys the cache
    t_parts = split(run_dir.abstract_tagger(config.teacher_workdir))
    t_params = saved.restore(name, params=t_parts.params)["params"]
    place = state.placement
    t_params, t_rest = place.replicate((t_params, t_parts.rest))
    compiled_teacher = teacher_fn(t_parts, state.spec)

    def t_fn(params, rest, batch):  # a host batch: the cache reads its row ids
        return compiled_teacher(params, rest, place.rows(batch))

    # The training set in file order, for the one-time passes (cache, head fit).
    splits = ("train", "unlabeled") if state.unlabeled_per_epoch else ("train",)
    rows = {name: state.encoded.batches(name, config.train.eval_batch_size, shuffle=False) for name in splits}
    caches, cache_s, reused = {}, 0.0, False
    if config.distill.cache_teacher:
        for name in splits:
            cache, fresh = _cached_targets(state, t_ckpt, t_fn, t_params, t_rest, name, rows[name])
            caches[name] = cache.on_device(place)
            cache_s, reused = cache_s + (cache.seconds if fresh else 0.0), reused or not fresh

    def of(batch, gold=True):
        return caches["train" if gold else "unlabeled"].of(batch) if caches else t_fn(t_params, t_rest, batch)

    if methods.get(state.spec.method).fits_head and config.distill.fit_head and state.start_epoch == 0:
        t0 = time.perf_counter()
        bar = _progress(len(rows["train"]), "fitting the head", config.log.progress)
        fitted, info = fit_head(state.parts, state.params, state.rest, rows["train"], of, progress=lambda: bar.update(), place=place)
        state.params = place.replicate(fitted)
        bar.close()
        log(f"[jaxkd] fitted the student's head and CRF to the teacher's scores over {info['words']} words "
            f"({time.perf_counter() - t0:.1f}s; distill.fit_head)")
    return Targets(of, bool(caches), cache_s, reused)


def _cached_targets(state: RunState, t_ckpt: Path, t_fn, t_params, t_rest, name: str, rows) -> tuple[TeacherCache, bool]:
    """The teacher's targets of every row of split ``name`` (built once per
    process for a teacher checkpoint, method and rows), and whether this call
    built them."""
    digest = hashlib.blake2b(digest_size=16)
    for b in rows:
        for array in (b.input_ids, b.word_index, b.word_mask, b.sentence_index, b.word_offset):
            digest.update(np.ascontiguousarray(array).tobytes())
    saved = t_ckpt.stat()  # a checkpoint saved again is a new directory
    key = (str(t_ckpt.resolve()), saved.st_ino, saved.st_mtime_ns, state.spec._replace(emissions_only=False), digest.hexdigest())
    if key in _TEACHER_CACHES:
        log(f"[jaxkd] teacher targets of the {name} rows: reused from an earlier run of this process")
        return _TEACHER_CACHES[key], False
    for b in {b.input_ids.shape + b.word_mask.shape: b for b in rows}.values():  # compile first
        jax.block_until_ready(t_fn(t_params, t_rest, b))
    bar = _progress(len(rows), f"teacher targets ({name})", state.config.log.progress)
    host_fn = lambda *args: state.placement.to_host(t_fn(*args))  # noqa: E731 - whole on every process
    cache = TeacherCache.build(host_fn, t_params, t_rest, rows, progress=lambda: bar.update())
    bar.close()
    log(f"[jaxkd] cached teacher targets of {len(cache)} {name} rows in {cache.seconds:.1f}s")
    while len(_TEACHER_CACHES) >= 2:  # a study runs its methods one after another
        _TEACHER_CACHES.pop(next(iter(_TEACHER_CACHES)))
    _TEACHER_CACHES[key] = cache
    return cache, True


def _variant(lam: float, gold: bool) -> tuple[bool, bool]:
    """``(use_kd, use_nll)`` of a step: a labelled batch follows the epoch's
    lambda; an unlabelled one has the KD term alone."""
    return (lam > 0.0, lam < 1.0) if gold else (True, False)


def _epoch_steps(state: RunState, epoch: int, lam: float) -> list[tuple[Any, bool]]:
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


def _warm_up(state: RunState, steps, probe, targets_of, lam, warmed: set) -> None:
    """Compiles every shape and variant of this epoch's steps outside the timed epoch."""
    fns = state.fns
    probe_shapes = {steps[i][0].input_ids.shape + steps[i][0].word_mask.shape for i in probe}
    for host_batch, gold in steps:
        use_kd, use_nll = _variant(lam, gold)
        key = (host_batch.input_ids.shape, host_batch.word_mask.shape, use_kd, use_nll)
        if key in warmed:
            continue
        tg = jax.block_until_ready(targets_of(host_batch, gold, use_kd))
        b = state.placement.rows(host_batch)
        k = dropout_key(state.config.seed, 0)
        if gold and b.input_ids.shape + b.word_mask.shape in probe_shapes:
            jax.block_until_ready(fns.forward_loss(state.params, state.rest, b, tg, lam, k, use_kd=use_kd, use_nll=use_nll))
        p_copy, o_copy = copy_tree((state.params, state.opt_state))
        jax.block_until_ready(fns.train_step(p_copy, state.rest, o_copy, b, tg, lam, k, use_kd=use_kd, use_nll=use_nll))
        warmed.add(key)


# Steps between two reads of the loss, which is summed on the device: the host
# dispatches steps and prepares the next batches (row ids, transfer) without
# waiting on any, at most this many ahead; a NaN stops the epoch at the read
# after it, before anything is saved.
READ_EVERY = 16


def _train_epoch(state: RunState, epoch: int, targets: Targets, warmed: set) -> dict:
    """One epoch of training steps (compiled first); returns its row of the
    history, dev F1 still to come."""
    config, fns, rest = state.config, state.fns, state.rest
    lam = state.kd_lambda(epoch)
    steps = _epoch_steps(state, epoch, lam)

    def targets_of(batch, gold, use_kd):
        return targets.of(batch, gold) if use_kd else {}

    probe = _probe_batches(steps, config.timing.forward_batches)
    _warm_up(state, steps, probe, targets_of, lam, warmed)
    clock = EpochClock()
    sums = {True: jnp.zeros((), jnp.float32), False: jnp.zeros((), jnp.float32)}  # summed losses by gold, on the device
    read = _LossReads(state, epoch, _progress(len(steps), f"epoch {epoch + 1}/{config.train.epochs}", config.log.progress))
    wall0 = time.perf_counter()
    for i, (host_batch, gold) in enumerate(steps):
        use_kd, use_nll = _variant(lam, gold)
        step_key = dropout_key(config.seed, epoch * state.steps_per_epoch + i)
        if use_kd and not targets.cached:  # the teacher per batch: timed on its own
            read(sums, i)
            t0 = time.perf_counter()
            tg = jax.block_until_ready(targets_of(host_batch, gold, use_kd))
            clock.teacher += time.perf_counter() - t0
        else:
            tg = targets_of(host_batch, gold, use_kd)
        batch = state.placement.rows(host_batch)
        if i in probe:  # the forward alone, then the step, each timed on an idle device
            read(sums, i)
            t0 = time.perf_counter()
            jax.block_until_ready(fns.forward_loss(state.params, rest, batch, tg, lam, step_key, use_kd=use_kd, use_nll=use_nll))
            clock.forward += time.perf_counter() - t0
            t0 = time.perf_counter()
        _kill_point()
        state.params, state.opt_state, loss = fns.train_step(
            state.params, rest, state.opt_state, batch, tg, lam, step_key, use_kd=use_kd, use_nll=use_nll
        )
        sums[gold] = sums[gold] + loss
        if i in probe:
            read(sums, i + 1)
            clock.probed_steps += time.perf_counter() - t0
        elif i + 1 - read.steps >= READ_EVERY:
            read(sums, i + 1)
    read(sums, len(steps))
    clock.wall = time.perf_counter() - wall0
    read.bar.close()
    return _epoch_row(state, epoch, lam, steps, len(probe), clock, read.totals)


class _LossReads:
    """The host's reads of an epoch's losses, summed on the device: each read
    waits for the steps dispatched so far, checks the sums are finite and
    moves the progress bar to them."""

    def __init__(self, state: RunState, epoch: int, bar):
        self.state, self.epoch, self.bar = state, epoch, bar
        self.steps = 0  # steps covered by the last read
        self.totals = {True: 0.0, False: 0.0}

    def __call__(self, sums: dict, steps: int) -> None:
        """Reads ``sums`` once the first ``steps`` steps are dispatched."""
        if steps <= self.steps:
            return
        totals = {gold: float(value) for gold, value in sums.items()}  # waits for the dispatched steps
        for value in totals.values():
            if not math.isfinite(value):
                self.bar.close()
                _stop_on_nan(self.state, value, self.epoch, self.steps, steps)
        self.bar.update(steps - self.steps)
        self.bar.set_postfix_str(f"loss {sum(totals.values()) / steps:.4f}")
        self.steps, self.totals = steps, totals


def _kill_point() -> None:
    """Test hook: ``JAXKD_KILL_AT_STEP=<n>`` kills the process (SIGKILL) as it
    dispatches its n-th train step (counted from 1 over its epochs)."""
    target = os.environ.get("JAXKD_KILL_AT_STEP")
    if target:
        global _STEPS_DISPATCHED
        _STEPS_DISPATCHED += 1
        if _STEPS_DISPATCHED == int(target):
            os.kill(os.getpid(), signal.SIGKILL)


_STEPS_DISPATCHED = 0


def _epoch_row(state: RunState, epoch: int, lam: float, steps, probed: int, clock: EpochClock, loss_sums: dict) -> dict:
    """The epoch's row of the history: mean losses and seconds by phase."""
    labeled = sum(gold for _, gold in steps)
    row = {
        "epoch": epoch + 1,
        "loss": loss_sums[True] / labeled,
        "lambda": lam,
        "dev_f1": None,  # set by _end_epoch
        **clock.phases(probed, len(steps)),
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


def _end_epoch(state: RunState, epoch: int, row: dict, writer) -> None:
    """Scores dev, saves `best` (when improved) and `latest` with the loop state, logs."""
    config = state.config
    batch_size = config.train.eval_batch_size
    dev = score_split(state.fns.decode, state.params, state.rest, state.encoded, "dev", batch_size, place=state.placement)
    row["dev_f1"] = dev["f1"]
    if config.train.eval_test_every_epoch:
        row["test_f1"] = score_split(state.fns.decode, state.params, state.rest, state.encoded, "test", batch_size, place=state.placement)["f1"]
    state.history.append(row)
    improved = dev["f1"] > state.best["dev_f1"]  # of equal scores the earlier is best, as in run_dir
    if improved:
        state.best = {"epoch": epoch, "dev_f1": dev["f1"]}
    loop_state = {"epoch": epoch, "history": state.history, "best": state.best}
    state.checkpoints.save(epoch, params=state.params, opt_state=state.opt_state, loop_state=loop_state, dev_f1=dev["f1"])
    _write_scalars(writer, row)
    fwd, t_teacher = row["student_forward_s"], row["teacher_forward_s"]
    t_step = row["total_s"] - t_teacher
    log(
        f"[jaxkd] epoch {epoch + 1}/{config.train.epochs}  loss {row['loss']:.4f}  lambda {row['lambda']:.2f}  dev F1 {dev['f1']:.2f}"
        f"{'  (best)' if improved else ''}  time {row['total_s']:.1f}s (teacher {t_teacher:.1f}, "
        + (f"forward {fwd:.1f}, backward {t_step - fwd:.1f})" if fwd is not None else "forward + backward not split)")
    )


def _final_results(state: RunState, targets: Targets) -> dict:
    """The best dev epoch scored on dev and test, with the run's history."""
    config, batch_size = state.config, state.config.train.eval_batch_size
    best_params = state.checkpoints.restore("best", params=state.params)["params"]  # placed like state.params
    return {
        "mode": config.mode,
        "method": state.spec.method,
        "dataset": state.corpus.name,
        "encoder": str(config.model.checkpoint),
        "num_layers": config.model.num_layers or None,
        "best_epoch": state.best["epoch"] + 1,
        "dev": score_split(state.fns.decode, best_params, state.rest, state.encoded, "dev", batch_size, place=state.placement),
        "test": score_split(state.fns.decode, best_params, state.rest, state.encoded, "test", batch_size, place=state.placement),
        "epochs": state.history,
        "teacher_cache_s": targets.cache_s,
        "teacher_cache_reused": targets.reused,
        "targets_in_step": state.spec.targets_in_step,
        "timing_note": "seconds of compiled calls after warm-up; student_backward_s = train step - forward",
        "notes": list(state.corpus.notes),
        "device": str(jax.devices()[0].device_kind),
        "mesh": state.placement.describe(),
        "jax_version": jax.__version__,
    }


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


def _tensorboard(workdir: Path):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # optional: runs still write results.json
        log("[jaxkd] note: tensorboardX is not installed, so no TensorBoard scalars "
            "(pip install 'jaxkd[tensorboard]', or --config.log.tensorboard=false)")
        return None
    return SummaryWriter(str(workdir / "tensorboard"))


def _write_scalars(writer, row: dict) -> None:
    if writer is None:
        return
    step = row["epoch"]
    writer.add_scalar("train/loss", row["loss"], step)
    writer.add_scalar("train/lambda", row["lambda"], step)
    if row.get("unlabeled_loss") is not None:
        writer.add_scalar("train/unlabeled_loss", row["unlabeled_loss"], step)
    writer.add_scalar("dev/f1", row["dev_f1"], step)
    for phase in ("teacher_forward_s", "student_forward_s", "student_backward_s", "total_s"):
        if row[phase] is not None:
            writer.add_scalar(f"time/{phase}", row[phase], step)
    writer.flush()
