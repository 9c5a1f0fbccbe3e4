"""A student's teacher: its run opened once and checked against the student
(:func:`open_teacher`), its parameters restored once, its targets for every
training row cached (the paper's step 2) or computed per batch, and the
student's head fitted to them (``distill.fit_head``) (:func:`teacher_targets`).

What a teacher may teach which student with which method is the one rule of
:func:`jaxkd.methods.scenario`; this module reads what it needs from the
teacher's files and asks it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxkd import methods
from jaxkd.data.pipeline import EncodedCorpus
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.progress import progress
from jaxkd.training.head_fit import fit_head
from jaxkd.training.run_dir import RunFiles, read_run
from jaxkd.training.state import RunState, TrainingError, log
from jaxkd.training.steps import DistillSpec, targets_of_scores_fn, teacher_fn, teacher_scores_fn
from jaxkd.training.targets import TeacherCache


def checkpoint_name(config) -> str:
    """The teacher checkpoint a student reads (``distill.teacher_checkpoint``)."""
    return config.distill.teacher_checkpoint or "best"


def open_teacher(config, labels, encoder: SubwordEncoder) -> RunFiles:
    """The teacher run of ``config.teacher_workdir``, refused (TrainingError)
    when it cannot teach this student: not a run, unfinished (unless a
    checkpoint is named), without that checkpoint, another label set, another
    tokenizer, a window shorter than the student's rows, or a combination the
    compatibility rule refuses."""
    path = Path(config.teacher_workdir)
    try:
        teacher = read_run(path)
    except FileNotFoundError as err:
        raise TrainingError(f"teacher_workdir {err}") from None
    name = checkpoint_name(config)
    if teacher.checkpoints.step(name) is None:
        raise TrainingError(f"the teacher {path} has no {name!r} checkpoint: train it first (or finish its run)")
    if not config.distill.teacher_checkpoint and not teacher.finished:
        state = teacher.checkpoints.loop_state() or {}
        done = f"stopped after epoch {state['epoch'] + 1}" if "epoch" in state else "stopped early"
        raise TrainingError(
            f"the teacher {path} is an unfinished run ({done}; no results.json): finish it by rerunning its "
            "command, or distil from it as it is with --config.distill.teacher_checkpoint=best (or latest)"
        )
    _check_inputs(config, teacher, labels, encoder)
    verdict = methods.scenario(
        config.distill.method, config.model.head, teacher.head,
        student_constrained=bool(config.model.constraints), teacher_constrained=teacher.constrained,
        fit_head=bool(config.distill.fit_head),
    )
    if isinstance(verdict, methods.Refused):
        raise TrainingError(f"{verdict.reason} (teacher: {path})")
    return teacher


def _check_inputs(config, teacher: RunFiles, labels, encoder: SubwordEncoder) -> None:
    """The teacher reads what the student reads: the same tags, the same
    sub-word ids, and rows as long as the student's."""
    if list(teacher.labels.labels) != list(labels.labels):
        raise TrainingError(
            "the student's label set differs from its teacher's:\n"
            f"  teacher ({teacher.workdir}): {list(teacher.labels.labels)}\n"
            f"  student data ({config.data.source}): {list(labels.labels)}"
        )
    difference = tokenizer_difference(teacher.encoder, encoder)
    if difference:
        raise TrainingError(
            f"the student's tokenizer ({config.model.checkpoint}) differs from its teacher's ({teacher.workdir}): "
            f"{difference}; the teacher reads the student's sub-word ids, so both must use the same tokenizer"
        )
    if teacher.encoder.window < encoder.window:
        raise TrainingError(
            f"the student's rows hold up to {encoder.window} sub-words but its teacher reads at most "
            f"{teacher.encoder.window}: set --config.model.window={teacher.encoder.window}"
        )


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


# A cache of per-word targets above this size holds the teacher's scores
# instead, for a method that can compute its targets from them in each step.
IN_STEP_ABOVE_BYTES = 1 << 30


