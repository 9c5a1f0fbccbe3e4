"""The compiled functions of a training run.

The tagger is split once into a graph definition and pytrees of parameters
(``nnx.Param``) and everything else (dropout stream, constraints); every
function below is a pure ``jax.jit`` over those pytrees, so a step costs one
compiled call and no Python graph traversal.

Which terms a step computes is static: ``use_kd`` and ``use_nll`` come from
the lambda of the epoch (lambda = 1: no gold NLL, hence for ``efficient`` no
log-partition at all; lambda = 0: no teacher input at all), so each epoch runs
one of at most three compiled variants. Whether a batch has gold tags is not:
an unlabelled batch runs its shape's program with ``gold`` False, which
skips the NLL at run time (``lax.cond``), so labelled and unlabelled batches
of a shape compile once.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxkd import losses, methods
from jaxkd.crf import CRFScores
from jaxkd.models.tagger import Tagger


class DistillSpec(NamedTuple):
    """The static choices of a distillation method (hashable: part of the jit key)."""

    method: str = "vanilla"
    emissions_only: bool = False
    centered: bool = False
    kbest_k: int = 3
    kbest_weights: str = "original"
    temperature: float = 1.0
    algorithm: str = "sequential"
    # The teacher gives its scores (methods.TeacherScores) and each step
    # computes the method's targets from them (a method with Method.in_step;
    # the loop chooses it when the cached targets would be large).
    targets_in_step: bool = False
    # The student's model.head: "crf", "softmax" (each method's term for a
    # softmax student: Method.token_kd) or "span" (gold spans only).
    head: str = "crf"
    # The teacher's model.head: a "span" teacher gives BIO marginals
    # (Method.span_targets, Structural KD's scenario 4); "crf" and "softmax"
    # teachers give CRF scores (a softmax head's transitions are zero).
    teacher_head: str = "crf"


class Split(NamedTuple):
    """A tagger taken apart for pure functions."""

    train_def: Any  # graph definition in train mode (dropout on)
    eval_def: Any  # graph definition in eval mode
    params: Any  # nnx.State of nnx.Param
    rest: Any  # nnx.State of everything else


def split(tagger: Tagger) -> Split:
    tagger.train()
    train_def, params, rest = nnx.split(tagger, nnx.Param, ...)
    tagger.eval()
    eval_def = nnx.graphdef(tagger)
    return Split(train_def, eval_def, params, rest)


def path_names(path) -> list[str]:
    """The names along a pytree key path (dict keys, attribute names, indices)."""
    return [str(getattr(p, "key", getattr(p, "name", p))) for p in path]


@jax.jit
def dropout_key(seed: int, step: int):
    """The dropout key of a global step. XLA's RngBitGenerator (``rbg``) keys:
    threefry bits for every dropout mask made each train step take seconds
    longer to compile on a CPU; dropout needs no cryptographic quality.
    Compiled: one asynchronous call per step; run eagerly, the same ops were
    several dispatches, each waiting for the step before."""
    return jax.random.fold_in(jax.random.key(seed, impl="unsafe_rbg"), step)


@jax.jit
def copy_tree(tree):
    """A copy of a pytree in one compiled call (the train step donates its inputs)."""
    return jax.tree.map(jnp.copy, tree)


def _with_dropout_key(rest, key):
    """``rest`` with the encoder's dropout stream reset to ``key`` (count 0).

    Dropout is then a pure function of the key given to the step: runs are
    reproducible across interruptions without saving any RNG state.
    """

    def put(path, leaf):
        names = path_names(path)
        if "dropout_rngs" in names:
            if "key" in names:
                return key
            if "count" in names:
                return jnp.zeros_like(leaf)
        return leaf

    return jax.tree_util.tree_map_with_path(put, rest)


def merge(graphdef, params, rest, dropout_key=None) -> Tagger:
    """The tagger of a graph definition and its state (``dropout_key``: its
    dropout stream reset to that key, see :func:`dropout_key`)."""
    if dropout_key is not None:
        rest = _with_dropout_key(rest, dropout_key)
    return nnx.merge(graphdef, params, rest)


def kd_loss(spec: DistillSpec, student: CRFScores, mask, targets, constraints):
    """The method's distillation term of a batch (:func:`jaxkd.methods.scenario`),
    from the teacher ``targets`` of the batch (its targets type)."""
    scenario = methods.require(spec.method, spec.head, spec.teacher_head)
    if spec.targets_in_step:
        targets = targets.derive(scenario.targets, spec, mask)
    return scenario.kd(spec, student, mask, targets, constraints)


def objective(spec: DistillSpec, model, batch, targets, lam, *, use_kd: bool, use_nll: bool, gold=True):
    """``lam * KD + (1 - lam) * NLL`` of ``model`` (a tagger of any head) on
    ``batch``, computing only the terms that are used; the NLL is the head's
    own loss of the gold tags. With both terms, ``gold`` (a traced bool) False
    marks a batch without gold tags: its loss is the KD term alone, and the
    NLL is not computed (a branch taken at run time, in the same program)."""
    scores = model(batch)
    mask = batch.word_mask

    def nll():
        return jnp.sum(model.gold_loss(scores, batch, algorithm=spec.algorithm)) / losses.real_rows(mask)

    if not use_kd:
        return nll()
    kd = kd_loss(spec, scores, mask, targets, model.constraints)
    if not use_nll:
        return kd
    return jax.lax.cond(gold, lambda: (1.0 - lam) * nll() + lam * kd, lambda: kd)


class StudentFns(NamedTuple):
    train_step: (
        Any  # (params, rest, opt_state, batch, targets, lam, key, *, use_kd, use_nll, gold) -> (params, opt, loss)
    )
    forward_loss: Any  # same inputs minus opt_state -> loss (timing of the forward phase)
    decode: Any  # (params, rest, batch) -> tags [B, W] int32
    optimizer: Any = None  # the optax transformation of train_step (None: decoding only)


class OptimizerSettings(NamedTuple):
    """The arguments of :func:`make_optimizer` (hashable: part of the key of
    the compiled functions)."""

    encoder_lr: float
    head_lr: float
    total_steps: int
    warmup_fraction: float
    weight_decay: float
    clip_norm: float


# Compiled functions by (kind, graph definitions, method, optimizer settings),
# reused by every run of a process with the same model graph and choices: a
# second run traces and compiles nothing (jit caches per function object, so
# new closures would start from scratch).
_COMPILED: dict = {}


def shared(key, build):
    """``build()`` once per process for ``key`` (compiled functions whose
    jit caches every later caller then reuses)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def student_fns(
    parts: Split, spec: DistillSpec, optimizer: OptimizerSettings | optax.GradientTransformation | None
) -> StudentFns:
    """The compiled train step, forward loss and decoder of a student.

    With ``optimizer`` given as :class:`OptimizerSettings` (or None, for
    decoding only) the functions are shared with every earlier call for the
    same graph, method and settings; an optax transformation builds new ones.
    """
    if optimizer is None or isinstance(optimizer, OptimizerSettings):
        key = ("student", parts.train_def, parts.eval_def, spec, optimizer)
        transformation = None if optimizer is None else make_optimizer(parts.params, **optimizer._asdict())
        return shared(key, lambda: _student_fns(parts, spec, transformation))
    return _student_fns(parts, spec, optimizer)


