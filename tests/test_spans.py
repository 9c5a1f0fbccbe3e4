"""Labelled non-overlapping spans (jaxkd.crf.spans) against enumeration of
every labelling of short sentences; gold spans against the evaluation's own
chunk reading; greedy decoding against a plain Python greedy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxkd.crf import spans
from jaxkd.crf.spans import NEG, valid_spans
from jaxkd.data.labels import LabelVocab
from jaxkd.evaluate import chunks

VOCAB = LabelVocab.from_types(["A", "B"])  # O, B-A, I-A, B-B, I-B
BIO = spans.BIOTags.of(VOCAB)
# Compiled, as training runs it: eager, one gradient through the forward pass
# is seconds of op-by-op dispatch.
tag_marginals = jax.jit(spans.tag_marginals, static_argnames=("tags", "max_width"))


def _labellings(n: int, types: int, max_width: int | None):
    """Every labelling of n words: a list of (i, j, c) entity spans."""
    if n == 0:
        return [[]]
    out = []

    def grow(start, chosen):
        if start == n:
            out.append(list(chosen))
            return
        grow(start + 1, chosen)  # word `start` outside
        for end in range(start, n):
            if max_width is not None and end - start >= max_width:
                break
            for c in range(types):
                grow(end + 1, chosen + [(start, end, c)])

    grow(0, [])
    return out


def _tags_of(n: int, labelling) -> list[int]:
    """The BIO tag ids of a labelling."""
    out = [BIO.outside] * n
    for i, j, c in labelling:
        out[i] = BIO.begin[c]
        for w in range(i + 1, j + 1):
            out[w] = BIO.inside[c]
    return out


def _oracle(s, o, n, max_width):
    """log Z, and the tag and adjacent tag-pair marginals of one sentence."""
    length, types = s.shape[0], s.shape[-1]
    labellings = _labellings(n, types, max_width)
    scores = []
    for spans_ in labellings:
        covered = {w for i, j, _ in spans_ for w in range(i, j + 1)}
        scores.append(sum(s[i, j, c] for i, j, c in spans_) + sum(o[w] for w in range(n) if w not in covered))
    scores = np.array(scores)
    log_z = logsumexp(scores)
    p = np.exp(scores - log_z)
    unary, pairwise = np.zeros((length, BIO.num_tags)), np.zeros((length, BIO.num_tags, BIO.num_tags))
    for prob, spans_ in zip(p, labellings, strict=True):
        tags = _tags_of(n, spans_)
        for w in range(n):
            unary[w, tags[w]] += prob
            if w > 0:
                pairwise[w, tags[w - 1], tags[w]] += prob
    return log_z, unary, pairwise


def span_log_partition(span_scores, outside_scores, lengths, *, max_width: int | None = None):
    """log Z of every sentence by the plain semi-Markov forward pass (moved
    here from jaxkd.crf.spans, which only ever needs its tag-state form).

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
    s = jnp.where(valid_spans(length, lengths, max_width)[..., None], s, NEG)
    alpha0 = jnp.full((b, length + 1), NEG).at[:, 0].set(0.0)

    def step(alpha, j):  # alpha[:, k] = log-sum over labellings of words 0..k-1
        ending = jax.nn.logsumexp(alpha[:, :length, None] + s[:, :, j, :], axis=(1, 2))  # entity spans i..j
        value = jnp.logaddexp(alpha[:, j] + o[:, j], ending)
        return alpha.at[:, j + 1].set(value), None

    alpha, _ = jax.lax.scan(step, alpha0, jnp.arange(length))
    return jnp.take_along_axis(alpha, jnp.asarray(lengths)[:, None], axis=1)[:, 0]


