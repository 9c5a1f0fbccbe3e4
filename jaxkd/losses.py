"""Distillation objectives built on the CRF kernels (docs/methods.md says
what each computes and why).

Every function takes a :class:`~jaxkd.crf.CRFScores` for the student (and
the teacher's scores or outputs where needed) and returns a per-sentence
``[B]`` loss, except :func:`efficient_kd`, which is normalised by the number
of sub-structures in the whole batch (as the method defines it) and returns a
scalar. Padded positions never count, and all-padding rows contribute exactly
0.

The methods themselves (what each needs from the teacher, which term it
trains with) are listed once, in :mod:`jaxkd.methods`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxkd import crf
from jaxkd.crf import CRFScores
from jaxkd.crf.spans import valid_spans

# Full float32 for the small contractions of the losses: a GPU would otherwise
# multiply float32 matrices in TF32 (10-bit mantissa).
EXACT = jax.lax.Precision.HIGHEST


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def real_rows(mask):
    """The number of rows with at least one word (at least 1): the divisor of a
    batch's mean over sentences. ``mask``: [B, L] bool."""
    return jnp.maximum(jnp.sum(jnp.any(mask, axis=-1)), 1)


# ---------------------------------------------------------------------------
# vanilla
# ---------------------------------------------------------------------------


def nll(scores: CRFScores, mask, tags, *, constraints=None, algorithm: str = "sequential"):
    """Negative log-likelihood of gold tags: ``log Z - s(y)``.

    Args:
      scores: the model's CRF scores, emissions [B, L, N].
      mask: [B, L] bool prefix mask.
      tags: [B, L] int gold tags.

    Returns:
      [B] float32, 0 for all-padding rows.
    """
    log_z = crf.log_partition(scores.emissions, mask, *scores.crf_args(), algorithm=algorithm, constraints=constraints)
    gold = crf.sequence_score(scores.emissions, mask, tags, *scores.crf_args(), constraints=constraints)
    return log_z - gold


def token_nll(logits, mask, tags):
    """Token cross-entropy of the gold tags, summed over the valid words: the
    softmax head's ``-sum_l log softmax(logits_l)[y_l]``.

    Args:
      logits: [B, L, N]; mask: [B, L] bool; tags: [B, L] int.

    Returns:
      [B] float32, 0 for all-padding rows.
    """
    logp = jax.nn.log_softmax(_f32(logits), axis=-1)
    gold = jnp.take_along_axis(logp, jnp.asarray(tags)[..., None], axis=-1)[..., 0]
    return -jnp.where(jnp.asarray(mask, bool), gold, 0.0).sum(-1)


def span_nll(logits, mask, labels):
    """Cross-entropy of the gold span labels, summed over every span i..j
    (i <= j) of each sentence: the span head's ``-sum_{i<=j}
    log softmax(logits_ij)[label_ij]``.

    Args:
      logits: [B, L, L, C + 1] (label 0 "no entity"); mask: [B, L] bool
        prefix mask; labels: [B, L, L] int (from
        :func:`jaxkd.crf.spans.gold_spans`).

    Returns:
      [B] float32, 0 for all-padding rows.
    """
    mask = jnp.asarray(mask, bool)
    logp = jax.nn.log_softmax(_f32(logits), axis=-1)
    gold = jnp.take_along_axis(logp, jnp.asarray(labels)[..., None], axis=-1)[..., 0]
    return -jnp.where(valid_spans(mask.shape[1], mask.sum(-1)), gold, 0.0).sum((1, 2))


def kbest_token_kd(student_logits, mask, paths, weights):
    """K-best KD for a softmax student: the weighted token cross-entropy of
    the teacher's K best paths, ``sum_k w_k token_nll(y_k)``.

    Args:
      student_logits: [B, L, N]; mask: [B, L] bool; paths: [B, K, L] int;
      weights: [B, K] float.

    Returns:
      [B] float32.
    """
    logp = jax.nn.log_softmax(_f32(student_logits), axis=-1)  # [B, L, N]
    picked = jnp.take_along_axis(logp[:, None], jnp.asarray(paths)[..., None], axis=-1)[..., 0]  # [B, K, L]
    per_path = -jnp.where(jnp.asarray(mask, bool)[:, None], picked, 0.0).sum(-1)
    return jnp.sum(jax.lax.stop_gradient(_f32(weights)) * per_path, axis=-1)