def _student_fns(parts: Split, spec: DistillSpec, optimizer: optax.GradientTransformation | None) -> StudentFns:
    def loss_fn(params, rest, batch, targets, lam, key, use_kd, use_nll, gold):
        model = merge(parts.train_def, params, rest, key)
        return objective(spec, model, batch, targets, lam, use_kd=use_kd, use_nll=use_nll, gold=gold)

    @functools.partial(jax.jit, static_argnames=("use_kd", "use_nll"), donate_argnums=(0, 2))
    def train_step(params, rest, opt_state, batch, targets, lam, key, *, use_kd, use_nll, gold=True):
        loss, grads = jax.value_and_grad(loss_fn)(params, rest, batch, targets, lam, key, use_kd, use_nll, gold)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @functools.partial(jax.jit, static_argnames=("use_kd", "use_nll"))
    def forward_loss(params, rest, batch, targets, lam, key, *, use_kd, use_nll, gold=True):
        return loss_fn(params, rest, batch, targets, lam, key, use_kd, use_nll, gold)

    @jax.jit
    def decode(params, rest, batch):
        model = merge(parts.eval_def, params, rest)
        return model.decode(model(batch), batch.word_mask)

    return StudentFns(train_step, forward_loss, decode, optimizer)


def teacher_fn(parts: Split, spec: DistillSpec):
    """Compiled ``(params, rest, batch) -> targets``: what the method needs from
    the teacher for one batch (teacher in eval mode, no gradient); shared by
    every call with the same graph and method."""
    return shared(("teacher", parts.eval_def, spec), lambda: _teacher_fn(parts, spec))