@pytest.mark.parametrize("max_width", [None, 2])
def test_span_marginals_match_enumeration(max_width):
    rng = np.random.default_rng(0)
    b, length, types = 4, 5, 2
    s = rng.normal(size=(b, length, length, types)).astype(np.float32) * 1.5
    o = rng.normal(size=(b, length)).astype(np.float32)
    lengths = np.array([5, 3, 1, 0])
    log_z = jax.jit(span_log_partition, static_argnames="max_width")(s, o, lengths, max_width=max_width)
    unary, pairwise = tag_marginals(s, o, lengths, BIO, max_width=max_width)
    for row, n in enumerate(lengths):
        want_z, want_u, want_p = _oracle(s[row], o[row], n, max_width)
        np.testing.assert_allclose(log_z[row], want_z, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(unary[row], want_u, atol=1e-5)
        np.testing.assert_allclose(pairwise[row], want_p, atol=1e-5)
        words = (np.arange(length) < n).astype(np.float32)
        np.testing.assert_allclose(np.asarray(unary[row]).sum(-1), words, atol=1e-5)


def test_independent_span_classifier_conditioned_on_non_overlap():
    """With s = log-odds against "no entity" and o = 0, p(S) is the product
    over every span of its label's probability, renormalised over the
    labellings whose entities do not overlap."""
    rng = np.random.default_rng(1)
    n, types = 3, 2
    logits = rng.normal(size=(n, n, types + 1))  # per span: none, type 0, type 1
    logp = logits - logsumexp(logits, axis=-1, keepdims=True)
    s = (logp[..., 1:] - logp[..., :1]).astype(np.float32)[None]
    o = np.zeros((1, n), np.float32)
    labellings = _labellings(n, types, None)
    weights = []
    for chosen in labellings:
        label = {(i, j): c + 1 for i, j, c in chosen}
        weights.append(np.exp(sum(logp[i, j, label.get((i, j), 0)] for i in range(n) for j in range(i, n))))
    weights = np.array(weights) / np.sum(weights)
    want = np.zeros((n, BIO.num_tags))
    for w, chosen in zip(weights, labellings, strict=True):
        for word, tag in enumerate(_tags_of(n, chosen)):
            want[word, tag] += w
    unary, _ = tag_marginals(s, o, np.array([n]), BIO)
    np.testing.assert_allclose(unary[0], want, atol=1e-5)


def test_gold_spans_are_the_chunks_the_evaluation_reads():
    rng = np.random.default_rng(2)
    length = 7
    tag_ids = rng.integers(0, BIO.num_tags, size=(64, length))  # any sequence, stray I- tags included
    lengths = rng.integers(0, length + 1, size=64)
    mask = np.arange(length)[None, :] < lengths[:, None]
    got = np.asarray(spans.gold_spans(tag_ids, mask, BIO))
    for row, n in enumerate(lengths):
        want = np.zeros((length, length), np.int32)
        for kind, i, j in chunks(VOCAB.decode(tag_ids[row, :n])):
            want[i, j] = VOCAB.types.index(kind) + 1
        np.testing.assert_array_equal(got[row], want)


def test_greedy_decoding_accepts_the_best_non_overlapping_spans():
    rng = np.random.default_rng(3)
    b, length, types = 16, 6, 2
    logits = rng.normal(size=(b, length, length, types + 1)).astype(np.float32) * 2
    logits[..., 0] += 1.0  # most spans "no entity"
    lengths = rng.integers(0, length + 1, size=b)
    mask = np.arange(length)[None, :] < lengths[:, None]
    got = np.asarray(spans.greedy_decode(logits, mask, BIO))
    logp = logits - logsumexp(logits, axis=-1, keepdims=True)
    for row, n in enumerate(lengths):
        candidates = [(-logp[row, i, j, 1:].max(), i, j, int(logp[row, i, j, 1:].argmax()))
                      for i in range(n) for j in range(i, n) if logp[row, i, j, 1:].max() > logp[row, i, j, 0]]
        accepted, covered = [], set()
        for _, i, j, c in sorted(candidates):
            if not covered & set(range(i, j + 1)):
                accepted.append((i, j, c))
                covered |= set(range(i, j + 1))
        np.testing.assert_array_equal(got[row], _tags_of(n, accepted) + [BIO.outside] * (length - n))
