"""The scores that define a CRF (:class:`CRFScores`), scores of given tag
sequences and of every sub-structure."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxkd.crf._common import prepare
from jaxkd.crf.constraints import Constraints


class CRFScores(NamedTuple):
    """Everything that defines one CRF's distribution over tag sequences.

    Attributes:
      emissions: [B, L, N] float.
      transitions: [N, N] float.
      start: [N] float.
      end: [N] float.
    """

    emissions: jnp.ndarray
    transitions: jnp.ndarray
    start: jnp.ndarray
    end: jnp.ndarray

    def crf_args(self):
        return self.transitions, self.start, self.end

    def scaled(self, factor: float) -> "CRFScores":
        """Every score divided by ``factor`` (a temperature)."""
        return CRFScores(*(x.astype(jnp.float32) / factor for x in self))


@jax.jit
def sequence_score(emissions, mask, tags, transitions, start, end, *, constraints: Constraints | None = None):
    """Score s(y) of given tag sequences (gold or pseudo-labels).

    ``s(y) = start[y_0] + sum_l e[l, y_l] + sum_{l>=1} T[y_{l-1}, y_l] + end[y_{n-1}]``
    over the valid positions of each row.

    Args:
      emissions: [B, L, N] float.
      mask: [B, L] bool prefix mask; an all-false row scores 0.
      tags: [B, L] int; values at padded positions are ignored.
      transitions: [N, N] float.
      start: [N] float.
      end: [N] float.
      constraints: optional allowed moves; a forbidden move scores NEG.

    Returns:
      [B] float32.
    """
    p = prepare(emissions, mask, transitions, start, end, constraints)
    num_tags = p.transitions.shape[0]
    tags = jnp.clip(jnp.asarray(tags, jnp.int32), 0, num_tags - 1)
    unary = jnp.take_along_axis(p.emissions, tags[..., None], axis=-1)[..., 0]
    pair = p.transitions[tags[:, :-1], tags[:, 1:]]
    last = jnp.take_along_axis(tags, jnp.maximum(p.lengths - 1, 0)[:, None], axis=1)[:, 0]
    score = (
        p.start[tags[:, 0]]
        + jnp.where(p.mask, unary, 0.0).sum(-1)
        + jnp.where(p.mask[:, 1:], pair, 0.0).sum(-1)
        + p.end[last]
    )
    return jnp.where(p.lengths > 0, score, 0.0)


@jax.jit
def substructure_scores(emissions, transitions, start, *, mask=None, constraints: Constraints | None = None):
    """Materialised score of every sub-structure (for inspection and tests).

    ``out[b, l, i, j] = transitions[i, j] + emissions[b, l, j]`` for l >= 1 and
    ``start[j] + emissions[b, 0, j]`` (the same for every i) at l = 0. Training
    never needs this [B, L, N, N] tensor: see :mod:`jaxkd.losses`.

    Args:
      emissions: [B, L, N] float.
      transitions: [N, N] float.
      start: [N] float.
      mask: optional [B, L] bool prefix mask; padded positions are zero.
      constraints: optional allowed moves; forbidden ones score NEG.

    Returns:
      [B, L, N, N] float32.
    """
    emissions = jnp.asarray(emissions)
    if mask is None:
        mask = jnp.ones(emissions.shape[:2], bool)
    num_tags = emissions.shape[-1]
    p = prepare(emissions, mask, transitions, start, jnp.zeros((num_tags,)), constraints)
    first = jnp.broadcast_to(
        (p.start[None] + p.emissions[:, 0])[:, None, None, :], (p.emissions.shape[0], 1, num_tags, num_tags)
    )
    rest = p.transitions[None, None] + p.emissions[:, 1:, None, :]
    out = jnp.concatenate([first, rest], axis=1)
    return jnp.where(p.mask[:, :, None, None], out, 0.0)
