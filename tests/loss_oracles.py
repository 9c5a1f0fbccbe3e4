"""Reference forms of distillation losses that only the tests use (moved out
of :mod:`jaxkd.losses`): the efficient-KD sums from the materialised
sub-structure tensors, and Structural KD with a token-level softmax teacher.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxkd import crf
from jaxkd.crf import CRFScores
from jaxkd.losses import SquaredError, structkd


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def efficient_kd_terms_materialised(student: CRFScores, teacher: CRFScores, mask) -> SquaredError:
    """The sums of :func:`jaxkd.losses.efficient_kd_terms` from the
    materialised [B, L, N, N] sub-structure tensors."""
    mask = jnp.asarray(mask, bool)
    n = student.emissions.shape[-1]
    s = crf.substructure_scores(student.emissions, student.transitions, student.start, mask=mask)
    t = crf.substructure_scores(teacher.emissions, teacher.transitions, teacher.start, mask=mask)
    diff_sq = (s - t) ** 2  # zero at padding
    nonempty = mask.sum(-1) > 0
    pair_sq = diff_sq[:, 1:].sum(axis=(1, 2, 3))
    start_sq = diff_sq[:, 0, 0].sum(-1)  # the start unit (0, j) once, not once per i
    end_sq = jnp.sum((_f32(student.end) - _f32(teacher.end)) ** 2)
    per_row = jnp.where(nonempty, pair_sq + start_sq + end_sq, 0.0)
    lengths = mask.sum(-1)
    count = jnp.sum(jnp.where(nonempty, jnp.maximum(lengths - 1, 0) * n * n + 2 * n, 0)).astype(jnp.float32)
    return SquaredError(per_row.sum(), count)


def structkd_token_teacher(
    student: CRFScores, mask, teacher_probs, *, constraints=None, algorithm: str = "sequential"
):
    """Scenario 3 (token-level softmax teacher -> CRF student): the teacher's
    sub-structure marginals factorise, ``q(y_{l-1}, y_l) = p(y_{l-1}) p(y_l)``.

    Args:
      student: CRF scores, emissions [B, L, N].
      mask: [B, L] bool; teacher_probs: [B, L, N] the teacher's per-token softmax.

    Returns:
      [B] float32.
    """
    mask = jnp.asarray(mask, bool)
    p = jnp.where(mask[..., None], _f32(teacher_probs), 0.0)
    pair = p[:, :-1, :, None] * p[:, 1:, None, :]
    pair = jnp.concatenate([jnp.zeros_like(pair[:, :1]), pair], axis=1)
    pair = jnp.where(mask[:, :, None, None], pair, 0.0)
    return structkd(student, mask, p, pair, constraints=constraints, algorithm=algorithm)