def with_targets_in_step(spec: DistillSpec, encoded: EncodedCorpus, num_tags: int, cache: bool) -> DistillSpec:
    """``spec`` with ``targets_in_step`` set when the scenario allows it and
    its cached targets (N x N floats per word) would exceed IN_STEP_ABOVE_BYTES."""
    verdict = methods.scenario(spec.method, spec.head, spec.teacher_head)
    if not (cache and isinstance(verdict, methods.Scenario) and verdict.in_step):
        return spec
    words = sum(len(r.word_index) for rows in (encoded.rows["train"], encoded.rows.get("unlabeled", [])) for r in rows)
    size = words * num_tags * num_tags * 4
    if size <= IN_STEP_ABOVE_BYTES:
        return spec
    log(f"[jaxkd] {spec.method}: its pair marginals would cache {size / 2**30:.1f} GiB ({words} words x "
        f"{num_tags}^2 tags); caching the teacher's scores ({words * num_tags * 4 / 2**20:.0f} MiB) and computing "
        "the marginals in each step")
    return spec._replace(targets_in_step=True)


class TeacherPasses(NamedTuple):
    """What a run asks of its restored teacher, on host batches."""

    targets: Any  # (params, rest, batch) -> the method's targets
    scores: Any  # (params, rest, batch) -> methods.TeacherScores; None for a span teacher


class Targets(NamedTuple):
    """The teacher's targets of a training batch, from the cache or computed."""

    of: Any  # (batch, gold: bool) -> the method's targets (None when not distilling)
    cached: bool
    cache_s: float  # seconds this run spent caching them
    reused: bool = False  # the cache came from an earlier run of this process


# Teacher caches of this process by (teacher checkpoint, rows, method): runs
# that distil the same teacher with the same method (seeds of a study) build
# the cache once.
_CACHES: dict = {}
# The teacher's scores of this process by (teacher checkpoint, rows): runs
# that distil the same CRF or softmax teacher with other methods (the demo's
# students) derive their targets from one teacher pass.
_SCORES: dict = {}


def _remember(store: dict, key, value) -> None:
    while len(store) >= 2:  # a study runs its methods one after another; a split or two
        store.pop(next(iter(store)))
    store[key] = value


def teacher_targets(state: RunState, teacher: RunFiles | None) -> Targets:
    """Restores the teacher once, caches its targets (``distill.cache_teacher``)
    and fits the student's head to them (``distill.fit_head``)."""
    config = state.config
    if teacher is None or not (state.distilling and state.start_epoch < config.train.epochs):
        return Targets(None, False, 0.0)
    name = checkpoint_name(config)
    t_ckpt = teacher.checkpoints.directory / str(teacher.checkpoints.require(name))  # keys the cache
    t_parts, t_params = teacher.restore(name)
    place = state.placement
    t_params, t_rest = place.replicate((t_params, t_parts.rest))
    compiled_teacher = teacher_fn(t_parts, state.spec)
    compiled_scores = teacher_scores_fn(t_parts)

    def t_fn(params, rest, batch):  # a host batch: the cache reads its row ids
        return compiled_teacher(params, rest, place.rows(batch))

    def scores_fn(params, rest, batch):
        return compiled_scores(params, rest, place.rows(batch))

    # A span teacher's targets need the model; a CRF or softmax teacher's
    # follow from its scores, which every method then shares.
    passes = TeacherPasses(t_fn, scores_fn if state.spec.teacher_head != "span" else None)

    # The training set in file order, for the one-time passes (cache, head fit).
    splits = ("train", "unlabeled") if state.unlabeled_per_epoch else ("train",)
    rows = {split: state.encoded.batches(split, config.train.eval_batch_size, shuffle=False) for split in splits}
    caches, cache_s, reused = {}, 0.0, False
    if config.distill.cache_teacher:
        for split in splits:
            cache, spent = _cached_targets(state, t_ckpt, passes, t_params, t_rest, split, rows[split])
            caches[split] = cache.on_device(place)
            cache_s, reused = cache_s + (spent or 0.0), reused or spent is None

    def of(batch, gold=True):
        return caches["train" if gold else "unlabeled"].of(batch) if caches else t_fn(t_params, t_rest, batch)

    fresh = state.start_epoch == state.start_step == 0  # not a resumed run, whose head is trained already
    if methods.get(state.spec.method).fits_head and config.distill.fit_head and fresh:
        _fit_head(state, rows["train"], of)
    return Targets(of, bool(caches), cache_s, reused)


