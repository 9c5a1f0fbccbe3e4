"""Labelled non-overlapping spans (jaxkd.crf.spans) against enumeration of
every labelling of short sentences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from jaxkd.crf import spans


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


def _oracle(s, o, n, max_width):
    """log Z, and the outside / begin / inside marginals of one sentence."""
    types = s.shape[-1]
    labellings = _labellings(n, types, max_width)
    scores = []
    for spans_ in labellings:
        covered = {w for i, j, _ in spans_ for w in range(i, j + 1)}
        scores.append(sum(s[i, j, c] for i, j, c in spans_) + sum(o[w] for w in range(n) if w not in covered))
    scores = np.array(scores)
    log_z = logsumexp(scores)
    p = np.exp(scores - log_z)
    outside, begin, inside = np.zeros(s.shape[0]), np.zeros((s.shape[0], types)), np.zeros((s.shape[0], types))
    for prob, spans_ in zip(p, labellings):
        covered = set()
        for i, j, c in spans_:
            begin[i, c] += prob
            inside[i + 1 : j + 1, c] += prob
            covered.update(range(i, j + 1))
        for word in range(n):
            if word not in covered:
                outside[word] += prob
    return log_z, outside, begin, inside


@pytest.mark.parametrize("max_width", [None, 2])
def test_span_marginals_match_enumeration(max_width):
    rng = np.random.default_rng(0)
    b, length, types = 4, 5, 2
    s = rng.normal(size=(b, length, length, types)).astype(np.float32) * 1.5
    o = rng.normal(size=(b, length)).astype(np.float32)
    lengths = np.array([5, 3, 1, 0])
    log_z = spans.span_log_partition(s, o, lengths, max_width=max_width)
    outside, begin, inside = spans.bio_marginals(s, o, lengths, max_width=max_width)
    for row, n in enumerate(lengths):
        want_z, want_o, want_b, want_i = _oracle(s[row], o[row], n, max_width)
        np.testing.assert_allclose(log_z[row], want_z, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(outside[row], want_o, atol=1e-5)
        np.testing.assert_allclose(begin[row], want_b, atol=1e-5)
        np.testing.assert_allclose(inside[row], want_i, atol=1e-5)
        total = np.asarray(outside[row]) + np.asarray(begin[row]).sum(-1) + np.asarray(inside[row]).sum(-1)
        np.testing.assert_allclose(total, (np.arange(length) < n).astype(np.float32), atol=1e-5)  # one per word


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
    want_begin = np.zeros((n, types))
    for w, chosen in zip(weights, labellings):
        for i, _, c in chosen:
            want_begin[i, c] += w
    _, begin, _ = spans.bio_marginals(s, o, np.array([n]))
    np.testing.assert_allclose(begin[0], want_begin, atol=1e-5)