# ---------------------------------------------------------------------------
# efficient sub-structured KD (Lin et al. 2022)
# ---------------------------------------------------------------------------


class SquaredError(NamedTuple):
    total: jnp.ndarray  # [] float32, summed squared error over every sub-structure
    count: jnp.ndarray  # [] float32, number of sub-structures


def _centre(x, axis):
    """``x`` minus its mean over ``axis`` (kept), float32."""
    return x - jnp.mean(x, axis=axis, keepdims=True)


def _emission_diff(student: CRFScores, teacher: CRFScores, mask, centered: bool):
    """``de = e_S - e_T``: [B, L, N] float32, zero at padding; with
    ``centered``, each valid position's N values minus their mean over j."""
    d_e = jnp.where(mask[..., None], _f32(student.emissions) - _f32(teacher.emissions), 0.0)
    return _centre(d_e, -1) if centered else d_e  # a padded position's zeros stay zero


def efficient_kd_terms(student: CRFScores, teacher: CRFScores, mask, *, centered: bool = False) -> SquaredError:
    """Summed squared error over every sub-structure, in closed form.

    Uses ``sum_ij (dT_ij + de_lj)^2 = sum_ij dT_ij^2 + 2 sum_j de_lj c_j +
    N sum_j de_lj^2`` with ``c_j = sum_i dT_ij``: O(L N + N^2) work, no
    [B, L, N, N] tensor.

    With ``centered``, each group of sub-structures that a CRF may shift
    together without changing its distribution (the N^2 pairs of a position
    l >= 1, a row's N starts, its N ends) has its mean difference removed
    before squaring. A group's difference is a sum of parts (``dT_ij +
    de_lj``, ``da_j + de_0j``, ``dz_i``) and the mean is linear, so this is
    the closed form above on the parts centred one by one (dT over all of
    it; de, da, dz over j): no difference of two large sums is taken.

    Args:
      student, teacher: CRF scores with emissions [B, L, N], transitions
        [N, N], start [N] and end [N].
      mask: [B, L] bool prefix mask.
      centered: remove each group's mean difference (default False: the
        paper's loss).

    Returns:
      SquaredError(total, count) with ``count = sum_b (n_b - 1) N^2 + 2 N``
      over non-empty rows (the same count whether centred or not).
    """
    mask = jnp.asarray(mask, bool)
    n = student.emissions.shape[-1]
    d_e = _emission_diff(student, teacher, mask, centered)  # [B, L, N]
    d_t = _f32(student.transitions) - _f32(teacher.transitions)  # [N, N]
    d_a = _f32(student.start) - _f32(teacher.start)  # [N]
    d_z = _f32(student.end) - _f32(teacher.end)  # [N]
    if centered:
        d_t, d_a, d_z = _centre(d_t, (0, 1)), _centre(d_a, -1), _centre(d_z, -1)
    lengths = mask.sum(-1)
    nonempty = lengths > 0
    pairs = jnp.maximum(lengths - 1, 0).astype(jnp.float32)  # positions l >= 1
    d_rest = d_e[:, 1:]  # zero at padding
    col = d_t.sum(0)  # c_j
    pair_sq = (
        pairs * jnp.sum(d_t**2)
        + 2.0 * jnp.einsum("blj,j->b", d_rest, col, precision=EXACT)
        + n * jnp.sum(d_rest**2, axis=(1, 2))
    )
    start_sq = jnp.sum((d_a[None] + d_e[:, 0]) ** 2, axis=-1)
    end_sq = jnp.sum(d_z**2)
    per_row = jnp.where(nonempty, pair_sq + start_sq + end_sq, 0.0)
    count = jnp.sum(jnp.where(nonempty, pairs * n * n + 2 * n, 0.0))
    return SquaredError(per_row.sum(), count)


