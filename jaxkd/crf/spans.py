"""Non-overlapping labelled spans over a sentence, and the per-word BIO
marginals they imply (groundwork for Structural KD's scenario 4: a
span-based teacher and a token-level student).

A labelling of a sentence of n words is a set S of non-overlapping entity
spans ``(i, j, c)`` (words i..j inclusive, type c); every other word is
outside. Its score is ``sum_{(i,j,c) in S} s[i, j, c] + sum_{l outside}
o[l]``, and ``p(S) = exp(score(S)) / Z``. With a span classifier that gives
each span an independent distribution over "no entity" and the C types,
``s[i, j, c] = log p(c | i..j) - log p(none | i..j)`` and ``o = 0`` make
``p(S)`` exactly that classifier's distribution conditioned on its labels
forming non-overlapping entities (the product over all spans of their
label's probability, with "none" for the spans outside S).

``log Z`` is a semi-Markov forward pass (O(L^2 C) per sentence); the
marginals of every span and of every outside word are its gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG = -1e30


def _valid_spans(length: int, lengths, max_width: int | None):
    """[B, L, L] bool: i <= j < n (and j - i < max_width)."""
    i = jnp.arange(length)[:, None]
    j = jnp.arange(length)[None, :]
    ok = (i <= j)[None] & (j[None] < jnp.asarray(lengths)[:, None, None])
    if max_width is not None:
        ok = ok & ((j - i) < max_width)[None]
    return ok


def span_log_partition(span_scores, outside_scores, lengths, *, max_width: int | None = None):
    """log Z of every sentence.

    Args:
      span_scores: [B, L, L, C] float, ``s[b, i, j, c]`` for words i..j
        (entries with j < i, or past the sentence, are ignored).
      outside_scores: [B, L] float, ``o[b, l]``.
      lengths: [B] int, the number of words n of each sentence.
      max_width: the longest span, in words (None: any).

    Returns:
      [B] float32 (0 for an empty sentence).
    """
    s = jnp.asarray(span_scores, jnp.float32)
    o = jnp.asarray(outside_scores, jnp.float32)
    b, length = s.shape[0], s.shape[1]
    s = jnp.where(_valid_spans(length, lengths, max_width)[..., None], s, NEG)
    alpha0 = jnp.full((b, length + 1), NEG).at[:, 0].set(0.0)

    def step(alpha, j):  # alpha[:, k] = log-sum over labellings of words 0..k-1
        ending = jax.nn.logsumexp(alpha[:, :length, None] + s[:, :, j, :], axis=(1, 2))  # entity spans i..j
        value = jnp.logaddexp(alpha[:, j] + o[:, j], ending)
        return alpha.at[:, j + 1].set(value), None

    alpha, _ = jax.lax.scan(step, alpha0, jnp.arange(length))
    return jnp.take_along_axis(alpha, jnp.asarray(lengths)[:, None], axis=1)[:, 0]


def span_marginals(span_scores, outside_scores, lengths, *, max_width: int | None = None):
    """The probability of every entity span and of every outside word.

    Returns:
      (spans [B, L, L, C], outside [B, L]) float32, zero where invalid.
    """
    grad = jax.grad(lambda s, o: span_log_partition(s, o, lengths, max_width=max_width).sum(), argnums=(0, 1))
    spans, outside = grad(jnp.asarray(span_scores, jnp.float32), jnp.asarray(outside_scores, jnp.float32))
    return spans, outside


def bio_marginals(span_scores, outside_scores, lengths, *, max_width: int | None = None):
    """Per-word BIO marginals of the span distribution.

    Returns:
      (outside [B, L], begin [B, L, C], inside [B, L, C]) float32: the
      probability that word l is outside, begins an entity of type c, or
      continues one; they sum to 1 over a word of the sentence.
    """
    spans, outside = span_marginals(span_scores, outside_scores, lengths, max_width=max_width)
    length = spans.shape[1]
    pos = jnp.arange(length)
    covers = (pos[:, None, None] <= pos[None, None, :]) & (pos[None, None, :] <= pos[None, :, None])  # [i, j, l]: i <= l <= j
    covered = jnp.einsum("bijc,ijl->blc", spans, covers.astype(spans.dtype), precision=jax.lax.Precision.HIGHEST)
    begin = spans.sum(axis=2)  # spans starting at l
    return outside, begin, covered - begin
