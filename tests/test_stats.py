"""Entity counts, micro F1 and the paired bootstrap (jaxkd/stats.py) against
hand-computed values and exact enumeration of every resample."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxkd.evaluate import entity_scores
from jaxkd.stats import micro_f1, paired_bootstrap, sentence_counts


def test_sentence_counts_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"], ["B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "O"], ["O"]]
    # sentence 1: PER right, LOC missed, ORG spurious; 2: one spurious; 3: one missed.
    assert sentence_counts(gold, pred).tolist() == [[1, 2, 2], [0, 1, 0], [0, 0, 1]]
    counts = sentence_counts(gold, pred).sum(0)
    assert micro_f1(counts) == pytest.approx(200 * 1 / (3 + 3))
    assert micro_f1(counts) == pytest.approx(entity_scores(gold, pred)["f1"])
    assert micro_f1(np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="sentence 0"):
        sentence_counts([["O"]], [["O", "O"]])


def _random_counts(rng, runs, sentences):
    gold = rng.integers(0, 4, (runs, sentences))
    pred = rng.integers(0, 4, (runs, sentences))
    correct = np.minimum(gold, pred) - rng.integers(0, 2, (runs, sentences)).clip(0, np.minimum(gold, pred))
    return np.stack([correct, pred, gold], -1)


def test_identical_systems_differ_by_exactly_zero():
    counts = _random_counts(np.random.default_rng(0), 3, 40)
    for seeds in (False, True):
        out = paired_bootstrap(counts, counts, replicates=300, resample_seeds=seeds)
        assert out["difference"] == out["low"] == out["high"] == 0.0 and out["p_not_better"] == 1.0


def test_interval_matches_the_exact_resampling_distribution():
    """Four sentences: all 4^4 = 256 resamples enumerated, each with probability
    1/256; the bootstrap's quantiles and tail share converge to theirs."""
    rng = np.random.default_rng(1)
    a, b = _random_counts(rng, 2, 4), _random_counts(rng, 2, 4)
    exact = []
    for draw in itertools.product(range(4), repeat=4):
        idx = list(draw)
        exact.append(micro_f1(a[:, idx].sum(1)).mean() - micro_f1(b[:, idx].sum(1)).mean())
    exact = np.sort(exact)
    out = paired_bootstrap(a, b, replicates=40000, seed=3)
    assert out["difference"] == pytest.approx(micro_f1(a.sum(1)).mean() - micro_f1(b.sum(1)).mean())
    # The 2.5% and 97.5% quantiles of a discrete distribution: compare with the
    # exact distribution's values within one step of it.
    for value, q in ((out["low"], 0.025), (out["high"], 0.975)):
        lo, hi = np.quantile(exact, [max(q - 0.01, 0), min(q + 0.01, 1)])
        assert lo - 1e-9 <= value <= hi + 1e-9, (value, q, lo, hi)
    assert out["p_not_better"] == pytest.approx(np.mean(exact <= 0), abs=0.01)


def test_a_clearly_better_system_has_an_interval_above_zero():
    rng = np.random.default_rng(2)
    gold = rng.integers(1, 4, (3, 200))
    good = np.stack([gold, gold, gold], -1)  # every entity right
    bad = np.stack([gold // 2, gold, gold], -1)  # about half right
    out = paired_bootstrap(good, bad, replicates=500, resample_seeds=True)
    assert out["low"] > 20 and out["p_not_better"] == 0.0
    with pytest.raises(ValueError, match="same sentences"):
        paired_bootstrap(good, bad[:, :10])
