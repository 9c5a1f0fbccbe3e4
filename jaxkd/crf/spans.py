"""Non-overlapping labelled spans over a sentence: their distribution, the
per-word BIO tag marginals it implies (Structural KD's scenario 4: a
span-based teacher and a token-level student), the gold spans of a BIO tag
sequence, and greedy decoding of a span classifier.

A labelling of a sentence of n words is a set S of non-overlapping entity
spans ``(i, j, c)`` (words i..j inclusive, type c); every other word is
outside. Its score is ``sum_{(i,j,c) in S} s[i, j, c] + sum_{l outside}
o[l]``, and ``p(S) = exp(score(S)) / Z``. With a span classifier that gives
each span an independent distribution over "no entity" and the C types,
``s[i, j, c] = log p(c | i..j) - log p(none | i..j)`` and ``o = 0`` make
``p(S)`` exactly that classifier's distribution conditioned on its labels
forming non-overlapping entities (the product over all spans of their
label's probability, with "none" for the spans outside S).

``log Z`` is a semi-Markov forward pass (O(L^2 C) per sentence).
:func:`tag_marginals` runs it with the last word's BIO tag as its state,
adding per-word and per-adjacent-pair tag scores (zero), so that its
gradient gives every word's tag marginals and every adjacent pair's
``q(y_{l-1}, y_l)``, exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

NEG = -1e30


def valid_spans(length: int, lengths, max_width: int | None = None):
    """``[B, L, L]`` bool: the spans i..j of each sentence of ``lengths`` [B]
    words, i <= j < n (and j - i < max_width)."""
    i = jnp.arange(length)[:, None]
    j = jnp.arange(length)[None, :]
    ok = (i <= j)[None] & (j[None] < jnp.asarray(lengths)[:, None, None])
    if max_width is not None:
        ok = ok & ((j - i) < max_width)[None]
    return ok


class BIOTags(NamedTuple):
    """Where the tags of a BIO vocabulary are: ``outside`` the id of ``O``,
    ``begin[c]``/``inside[c]`` those of ``B-c``/``I-c`` for the C span types
    (type c is span label c + 1; label 0 is "no entity")."""

    num_tags: int
    outside: int
    begin: tuple[int, ...]
    inside: tuple[int, ...]

    @classmethod
    def of(cls, labels) -> "BIOTags":
        """From a :class:`~jaxkd.data.labels.LabelVocab` (its types in order)."""
        return cls(len(labels), labels.index("O"), tuple(labels.index(f"B-{t}") for t in labels.types),
                   tuple(labels.index(f"I-{t}") for t in labels.types))


def tag_marginals(span_scores, outside_scores, lengths, tags: BIOTags, *, max_width: int | None = None):
    """Per-word and adjacent-pair BIO tag marginals of the span distribution.

    Args:
      span_scores: [B, L, L, C] float, ``s[b, i, j, c]`` for words i..j
        (entries with j < i, or past the sentence, are ignored).
      outside_scores: [B, L] float, ``o[b, l]``.
      lengths: [B] int, the number of words n of each sentence.
      tags: the tag ids of the vocabulary the marginals are over.
      max_width: the longest span, in words (None: any).

    Returns:
      unary [B, L, N] (``q(y_l)``, summing to 1 over a word of the sentence)
      and pairwise [B, L, N, N] (``q(y_{l-1}, y_l)``; row 0 and padding
      zero) float32, as :func:`jaxkd.crf.marginals` gives them for a CRF.
    """
    s = jnp.asarray(span_scores, jnp.float32)
    o = jnp.asarray(outside_scores, jnp.float32)
    b, length = s.shape[0], s.shape[1]
    lengths = jnp.asarray(lengths)
    valid = valid_spans(length, lengths, max_width)[..., None]
    begin, inside = jnp.asarray(tags.begin), jnp.asarray(tags.inside)
    upper = jnp.arange(length)[None, :] > jnp.arange(length)[:, None]  # [i, j]: j > i (a span of two words or more)

    def log_z(u, e):  # u [B, L, N] per-word tag scores; e [B, L, N, N] scores of (y_{l-1}, y_l)
        seg = _segment_scores(s, u, e, valid, upper, begin, inside)
        return _bio_forward(seg, o, u, e, lengths, tags, begin, inside)

    zeros_u = jnp.zeros((b, length, tags.num_tags), jnp.float32)
    zeros_e = jnp.zeros((b, length, tags.num_tags, tags.num_tags), jnp.float32)
    return jax.grad(lambda u, e: log_z(u, e).sum(), argnums=(0, 1))(zeros_u, zeros_e)


def _prefix(x):
    """[B, L, C] -> [B, L + 2, C], P[k] = sum of x[:k] (the last entry repeated)."""
    p = jnp.concatenate([jnp.zeros_like(x[:, :1]), jnp.cumsum(x, axis=1)], axis=1)
    return jnp.concatenate([p, p[:, -1:]], axis=1)


def _segment_scores(s, u, e, valid, upper, begin, inside):
    """[B, L(i), L(j), C]: the score of entity span i..j of type c (NEG where
    not ``valid``) under span scores s, per-word tag scores u and pair scores e:
    its span score, B-c at i, I-c at i+1..j and the pairs inside it."""
    length = s.shape[1]
    u_begin, u_in = u[..., begin], u[..., inside]  # [B, L, C]
    pu = _prefix(u_in)
    pe = _prefix(e[:, :, inside, inside])  # (I-c, I-c) at l
    e_bi = jnp.concatenate([e[:, 1:, begin, inside], jnp.zeros_like(u_in[:, :1])], axis=1)  # (B-c, I-c) at i + 1
    inner = (
        (pu[:, None, 1 : length + 1] - pu[:, 1 : length + 1, None])
        + e_bi[:, :, None]
        + (pe[:, None, 1 : length + 1] - pe[:, 2:, None])
    )
    return jnp.where(valid, s + u_begin[:, :, None] + jnp.where(upper[None, :, :, None], inner, 0.0), NEG)


def _bio_forward(seg, o, u, e, lengths, tags: BIOTags, begin, inside):
    """[B] log Z: the forward pass over words with the last word's BIO tag as
    its state, given the segment scores of :func:`_segment_scores`."""
    b, length = seg.shape[0], seg.shape[1]
    u_out = u[..., tags.outside]

    def step(carry, j):
        last, enter = carry  # last [B, N]: log-sum of labellings of words < j by the tag of word j - 1
        first = j == 0
        into_span = jnp.where(first, 0.0, jax.nn.logsumexp(last[:, :, None] + e[:, j][:, :, begin], axis=1))  # [B, C]
        into_out = jnp.where(first, 0.0, jax.nn.logsumexp(last + e[:, j, :, tags.outside], axis=1))  # [B]
        enter = enter.at[:, j].set(into_span)
        ending = enter + seg[:, :, j]  # [B, L(i), C]: spans i..j
        wide = jnp.where((jnp.arange(length) < j)[None, :, None], ending, NEG)
        new = jnp.full((b, tags.num_tags), NEG, jnp.float32)
        new = new.at[:, tags.outside].set(into_out + o[:, j] + u_out[:, j])
        new = new.at[:, begin].set(into_span + seg[:, j, j])
        new = new.at[:, inside].set(jax.nn.logsumexp(wide, axis=1))
        return (new, enter), new

    init = (jnp.full((b, tags.num_tags), NEG, jnp.float32), jnp.full((b, length, len(tags.begin)), NEG, jnp.float32))
    _, alphas = jax.lax.scan(step, init, jnp.arange(length))  # [L, B, N]: after word j
    final = jnp.take_along_axis(alphas, jnp.maximum(lengths - 1, 0)[None, :, None], axis=0)[0]
    return jnp.where(lengths > 0, jax.nn.logsumexp(final, axis=-1), 0.0)


def _kinds(tags: BIOTags):
    """[N] int: each tag's type c (-1 for O); [N] bool: whether it is an I- tag."""
    kind = [-1] * tags.num_tags
    is_inside = [False] * tags.num_tags
    for c, (b, i) in enumerate(zip(tags.begin, tags.inside, strict=True)):
        kind[b] = kind[i] = c
        is_inside[i] = True
    return jnp.asarray(kind), jnp.asarray(is_inside)