def _fit_head(state: RunState, rows, of) -> None:
    """The student's head and CRF set to the least-squares fit of the teacher's scores."""
    t0 = time.perf_counter()
    bar = progress(len(rows), "fitting the head", state.config.log.progress, unit="batch")
    fitted, info = fit_head(state.parts, state.params, state.rest, rows, of, progress=lambda: bar.update(),
                            place=state.placement)
    state.params = state.placement.replicate(fitted)
    bar.close()
    log(f"[jaxkd] fitted the student's head and CRF to the teacher's scores over {info['words']} words "
        f"({time.perf_counter() - t0:.1f}s; distill.fit_head)")


def _cached_targets(state: RunState, t_ckpt: Path, passes: TeacherPasses, t_params, t_rest, split: str, rows):
    """(the teacher's targets of every row of ``split``, the seconds this call
    spent computing them, compilation excluded, or None when an earlier run of
    this process built them).

    The targets are derived from the teacher's scores where it gives them
    (not a span teacher): one teacher pass per checkpoint and rows serves
    every method."""
    digest = hashlib.blake2b(digest_size=16)
    for b in rows:
        for array in (b.input_ids, b.word_index, b.word_mask, b.sentence_index, b.word_offset):
            digest.update(np.ascontiguousarray(array).tobytes())
    saved = t_ckpt.stat()  # a checkpoint saved again is a new directory
    source = (str(t_ckpt.resolve()), saved.st_ino, saved.st_mtime_ns, digest.hexdigest())
    targets_of = state.spec._replace(emissions_only=False, centered=False)  # what the targets depend on
    key = source + (targets_of,)
    if key in _CACHES:
        log(f"[jaxkd] teacher targets of the {split} rows: reused from an earlier run of this process")
        return _CACHES[key], None
    if passes.scores is None:
        cache = _teacher_pass(state, passes.targets, t_params, t_rest, split, rows, "targets")
        spent = cache.seconds
    else:
        scores, spent = _SCORES.get(source), 0.0
        if scores is None:
            scores = _teacher_pass(state, passes.scores, t_params, t_rest, split, rows, "scores")
            _remember(_SCORES, source, scores)
            spent = scores.seconds
        else:
            log(f"[jaxkd] teacher scores of the {split} rows: from an earlier run of this process")
        if not state.spec.targets_in_step:  # else the scores are the targets
            scores = _derived(state, scores, split, rows)
            spent += scores.seconds
        cache = scores
    _remember(_CACHES, key, cache)
    return cache, spent


def _teacher_pass(state: RunState, fn, t_params, t_rest, split: str, rows, what: str) -> TeacherCache:
    """The teacher's ``fn`` (targets or scores) over every row of ``split``,
    compiled first for each batch shape."""
    for b in {b.input_ids.shape + b.word_mask.shape: b for b in rows}.values():
        jax.block_until_ready(fn(t_params, t_rest, b))
    bar = progress(len(rows), f"teacher {what} ({split})", state.config.log.progress, unit="batch")

    def host_fn(*args):  # whole on every process
        return state.placement.to_host(fn(*args))

    cache = TeacherCache.build(host_fn, t_params, t_rest, rows, progress=lambda: bar.update())
    bar.close()
    log(f"[jaxkd] cached teacher {what} of {len(cache)} {split} rows in {cache.seconds:.1f}s")
    return cache


def _derived(state: RunState, scores: TeacherCache, split: str, rows) -> TeacherCache:
    """The method's targets of every row, computed from the teacher's cached scores."""
    place = state.placement
    on_device = scores.on_device(place)
    derive = targets_of_scores_fn(state.spec)

    def fn(_params, _rest, batch):
        return derive(on_device.of(batch), place.rows(batch).word_mask)

    return _teacher_pass(state, fn, None, None, split, rows, "targets from its scores")
