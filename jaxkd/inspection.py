"""A trained run's CRF scores for chosen sentences (notebooks, debugging).

    run = load_run("runs/demo/teacher")
    scores = sentence_scores(run, "@user I love New York".split())
    scores.emissions  # [n, N] float32, one row per word
"""

from __future__ import annotations

import jax
import numpy as np

from jaxkd.crf import CRFScores
from jaxkd.data.batching import Buckets, make_batches
from jaxkd.models.heads import unsupported
from jaxkd.training.run_dir import Run, load_run
from jaxkd.training.steps import merge, shared

__all__ = ["Run", "load_run", "sentence_scores"]


def sentence_scores(run: Run, words: list[str]) -> CRFScores:
    """The CRF scores of one sentence.

    Args:
      run: from :func:`load_run`.
      words: the sentence, one string per word (it must fit one encoder window).

    Returns:
      CRFScores of numpy arrays: emissions [n, N] (n = len(words)),
      transitions [N, N], start [N], end [N].
    """
    if not words:
        raise ValueError("the sentence has no words")
    refusal = unsupported(run.tagger.head_kind, "crf scores")
    if refusal:
        raise ValueError(refusal)
    rows = run.encoder.encode([list(words)])
    if len(rows) != 1:
        raise ValueError(
            f"the sentence needs {len(rows)} encoder windows; inspect a shorter one "
            f"(at most {run.encoder.window} sub-words)"
        )
    buckets = Buckets.fit(rows, run.encoder.window, min_length=16)
    (batch,) = make_batches(rows, buckets, 1, pad_id=run.encoder.pad_id, filler_ids=run.encoder.filler_ids)
    scores = shared(("scores", run.parts.eval_def), lambda: _scores_fn(run.parts.eval_def))
    s = jax.device_get(scores(run.params, run.parts.rest, batch))
    n = len(words)
    return CRFScores(np.asarray(s.emissions[0, :n]), np.asarray(s.transitions), np.asarray(s.start), np.asarray(s.end))


def _scores_fn(eval_def):
    """Compiled ``(params, rest, batch) -> CRFScores`` of a tagger graph (op by
    op, the first call of each sentence length costs seconds of dispatch)."""

    @jax.jit
    def scores(params, rest, batch):
        return merge(eval_def, params, rest)(batch)

    return scores