def _teacher_fn(parts: Split, spec: DistillSpec):
    scenario = methods.require(spec.method, spec.head, spec.teacher_head)
    if spec.targets_in_step and not scenario.in_step:
        raise ValueError(f"method {spec.method!r} cannot compute its targets inside the step here")

    @jax.jit
    def targets(params, rest, batch):
        model = merge(parts.eval_def, params, rest)
        scores = jax.lax.stop_gradient(model(batch))
        if spec.teacher_head == "span":
            return scenario.targets(spec, model, scores, batch.word_mask)
        if spec.targets_in_step:  # the step computes the targets from these
            return methods.TeacherScores.of(scores, model.constraints)
        return scenario.targets(spec, scores, batch.word_mask, model.constraints)

    return targets


def teacher_scores_fn(parts: Split):
    """Compiled ``(params, rest, batch) -> methods.TeacherScores``: a CRF or
    softmax teacher's scores and allowed moves for one batch (eval mode, no
    gradient), whatever the method: the one teacher pass from which every
    method's targets are derived (:func:`targets_of_scores_fn`)."""
    return shared(("teacher scores", parts.eval_def), lambda: _teacher_scores_fn(parts))


def _teacher_scores_fn(parts: Split):
    @jax.jit
    def scores(params, rest, batch):
        model = merge(parts.eval_def, params, rest)
        return methods.TeacherScores.of(jax.lax.stop_gradient(model(batch)), model.constraints)

    return scores


def targets_of_scores_fn(spec: DistillSpec):
    """Compiled ``(scores: methods.TeacherScores, word_mask: [B, W] bool) ->
    targets``: what :func:`teacher_fn` gives for the batch the scores came from."""
    scenario = methods.require(spec.method, spec.head, spec.teacher_head)
    return shared(("targets of scores", spec), lambda: jax.jit(
        lambda scores, word_mask: scores.derive(scenario.targets, spec, word_mask)))


def group_labels(params):
    """``"encoder"`` for every leaf under the tagger's encoder, ``"head"`` for
    the emission layer and the CRF parameters (same structure as ``params``)."""

    def label(path, _):
        return "encoder" if path_names(path)[0] == "encoder" else "head"

    return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(
    params,
    *,
    encoder_lr: float,
    head_lr: float,
    total_steps: int,
    warmup_fraction: float,
    weight_decay: float,
    clip_norm: float,
):
    """AdamW with separate learning rates for the encoder and for the emission
    layer + CRF, each with linear warm-up then linear decay to 0, after global
    gradient-norm clipping.

    The same update as ``optax.multi_transform`` over two ``optax.adamw`` (Adam
    is element-wise, both groups share its betas, epsilon and weight decay),
    written as one Adam followed by ``multi_transform`` over the two learning
    rates alone: one Adam state instead of two masked ones, which compiles
    faster.
    """

    def schedule(peak):
        warm = max(1, int(round(warmup_fraction * total_steps)))
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, warm), optax.linear_schedule(peak, 0.0, max(1, total_steps - warm))],
            [warm],
        )

    return optax.chain(
        optax.clip_by_global_norm(clip_norm) if clip_norm > 0 else optax.identity(),
        optax.scale_by_adam(),
        optax.add_decayed_weights(weight_decay),
        optax.multi_transform(
            {
                "encoder": optax.scale_by_learning_rate(schedule(encoder_lr)),
                "head": optax.scale_by_learning_rate(schedule(head_lr)),
            },
            group_labels(params),
        ),
    )
