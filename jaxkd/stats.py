"""Statistics for comparing trained taggers: entity counts per sentence,
micro F1 from counts, and paired bootstrap intervals over sentences.

Token tags (parts of speech) are counted as (correct words, words, words),
so the same micro F1 of summed counts is their token accuracy and every
function here serves both.

A comparison of two systems (methods) on one test set: each system has runs
(seeds), each run a ``[S, 3]`` array of entity counts per test sentence
(correct, predicted, gold). The statistic is the difference of the two
systems' mean-over-seeds micro F1. The bootstrap draws test sentences with
replacement and applies the same draw to both systems and every seed, so the
interval reflects which sentences happened to be in the test set with the
pairing kept (Koehn 2004; Berg-Kirkpatrick et al. 2012).
``resample_seeds=True`` also draws the seeds, with the same seed indices for
both systems (a student's seed fixes its initial head and batch order for
every method), so seed-to-seed variation widens the interval as well.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxkd.evaluate import chunks as spans


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, chunks: bool = True
                    ) -> np.ndarray:
    """Entity counts of each sentence (or, ``chunks=False``, word counts).

    Args:
      gold, pred: ``[S][n_s]`` tag strings (IOB1/IOB2/IOBES, read as
        conlleval; or token tags).
      chunks: whether the tags spell chunks.

    Returns:
      ``[S, 3] int64``: correct (same type and span), predicted, gold
      entities; for token tags: correct words, words, words.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    out = np.zeros((len(gold), 3), np.int64)
    for s, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted")
        if not chunks:
            out[s] = (sum(a == b for a, b in zip(g, p)), len(g), len(g))
            continue
        g_chunks, p_chunks = set(spans(g)), set(spans(p))
        out[s] = (len(g_chunks & p_chunks), len(p_chunks), len(g_chunks))
    return out


def micro_f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1 (percent) of summed counts.

    Args:
      counts: ``[..., 3]`` summed (correct, predicted, gold).

    Returns:
      ``[...]`` F1 = 200 * correct / (predicted + gold); 0 where both are 0.
    """
    counts = np.asarray(counts, np.float64)
    denominator = counts[..., 1] + counts[..., 2]
    return np.where(denominator > 0, 200.0 * counts[..., 0] / np.maximum(denominator, 1e-300), 0.0)


def paired_bootstrap(
    system: np.ndarray,
    baseline: np.ndarray,
    *,
    replicates: int = 2000,
    seed: int = 0,
    resample_seeds: bool = False,
    level: float = 0.95,
) -> dict:
    """Difference of mean micro F1 between two systems, with a percentile
    bootstrap interval over test sentences (module docstring).

    Args:
      system, baseline: ``[R, S, 3]`` counts of R runs (seeds) on the same S
        sentences; run r of both is seed r when ``resample_seeds``.
      replicates: bootstrap draws.
      resample_seeds: also draw the runs (paired), not only the sentences.
      level: the interval's coverage.

    Returns:
      ``{"difference": float, "low": float, "high": float,
      "p_not_better": float}``: the observed difference (system - baseline,
      F1 points), the interval, and the share of draws with a difference <= 0.
    """
    system, baseline = np.asarray(system), np.asarray(baseline)
    if system.ndim != 3 or system.shape[1:] != baseline.shape[1:] or system.shape[2] != 3:
        raise ValueError(f"counts must be [R, S, 3] over the same sentences; got {system.shape} and {baseline.shape}")
    if resample_seeds and system.shape[0] != baseline.shape[0]:
        raise ValueError(
            f"paired seeds need as many runs of each system; got {system.shape[0]} and {baseline.shape[0]}"
        )
    observed = micro_f1(system.sum(1)).mean() - micro_f1(baseline.sum(1)).mean()
    rng = np.random.default_rng(seed)
    n = system.shape[1]
    # weights[b, s]: how often draw b took sentence s.
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(replicates)]).astype(np.float64)
    f1_system = micro_f1(np.einsum("bs,rsk->brk", weights, system))  # [B, R]
    f1_baseline = micro_f1(np.einsum("bs,rsk->brk", weights, baseline))
    if resample_seeds:
        runs = rng.integers(0, system.shape[0], (replicates, system.shape[0]))
        f1_system = np.take_along_axis(f1_system, runs, axis=1)
        f1_baseline = np.take_along_axis(f1_baseline, runs, axis=1)
    draws = f1_system.mean(1) - f1_baseline.mean(1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return {
        "difference": float(observed),
        "low": float(low),
        "high": float(high),
        "p_not_better": float(np.mean(draws <= 0.0)),
    }
