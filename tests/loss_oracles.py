"""Reference forms of distillation losses that only the tests use (moved out
of :mod:`jaxkd.losses`): the efficient-KD sums from the materialised
sub-structure tensors, the efficient-KD loss (centred or not) from explicitly
built sub-structure scores, and Structural KD with a token-level softmax
teacher.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

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


def efficient_kd_explicit(
    student: CRFScores, teacher: CRFScores, mask, *, emissions_only=False, centered=True, xp=np
):
    """:func:`jaxkd.losses.efficient_kd` from every sub-structure's score,
    built one group at a time by broadcasting, without the closed form and
    without :func:`jaxkd.crf.substructure_scores`.

    The groups are the N^2 pair units ``T[i, j] + e[l, j]`` of each position
    1 <= l < n ([B, L, N, N]), the N start units ``a[j] + e[0, j]`` of a row
    ([B, N]) and its N end units ``z[i]`` ([B, N]); with ``emissions_only``,
    the N emissions ``e[l, j]`` of each valid position ([B, L, N]). With
    ``centered``, each group's student-minus-teacher differences have their
    mean over the group taken off before squaring. The divisor is the number
    of sub-structures either way.

    ``xp``: ``numpy`` (in float64, for values) or ``jax.numpy`` (in float32,
    for gradients).
    """
    dtype = np.float64 if xp is np else jnp.float32
    mask = xp.asarray(mask, bool)
    n_tags = student.emissions.shape[-1]
    length = mask.shape[1]
    nonempty = mask.any(-1)  # [B]

    def centre(d, axes):
        return d - d.mean(axis=axes, keepdims=True) if centered else d

    def diff(f):
        return f(*(xp.asarray(x, dtype) for x in student)) - f(*(xp.asarray(x, dtype) for x in teacher))

    if emissions_only:
        d = centre(diff(lambda e, *_: e), -1)  # [B, L, N]
        total = xp.where(mask[..., None], d**2, 0.0).sum()
        return total / max(int(np.asarray(mask).sum()) * n_tags, 1)
    pair = centre(diff(lambda e, t, a, z: t[None, None] + e[:, :, None, :]), (2, 3))  # [B, L, N, N]
    first = centre(diff(lambda e, t, a, z: a[None] + e[:, 0]), -1)  # [B, N]
    last = centre(diff(lambda e, t, a, z: xp.broadcast_to(z, e[:, 0].shape)), -1)  # [B, N]
    pair_valid = mask & (xp.arange(length) >= 1)[None]  # [B, L]: positions 1 <= l < n
    total = (
        xp.where(pair_valid[..., None, None], pair**2, 0.0).sum()
        + xp.where(nonempty[:, None], first**2 + last**2, 0.0).sum()
    )
    count = int(np.asarray(pair_valid).sum()) * n_tags**2 + int(np.asarray(nonempty).sum()) * 2 * n_tags
    return total / max(count, 1)


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