def efficient_kd(
    student: CRFScores, teacher: CRFScores, mask, *, emissions_only: bool = False, centered: bool = False
):
    """Efficient sub-structured KD: mean squared error over every sub-structure.

    Args:
      student, teacher: CRF scores, emissions [B, L, N].
      mask: [B, L] bool prefix mask.
      emissions_only: the official code's ``struct_wo_trans`` variant: mean over
        valid (l, j) of the squared emission difference only.
      centered: remove from each group's differences their mean before
        squaring (see :func:`efficient_kd_terms`); with ``emissions_only``, the
        group is one position's N emissions, so the term is the mean over
        valid (l, j) of ``(de_lj - mean_j de_lj)^2``. The divisor is the same
        as without centring. Default False: the paper's loss.

    Returns:
      [] float32 (0 when the batch has no valid position).
    """
    if emissions_only:
        mask = jnp.asarray(mask, bool)
        d_e = _emission_diff(student, teacher, mask, centered)
        count = mask.sum() * student.emissions.shape[-1]
        return jnp.sum(d_e**2) / jnp.maximum(count, 1)
    terms = efficient_kd_terms(student, teacher, mask, centered=centered)
    return terms.total / jnp.maximum(terms.count, 1.0)


# ---------------------------------------------------------------------------
# K-best (Kim & Rush 2016)
# ---------------------------------------------------------------------------

KBEST_WEIGHTS = ("original", "probability")


def kbest_weights(path_scores, scheme: str = "original"):
    """Weights of the teacher's K best paths.

    Args:
      path_scores: [B, K] float, the teacher's scores of its K best paths,
        best first; -inf for missing ranks.
      scheme: ``"original"`` (the official code: 1 for the best path, 0.1 for
        each other) or ``"probability"`` (Wang et al. 2020: the teacher's path
        probabilities renormalised over the K).

    Returns:
      [B, K] float32, 0 for missing ranks.
    """
    path_scores = _f32(path_scores)
    exists = jnp.isfinite(path_scores)
    k = path_scores.shape[-1]
    if scheme == "original":
        w = jnp.where(jnp.arange(k) == 0, 1.0, 0.1)[None]
        return jnp.where(exists, w, 0.0)
    if scheme == "probability":
        safe = jnp.where(exists, path_scores, -1e30)
        return jnp.where(exists, jax.nn.softmax(safe, axis=-1), 0.0)
    raise ValueError(f"k-best weights must be one of {KBEST_WEIGHTS}; got {scheme!r}")


def kbest_kd(student: CRFScores, mask, paths, weights, *, constraints=None, algorithm: str = "sequential"):
    """Weighted NLL of the teacher's K best paths: ``sum_k w_k (log Z_S - s_S(y_k))``.

    Args:
      student: the student's CRF scores, emissions [B, L, N].
      mask: [B, L] bool prefix mask.
      paths: [B, K, L] int, the teacher's K best paths.
      weights: [B, K] float (see :func:`kbest_weights`).

    Returns:
      [B] float32.
    """
    b, k, length = paths.shape
    log_z = crf.log_partition(
        student.emissions, mask, *student.crf_args(), algorithm=algorithm, constraints=constraints
    )
    rep = lambda x: jnp.repeat(x, k, axis=0)  # noqa: E731  [B*K, ...], path-major within a row
    scores = crf.sequence_score(
        rep(student.emissions), rep(mask), paths.reshape(b * k, length), *student.crf_args(), constraints=constraints
    ).reshape(b, k)
    weights = jax.lax.stop_gradient(_f32(weights))
    return jnp.sum(weights * (log_z[:, None] - scores), axis=-1)


# ---------------------------------------------------------------------------
# Posterior distillation (Wang et al. 2020)
# ---------------------------------------------------------------------------


def _kl_rows(p, q, valid):
    """sum over valid rows of KL(p || q) along the last axis; p, q: [..., N]."""
    tiny = jnp.finfo(jnp.float32).tiny
    term = jnp.where(p > 0, p * (jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(q, tiny))), 0.0)
    return jnp.where(valid, term.sum(-1), 0.0)


def posterior_kd(
    student: CRFScores,
    teacher_unary,
    mask,
    *,
    temperature: float = 1.0,
    constraints=None,
    algorithm: str = "sequential",
):
    """Sum over valid tokens of KL(p_T(y_l) || p_S(y_l)), times temperature^2.

    Args:
      student: the student's CRF scores, emissions [B, L, N].
      teacher_unary: [B, L, N] the teacher's unary marginals, computed from its
        scores divided by ``temperature`` (see :func:`teacher_marginals`).
      mask: [B, L] bool prefix mask.

    Returns:
      [B] float32.
    """
    s = student.scaled(temperature)
    q, _ = crf.marginals(s.emissions, mask, *s.crf_args(), algorithm=algorithm, constraints=constraints)
    p = jax.lax.stop_gradient(_f32(teacher_unary))
    return temperature**2 * _kl_rows(p, q, jnp.asarray(mask, bool)).sum(-1)


