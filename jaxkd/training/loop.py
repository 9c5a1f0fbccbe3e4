"""One training run: data, models, the epoch loop, evaluation, checkpoints and
``<workdir>/results.json``.

Per-epoch timings follow shared/DESIGN.md: compilation is excluded (every
compiled variant and shape is warmed up before the epoch starts), each phase is
timed on compiled calls with ``block_until_ready``:

* ``teacher_forward_s``: computing the teacher targets of every batch (0 when
  they come from the cache; its one-time cost is ``teacher_cache_s``);
* ``student_forward_s``: the loss alone, on its own compiled function;
* ``student_backward_s``: the compiled train step (gradient + update) minus
  the forward;
* ``total_s``: the sum of the three.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxkd import losses, offline
from jaxkd.config import base as base_config
from jaxkd.data.pipeline import EncodedCorpus, encode_corpus
from jaxkd.data.sources import load_corpus
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.evaluate import entity_scores
from jaxkd.progress import MODES as PROGRESS_MODES
from jaxkd.progress import progress
from jaxkd.training import checkpoint, model_files
from jaxkd.training.compiles import CompileLog
from jaxkd.training.head_fit import fit_head
from jaxkd.training.steps import DistillSpec, OptimizerSettings, copy_tree, dropout_key, split, student_fns, teacher_fn
from jaxkd.training.targets import TeacherCache


class TrainingError(RuntimeError):
    """A run cannot go on (bad configuration, NaN loss, incompatible teacher)."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(total: int, desc: str, mode: str):
    return progress(total, desc, mode, unit="batch")


# ---------------------------------------------------------------------------
# configuration and inputs
# ---------------------------------------------------------------------------