def gold_spans(tag_ids, mask, tags: BIOTags):
    """The chunks of BIO tag sequences as span labels, read as conlleval
    reads them (an ``I-c`` that does not continue a chunk of type c starts one).

    Args:
      tag_ids: [B, L] int; mask: [B, L] bool prefix mask.

    Returns:
      [B, L, L] int32: ``c + 1`` where words i..j are a chunk of type c, else 0.
    """
    mask = jnp.asarray(mask, bool)
    kind_of, inside_of = _kinds(tags)
    kind = jnp.where(mask, kind_of[tag_ids], -1)
    prev = jnp.pad(kind, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    cont = mask & inside_of[tag_ids] & (kind == prev) & (kind >= 0)  # continues the previous word's chunk
    starts = (kind >= 0) & ~cont
    ends = (kind >= 0) & ~jnp.pad(cont, ((0, 0), (0, 1)))[:, 1:]  # the next word does not continue it
    breaks = jnp.cumsum(~cont, axis=1)  # a chunk i..j has no break in i+1..j
    chunk = starts[:, :, None] & ends[:, None, :] & (breaks[:, :, None] == breaks[:, None, :])
    chunk = chunk & (jnp.arange(kind.shape[1])[:, None] <= jnp.arange(kind.shape[1])[None, :])[None]
    return jnp.where(chunk, kind[:, :, None] + 1, 0).astype(jnp.int32)


def greedy_decode(logits, mask, tags: BIOTags):
    """BIO tags from a span classifier: every span whose most probable label
    is an entity type is a candidate, scored by that label's log-probability;
    candidates are accepted from the highest score down, skipping any that
    overlaps one already accepted (ties: the earlier start, then end).

    Args:
      logits: [B, L, L, C + 1] float, label 0 "no entity"; mask: [B, L] bool.

    Returns:
      [B, L] int32 tag ids (``O`` outside the accepted spans and at padding).
    """
    logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    b, length = logp.shape[0], logp.shape[1]
    lengths = jnp.asarray(mask, bool).sum(-1)
    best = jnp.argmax(logp[..., 1:], axis=-1)
    score = jnp.max(logp[..., 1:], axis=-1)
    candidate = valid_spans(length, lengths, None) & (score > logp[..., 0])
    pos = jnp.arange(length)
    begin, inside = jnp.asarray(tags.begin), jnp.asarray(tags.inside)

    def body(state):
        candidate, out = state
        flat = jnp.where(candidate, score, -jnp.inf).reshape(b, -1)
        k = jnp.argmax(flat, axis=-1)
        found = candidate.reshape(b, -1).any(-1)
        i, j = k // length, k % length
        c = best.reshape(b, -1)[jnp.arange(b), k]
        overlaps = (pos[None, :, None] <= j[:, None, None]) & (i[:, None, None] <= pos[None, None, :])
        candidate = candidate & ~(overlaps & found[:, None, None])
        here = found[:, None] & (pos[None] >= i[:, None]) & (pos[None] <= j[:, None])
        out = jnp.where(here, jnp.where(pos[None] == i[:, None], begin[c][:, None], inside[c][:, None]), out)
        return candidate, out

    out = jnp.full((b, length), tags.outside, jnp.int32)
    _, out = jax.lax.while_loop(lambda state: state[0].any(), body, (candidate, out))
    return out