def teacher_marginals(
    teacher: CRFScores, mask, *, temperature: float = 1.0, constraints=None, algorithm: str = "sequential"
):
    """The teacher's unary and pairwise marginals at a temperature (no gradient).

    Returns:
      unary [B, L, N], pairwise [B, L, N, N] float32.
    """
    t = teacher.scaled(temperature)
    out = crf.marginals(t.emissions, mask, *t.crf_args(), algorithm=algorithm, constraints=constraints)
    return jax.lax.stop_gradient(out)


# ---------------------------------------------------------------------------
# Structural KD, factorised (Wang et al. 2021)
# ---------------------------------------------------------------------------


def expected_score(student: CRFScores, mask, unary, pairwise):
    """``sum_u q(u) s_S(u)``: the student's score expected under marginals q.

    Args:
      student: CRF scores, emissions [B, L, N].
      mask: [B, L] bool prefix mask.
      unary: [B, L, N] marginals q(y_l) (zero at padding).
      pairwise: [B, L, N, N] marginals q(y_{l-1}, y_l) (row 0 and padding zero).

    Returns:
      [B] float32.
    """
    mask = jnp.asarray(mask, bool)
    e = jnp.where(mask[..., None], _f32(student.emissions), 0.0)
    lengths = mask.sum(-1)
    last = jnp.take_along_axis(unary, jnp.maximum(lengths - 1, 0)[:, None, None], axis=1)[:, 0]
    last = jnp.where((lengths > 0)[:, None], last, 0.0)
    return (
        jnp.einsum("bln,bln->b", unary, e, precision=EXACT)
        + jnp.einsum("blij,ij->b", pairwise, _f32(student.transitions), precision=EXACT)
        + jnp.einsum("bn,n->b", unary[:, 0], _f32(student.start), precision=EXACT)
        + jnp.einsum("bn,n->b", last, _f32(student.end), precision=EXACT)
    )


def structkd(
    student: CRFScores,
    mask,
    teacher_unary,
    teacher_pairwise,
    *,
    temperature: float = 1.0,
    constraints=None,
    algorithm: str = "sequential",
):
    """Factorised structural KD (scenarios 1 and 3: a CRF student).

    ``L = tau^2 (log Z_S - sum_u q_T(u) s_S(u))`` with the student's scores
    divided by ``tau``: the exact cross-entropy between the teacher's and the
    student's distributions over all tag sequences; its gradient is
    ``tau (q_S - q_T)``.

    Args:
      student: CRF scores, emissions [B, L, N].
      mask: [B, L] bool prefix mask.
      teacher_unary: [B, L, N]; teacher_pairwise: [B, L, N, N] (teacher
        marginals, at the same temperature: :func:`teacher_marginals`).

    Returns:
      [B] float32.
    """
    s = student.scaled(temperature) if temperature != 1.0 else student
    log_z = crf.log_partition(s.emissions, mask, *s.crf_args(), algorithm=algorithm, constraints=constraints)
    q_u = jax.lax.stop_gradient(_f32(teacher_unary))
    q_p = jax.lax.stop_gradient(_f32(teacher_pairwise))
    return temperature**2 * (log_z - expected_score(s, mask, q_u, q_p))


def structkd_token_student(student_logits, mask, teacher_unary, *, temperature: float = 1.0):
    """Scenario 2 (CRF teacher -> token-level softmax student): sum over valid
    tokens of KL(teacher unary marginal || student softmax at ``tau``), times
    ``tau^2``.

    Args:
      student_logits: [B, L, N]; mask: [B, L] bool; teacher_unary: [B, L, N]
        (the teacher's marginals at the same temperature).

    Returns:
      [B] float32.
    """
    q = jax.nn.softmax(_f32(student_logits) / temperature, axis=-1)
    p = jax.lax.stop_gradient(_f32(teacher_unary))
    return temperature**2 * _kl_rows(p, q, jnp.asarray(mask, bool)).sum(-1)
