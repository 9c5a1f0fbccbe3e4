"""Decoding: the best sequence (Viterbi) and the k best (one pass, k beams per state).

Both run their back-trace on the device as a reverse ``lax.scan`` over the
back-pointers; nothing returns to the host until the result.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxkd.crf._common import NEG, prepare, time_major
from jaxkd.crf.constraints import Constraints


def _backtrace(pointers, last):
    """Follows back-pointers from the end.

    Args:
      pointers: [L-1, B, S] int32; ``pointers[l-1, b, s]`` is the state at
        position l-1 on the path that is in state s at position l.
      last: [B, K] int32 states at position L-1.

    Returns:
      [B, K, L] int32 states along each path.
    """

    def step(state, ptr):
        prev = jnp.take_along_axis(ptr, state, axis=1)
        return prev, prev

    _, earlier = lax.scan(step, last, pointers, reverse=True)  # [L-1, B, K]
    return jnp.concatenate([jnp.transpose(earlier, (1, 2, 0)), last[:, :, None]], axis=2)


@jax.jit
def viterbi(emissions, mask, transitions, start, end, *, constraints: Constraints | None = None):
    """The highest-scoring tag sequence of each row.

    Args:
      emissions: [B, L, N] float.
      mask: [B, L] bool prefix mask.
      transitions: [N, N] float.
      start: [N] float.
      end: [N] float.
      constraints: optional allowed moves.

    Returns:
      tags: [B, L] int32, 0 at padding (an all-padding row is all 0).
      score: [B] float32, the best sequence's score (0 for an empty row).
    """
    p = prepare(emissions, mask, transitions, start, end, constraints)
    n = p.transitions.shape[0]
    keep = jnp.arange(n, dtype=jnp.int32)[None]
    delta0 = p.start[None] + p.emissions[:, 0]

    def step(delta, inputs):
        e_l, m_l = inputs
        cand = delta[:, :, None] + p.transitions[None]  # [B, prev, next]
        ptr = jnp.argmax(cand, axis=1).astype(jnp.int32)
        best = jnp.max(cand, axis=1) + e_l
        m = m_l[:, None]
        return jnp.where(m, best, delta), jnp.where(m, ptr, keep)

    final, pointers = lax.scan(step, delta0, (time_major(p.emissions[:, 1:]), time_major(p.mask[:, 1:])))
    last_scores = final + p.end[None]
    last = jnp.argmax(last_scores, axis=-1).astype(jnp.int32)
    score = jnp.max(last_scores, axis=-1)
    tags = _backtrace(pointers, last[:, None])[:, 0]
    tags = jnp.where(p.mask, tags, 0)
    return tags, jnp.where(p.lengths > 0, score, 0.0)


@functools.partial(jax.jit, static_argnames=("k",))
def kbest(emissions, mask, transitions, start, end, k: int, *, constraints: Constraints | None = None):
    """The k highest-scoring distinct tag sequences of each row, best first.

    One forward pass keeps, for every tag at every position, the k best
    prefixes ending there (k beams per state); one back-trace recovers all k.

    Args:
      emissions: [B, L, N] float.
      mask: [B, L] bool prefix mask.
      transitions: [N, N] float.
      start: [N] float.
      end: [N] float.
      k: number of sequences (static).
      constraints: optional allowed moves; sequences using a forbidden move
        do not exist.

    Returns:
      tags: [B, k, L] int32, 0 at padding and for missing ranks.
      scores: [B, k] float32, descending; -inf where fewer than k sequences
        exist (an all-padding row has one, the empty sequence, scoring 0).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    p = prepare(emissions, mask, transitions, start, end, constraints)
    batch, _, n = p.emissions.shape
    # Beam r of state j lives at flat index j * k + r.
    first = p.start[None] + p.emissions[:, 0]
    delta0 = jnp.full((batch, n, k), -jnp.inf).at[:, :, 0].set(first)
    keep = jnp.arange(n * k, dtype=jnp.int32).reshape(1, n, k)

    def step(delta, inputs):
        e_l, m_l = inputs
        cand = delta[:, :, :, None] + p.transitions[None, :, None, :]  # [B, prev, beam, next]
        cand = jnp.transpose(cand.reshape(batch, n * k, n), (0, 2, 1))  # [B, next, prev*beam]
        best, ptr = lax.top_k(cand, k)
        best = best + e_l[:, :, None]
        m = m_l[:, None, None]
        return jnp.where(m, best, delta), jnp.where(m, ptr.astype(jnp.int32), keep)

    final, pointers = lax.scan(step, delta0, (time_major(p.emissions[:, 1:]), time_major(p.mask[:, 1:])))
    flat_final = (final + p.end[None, :, None]).reshape(batch, n * k)
    scores, last = lax.top_k(flat_final, k)
    flat_pointers = pointers.reshape(pointers.shape[0], batch, n * k)
    paths = _backtrace(flat_pointers, last.astype(jnp.int32)) // k  # beam index -> tag
    exists = scores > NEG / 2
    empty_row = p.lengths == 0
    rank0 = jnp.arange(k) == 0
    exists = jnp.where(empty_row[:, None], rank0[None], exists)
    scores = jnp.where(empty_row[:, None], 0.0, scores)
    scores = jnp.where(exists, scores, -jnp.inf)
    tags = jnp.where(exists[:, :, None] & p.mask[:, None, :], paths, 0)
    return tags, scores