def validate(config: ml_collections.ConfigDict) -> None:
    if config.mode not in ("teacher", "student"):
        raise TrainingError(f"mode must be 'teacher' or 'student'; got {config.mode!r}")
    if config.distill.method not in losses.METHODS:
        raise TrainingError(f"distill.method must be one of {losses.METHODS}; got {config.distill.method!r}")
    if config.distill.lambda_schedule not in losses.SCHEDULES:
        raise TrainingError(f"distill.lambda_schedule must be one of {losses.SCHEDULES}")
    if config.mode == "teacher" and config.distill.method != "vanilla":
        raise TrainingError("a teacher is trained with distill.method='vanilla' (gold NLL)")
    if config.mode == "student" and config.distill.method != "vanilla" and not config.teacher_workdir:
        raise TrainingError(f"method {config.distill.method!r} needs teacher_workdir (the teacher run's workdir)")
    for key, (low, high, meaning) in RANGES.items():
        value = _get(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not low <= value <= high:
            raise TrainingError(f"{key} must be {meaning}; got {value!r} (--config.{key}=...)")
    for key, choices in _choices().items():
        if _get(config, key) not in choices:
            raise TrainingError(f"{key} must be one of {', '.join(map(str, choices))}; got {_get(config, key)!r} (--config.{key}=...)")
    if config.mode == "student" and config.distill.method != "vanilla" and config.train.epochs == 1 and config.distill.lambda_schedule == "paper":
        log("[jaxkd] warning: with train.epochs = 1 the 'paper' schedule gives lambda 0 to the only epoch: the student "
            "learns from the gold tags alone (--config.distill.lambda_schedule=constant to distil)")


INF = float("inf")
# Numeric keys: (lowest, highest, as the error message says it).
RANGES = {
    "seed": (0, INF, "an integer >= 0"),
    "data.max_train_sentences": (0, INF, ">= 0 (0: all)"),
    "data.min_bucket_length": (4, INF, ">= 4"),
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
}


def _choices() -> dict:
    from jaxkd import crf
    from jaxkd.training.model_files import DTYPES

    return {
        "model.dtype": tuple(DTYPES),
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
    if name == "offline:minilm":
        return offline.minilm_path()
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


def _limit(corpus, n):
    import dataclasses

    notes = tuple(corpus.notes) + (f"train limited to its first {n} sentences (data.max_train_sentences)",)
    return dataclasses.replace(corpus, train=list(corpus.train[:n]), notes=notes)


# Keys that a resumed run may change (e.g. a lower learning rate after a NaN).
RESUMABLE_KEYS = frozenset({
    "train.epochs", "train.encoder_lr", "train.head_lr", "train.eval_test_every_epoch",
    "timing.forward_batches", "log.progress",
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
        pinned = checkpoint.exists(workdir / "checkpoints" / "latest") or checkpoint.exists(workdir / "checkpoints" / "latest.old")
        if diff and pinned and not set(diff) <= RESUMABLE_KEYS:
            raise TrainingError(
                f"{workdir} holds a run with a different configuration (differs in: {', '.join(diff)}); "
                "use a new --workdir, or the same configuration to resume "
                f"(a resumed run may change only {', '.join(sorted(RESUMABLE_KEYS))})"
            )
        if diff:
            what = "resuming with" if pinned else "it saved no checkpoint; starting again with"
            log(f"[jaxkd] note: {workdir}: {what} a changed configuration ({', '.join(diff)})")
    tmp = saved.with_name(saved.name + ".tmp")
    tmp.write_text(config.to_json(indent=2))
    tmp.replace(saved)


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


def predict_split(decode, params, rest, encoded: EncodedCorpus, split_name: str, batch_size: int) -> list[list[str]]:
    """Viterbi tags of every word of a split, as label strings per sentence."""
    batches = encoded.batches(split_name, batch_size, shuffle=False)
    values = [np.asarray(decode(params, rest, b)) for b in batches]
    per_sentence = encoded.stitch(split_name, batches, values)
    return [encoded.corpus.labels.decode(ids) for ids in per_sentence]


def score_split(decode, params, rest, encoded, split_name, batch_size) -> dict:
    pred = predict_split(decode, params, rest, encoded, split_name, batch_size)
    gold = [list(s.tags) for s in encoded.corpus.splits[split_name]]
    return entity_scores(gold, pred)


# ---------------------------------------------------------------------------
# the teacher of a student
# ---------------------------------------------------------------------------

# Methods whose teacher targets are distributions over tag moves: a move the
# student forbids but the teacher allows makes their loss unbounded below.
DISTRIBUTION_METHODS = ("kbest", "posterior", "structkd")


def check_teacher(config, labels, encoder: SubwordEncoder) -> None:
    """Refuses a teacher that cannot teach this student: unfinished (unless a
    checkpoint is named), without checkpoint, another label set, another
    tokenizer, a window shorter than the student's rows, or an unconstrained
    CRF under a constrained student for a method that matches distributions."""
    teacher = Path(config.teacher_workdir)
    if not (teacher / "model" / "labels.json").is_file():
        raise TrainingError(f"teacher_workdir {teacher} is not a jaxkd training workdir (no model/labels.json)")
    name = config.distill.teacher_checkpoint or "best"
    if not checkpoint.exists(teacher / "checkpoints" / name):
        raise TrainingError(f"the teacher {teacher} has no {name!r} checkpoint: train it first (or finish its run)")
    if not config.distill.teacher_checkpoint and not (teacher / "results.json").is_file():
        state = checkpoint.read_state(teacher / "checkpoints" / "latest") or checkpoint.read_state(teacher / "checkpoints") or {}
        done = f"stopped after epoch {state['epoch'] + 1}" if "epoch" in state else "stopped early"
        raise TrainingError(
            f"the teacher {teacher} is an unfinished run ({done}; no results.json): finish it by rerunning its "
            "command, or distil from it as it is with --config.distill.teacher_checkpoint=best (or latest)"
        )
    teacher_labels = model_files.read_labels(teacher)
    if list(teacher_labels.labels) != list(labels.labels):
        raise TrainingError(
            "the student's label set differs from its teacher's:\n"
            f"  teacher ({teacher}): {list(teacher_labels.labels)}\n"
            f"  student data ({config.data.source}): {list(labels.labels)}"
        )
    t_encoder = SubwordEncoder.from_pretrained(model_files.model_dir(teacher))
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
    meta = json.loads((model_files.model_dir(teacher) / "tagger.json").read_text())
    if config.model.constraints and not meta["constrained"] and config.distill.method in DISTRIBUTION_METHODS:
        raise TrainingError(
            f"a constrained student (model.constraints = True) cannot learn {config.distill.method!r} from the "
            f"unconstrained teacher {teacher} (trained with model.constraints = False): the teacher puts mass on moves "
            "the student forbids, and the loss has no lower bound. Use --config.model.constraints=false, "
            "a constrained teacher, or the efficient method"
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


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str | Path, *, resume: bool = True, stop_after_epochs: int | None = None) -> dict:
    """Trains (or resumes) a run and returns the content of ``results.json``.

    ``resume=False`` refuses a workdir that already holds a checkpoint.
    ``stop_after_epochs`` stops early as an interruption would (for tests).
    """
    with CompileLog() as compiles:
        return _run(config, workdir, resume, stop_after_epochs, compiles)


def _run(config, workdir, resume: bool, stop_after_epochs: int | None, compiles: CompileLog) -> dict:
    validate(config)
    t_start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _check_same_config(workdir, config)
    spec = DistillSpec(
        method=config.distill.method,
        emissions_only=bool(config.distill.emissions_only),
        kbest_k=int(config.distill.kbest_k),
        kbest_weights=config.distill.kbest_weights,
        temperature=float(config.distill.temperature),
        algorithm=config.distill.algorithm,
    )
    distilling = config.mode == "student" and spec.method != "vanilla"

    corpus = load_data(config)
    labels = corpus.labels
    enc_dir = encoder_dir(config.model.checkpoint)
    window = config.model.window or None
    encoder = SubwordEncoder.from_pretrained(enc_dir, window)
    if config.mode == "student" and config.teacher_workdir:
        check_teacher(config, labels, encoder)
    encoded = encode_corpus(corpus, encoder, min_length=config.data.min_bucket_length)
    log(f"[jaxkd] {corpus.name}: {len(corpus.train)}/{len(corpus.dev)}/{len(corpus.test)} sentences, "
        f"{len(labels)} tags, batch shapes (T, W) {list(encoded.buckets.shapes)}")
    for note in corpus.notes:
        log(f"[jaxkd] note: {note}")

    tagger = model_files.build_tagger(
        enc_dir,
        labels,
        num_layers=config.model.num_layers or None,
        dropout=config.model.dropout,
        constrained=config.model.constraints,
        dtype=config.model.dtype,
        seed=config.seed,
    )
    model_files.write_model_files(workdir, enc_dir, tagger, labels, dtype=config.model.dtype)
    parts = split(tagger)
    del tagger
    bs = config.train.batch_size
    steps_per_epoch = len(encoded.batches("train", bs, shuffle=True, seed=config.seed, epoch=0))
    settings = OptimizerSettings(
        encoder_lr=float(config.train.encoder_lr),
        head_lr=float(config.train.head_lr),
        total_steps=steps_per_epoch * config.train.epochs,
        warmup_fraction=float(config.train.warmup_fraction),
        weight_decay=float(config.train.weight_decay),
        clip_norm=float(config.train.clip_norm),
    )
    fns = student_fns(parts, spec, settings)  # compiled functions shared with earlier runs of this process
    params, rest = parts.params, parts.rest
    opt_state = fns.optimizer.init(params)

    ckpt_dir = workdir / "checkpoints"
    history: list[dict] = []
    best = {"epoch": -1, "dev_f1": -1.0}
    start_epoch = 0
    for name in ("best", "latest"):
        checkpoint.recover(ckpt_dir / name)  # a save cut short between its renames
    # The loop state is saved inside `latest` (one atomic step with the weights);
    # runs from before that kept it beside, in checkpoints/state.json.
    saved = checkpoint.read_state(ckpt_dir / "latest") or checkpoint.read_state(ckpt_dir)
    if checkpoint.exists(ckpt_dir / "latest") and saved is not None:
        if not resume:
            raise TrainingError(f"{workdir} already holds a run; rerun with --resume to continue it, or use a new --workdir")
        restored = checkpoint.restore(ckpt_dir / "latest", {"params": params, "opt_state": opt_state})
        params, opt_state = restored["params"], restored["opt_state"]
        history, best, start_epoch = saved["history"], saved["best"], saved["epoch"] + 1
        log(f"[jaxkd] resuming {workdir} after epoch {start_epoch} (best dev F1 so far {best['dev_f1']:.2f})")

    # Teacher: restored from its best checkpoint; targets cached or per batch.
    teacher = None
    cache = None
    teacher_cache_s = 0.0
    if distilling and start_epoch < config.train.epochs:
        t_tagger = model_files.abstract_tagger(config.teacher_workdir)
        t_parts = split(t_tagger)
        t_ckpt = Path(config.teacher_workdir) / "checkpoints" / (config.distill.teacher_checkpoint or "best")
        t_params = checkpoint.restore(t_ckpt, {"params": t_parts.params}, ignore_extra=True)["params"]
        teacher = (teacher_fn(t_parts, spec), t_params, t_parts.rest)
        # The training set in file order, for the one-time passes (cache, head fit).
        rows = encoded.batches("train", config.train.eval_batch_size, shuffle=False)
        if config.distill.cache_teacher:
            for b in {b.input_ids.shape + b.word_mask.shape: b for b in rows}.values():  # compile first
                jax.block_until_ready(teacher[0](teacher[1], teacher[2], b))
            bar = _progress(len(rows), "teacher targets", config.log.progress)
            cache = TeacherCache.build(*teacher, rows, progress=lambda: bar.update())
            bar.close()
            teacher_cache_s = cache.seconds
            log(f"[jaxkd] cached teacher targets of {len(cache.per_row)} rows in {teacher_cache_s:.1f}s")

    def teacher_targets(batch):
        """The teacher's targets of a training batch: from the cache, or computed."""
        if cache is not None:
            return cache.assemble(batch)
        return teacher[0](teacher[1], teacher[2], batch)

    if teacher is not None and spec.method == "efficient" and config.distill.fit_head and start_epoch == 0:
        t0 = time.perf_counter()
        bar = _progress(len(rows), "fitting the head", config.log.progress)
        params, info = fit_head(parts, params, rest, rows, teacher_targets, progress=lambda: bar.update())
        bar.close()
        log(f"[jaxkd] fitted the student's head and CRF to the teacher's scores over {info['words']} words "
            f"({time.perf_counter() - t0:.1f}s; distill.fit_head)")

    writer = _tensorboard(workdir) if config.log.tensorboard else None
    results_path = workdir / "results.json"
    warmed: set = set()
    epochs = config.train.epochs
    for epoch in range(start_epoch, epochs):
        lam = losses.kd_weight(config.distill.lambda_schedule, epoch, epochs, config.distill.lambda_value) if distilling else 0.0
        use_kd, use_nll = lam > 0.0, lam < 1.0
        batches = encoded.batches("train", bs, shuffle=True, seed=config.seed, epoch=epoch)

        def targets_of(batch):
            return teacher_targets(batch) if use_kd else {}

        # Warm-up: compile every shape of this variant outside the timed epoch.
        probe = _probe_batches(batches, config.timing.forward_batches)
        probe_shapes = {batches[i].input_ids.shape + batches[i].word_mask.shape for i in probe}
        for b in {b.input_ids.shape + b.word_mask.shape: b for b in batches}.values():
            key = (b.input_ids.shape, b.word_mask.shape, use_kd, use_nll)
            if key in warmed:
                continue
            tg = jax.block_until_ready(targets_of(b))
            k = dropout_key(config.seed, 0)
            if b.input_ids.shape + b.word_mask.shape in probe_shapes:
                jax.block_until_ready(fns.forward_loss(params, rest, b, tg, lam, k, use_kd=use_kd, use_nll=use_nll))
            p_copy, o_copy = copy_tree((params, opt_state))
            jax.block_until_ready(fns.train_step(p_copy, rest, o_copy, b, tg, lam, k, use_kd=use_kd, use_nll=use_nll))
            warmed.add(key)

        n_fwd = len(probe)
        t_teacher = t_fwd = t_step = t_step_probe = 0.0
        loss_sum = 0.0
        bar = _progress(len(batches), f"epoch {epoch + 1}/{epochs}", config.log.progress)
        wall0 = time.perf_counter()
        for i, batch in enumerate(batches):
            step_key = dropout_key(config.seed, epoch * steps_per_epoch + i)
            t0 = time.perf_counter()
            tg = jax.block_until_ready(targets_of(batch))
            if use_kd and cache is None:
                t_teacher += time.perf_counter() - t0
            if i in probe:
                t0 = time.perf_counter()
                jax.block_until_ready(fns.forward_loss(params, rest, batch, tg, lam, step_key, use_kd=use_kd, use_nll=use_nll))
                t_fwd += time.perf_counter() - t0
            t0 = time.perf_counter()
            params, opt_state, loss = fns.train_step(params, rest, opt_state, batch, tg, lam, step_key, use_kd=use_kd, use_nll=use_nll)
            loss = float(loss)  # blocks
            dt = time.perf_counter() - t0
            t_step += dt
            if i in probe:
                t_step_probe += dt
            if not math.isfinite(loss):
                bar.close()
                kept = (
                    f"The last good checkpoint is kept in {ckpt_dir} (latest: after epoch {len(history)}; best: epoch {best['epoch'] + 1}); "
                    "rerunning in this workdir resumes from it."
                    if history
                    else "No checkpoint was saved (no epoch finished)."
                )
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {i + 1}; stopping. {kept} "
                    "Try lower learning rates (--config.train.encoder_lr=... --config.train.head_lr=...)."
                )
            loss_sum += loss
            bar.update()
            bar.set_postfix_str(f"loss {loss:.4f}")
        wall = time.perf_counter() - wall0
        bar.close()
        # Extrapolate the forward share from the timed batches to the epoch.
        if n_fwd == 0:
            fwd = None
        else:
            fwd = t_fwd if n_fwd == len(batches) else (t_fwd / max(t_step_probe, 1e-12)) * t_step
            fwd = min(fwd, t_step)
        dev = score_split(fns.decode, params, rest, encoded, "dev", config.train.eval_batch_size)
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / len(batches),
            "lambda": lam,
            "dev_f1": dev["f1"],
            "teacher_forward_s": t_teacher,
            "student_forward_s": fwd,
            "student_backward_s": None if fwd is None else t_step - fwd,
            "total_s": t_teacher + t_step,
            "wall_s": wall,
            "forward_timed_batches": n_fwd,
        }
        if config.train.eval_test_every_epoch:
            row["test_f1"] = score_split(fns.decode, params, rest, encoded, "test", config.train.eval_batch_size)["f1"]
        history.append(row)
        improved = dev["f1"] > best["dev_f1"]
        if improved:
            best = {"epoch": epoch, "dev_f1": dev["f1"]}
            checkpoint.save(ckpt_dir / "best", {"params": params})
        checkpoint.save(ckpt_dir / "latest", {"params": params, "opt_state": opt_state}, state={"epoch": epoch, "history": history, "best": best})
        _write_scalars(writer, row)
        log(
            f"[jaxkd] epoch {epoch + 1}/{epochs}  loss {row['loss']:.4f}  lambda {lam:.2f}  dev F1 {dev['f1']:.2f}"
            f"{'  (best)' if improved else ''}  time {row['total_s']:.1f}s (teacher {t_teacher:.1f}, "
            + (f"forward {fwd:.1f}, backward {t_step - fwd:.1f})" if fwd is not None else "forward + backward not split)")
        )
        if stop_after_epochs is not None and epoch + 1 - start_epoch >= stop_after_epochs and epoch + 1 < epochs:
            return {"interrupted_after_epoch": epoch + 1}

    # Final: the best dev epoch is scored on dev and test.
    best_params = checkpoint.restore(ckpt_dir / "best", {"params": params})["params"]
    dev = score_split(fns.decode, best_params, rest, encoded, "dev", config.train.eval_batch_size)
    test = score_split(fns.decode, best_params, rest, encoded, "test", config.train.eval_batch_size)
    results = {
        "mode": config.mode,
        "method": spec.method,
        "dataset": corpus.name,
        "encoder": str(config.model.checkpoint),
        "num_layers": config.model.num_layers or None,
        "best_epoch": best["epoch"] + 1,
        "dev": dev,
        "test": test,
        "epochs": history,
        "teacher_cache_s": teacher_cache_s,
        "timing_note": "seconds of compiled calls after warm-up; student_backward_s = train step - forward",
        "notes": list(corpus.notes),
        "device": str(jax.devices()[0].device_kind),
        "jax_version": jax.__version__,
    }
    results["run_wall_s"] = time.perf_counter() - t_start
    results["compiles"] = compiles.summary()  # XLA compilations, persistent-cache hits, seconds
    results_path.write_text(json.dumps(results, indent=2))
    if writer is not None:
        writer.close()
    return results


def _probe_batches(batches, count: int) -> set[int]:
    """Indices of the batches whose forward pass is timed on its own: all when
    ``count < 0``, else the first ``count`` of the most common shape (one extra
    compilation instead of one per shape)."""
    if count < 0:
        return set(range(len(batches)))
    shapes = [b.input_ids.shape + b.word_mask.shape for b in batches]
    common = max(set(shapes), key=shapes.count)
    return set([i for i, s in enumerate(shapes) if s == common][:count])


def _tensorboard(workdir: Path):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # optional: runs still write results.json
        return None
    return SummaryWriter(str(workdir / "tensorboard"))


def _write_scalars(writer, row: dict) -> None:
    if writer is None:
        return
    step = row["epoch"]
    writer.add_scalar("train/loss", row["loss"], step)
    writer.add_scalar("train/lambda", row["lambda"], step)
    writer.add_scalar("dev/f1", row["dev_f1"], step)
    for phase in ("teacher_forward_s", "student_forward_s", "student_backward_s", "total_s"):
        if row[phase] is not None:
            writer.add_scalar(f"time/{phase}", row[phase], step)
    writer.flush()
