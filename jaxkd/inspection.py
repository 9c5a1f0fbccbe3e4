"""A trained run's CRF scores for chosen sentences (notebooks, debugging).

    run = load_run("runs/demo/teacher")
    scores = sentence_scores(run, "@user I love New York".split())
    scores.emissions  # [n, N] float32, one row per word
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxkd.data.batching import Buckets, make_batches
from jaxkd.data.labels import LabelVocab
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.losses import CRFScores
from jaxkd.training import checkpoint, model_files
from jaxkd.training.steps import Split, _merge, split


class Run(NamedTuple):
    """A trained tagger restored from its workdir."""

    workdir: Path
    labels: LabelVocab
    encoder: SubwordEncoder
    parts: Split  # graph definitions and the restored tagger's state
    params: Any  # the checkpoint's parameters (replace parts.params)

    @property
    def tagger(self):
        """The :class:`~jaxkd.models.tagger.Tagger` with the checkpoint's
        weights, in eval mode."""
        return _merge(self.parts.eval_def, self.params, self.parts.rest)


def load_run(workdir: str | Path, checkpoint_name: str = "best", *, dtype: str | None = None) -> Run:
    """Restores ``<workdir>/checkpoints/<checkpoint_name>`` (no pickle, no code);
    ``dtype`` overrides the run's compute dtype."""
    workdir = Path(workdir)
    ckpt = workdir / "checkpoints" / checkpoint_name
    if not checkpoint.exists(ckpt):
        raise FileNotFoundError(f"{ckpt} holds no checkpoint: train first (python -m jaxkd.train ... --workdir {workdir})")
    parts = split(model_files.abstract_tagger(workdir, dtype=dtype))
    params = checkpoint.restore(ckpt, {"params": parts.params}, ignore_extra=True)["params"]
    encoder = SubwordEncoder.from_pretrained(model_files.model_dir(workdir))
    return Run(workdir, model_files.read_labels(workdir), encoder, parts, params)


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
    rows = run.encoder.encode([list(words)])
    if len(rows) != 1:
        raise ValueError(f"the sentence needs {len(rows)} encoder windows; inspect a shorter one (at most {run.encoder.window} sub-words)")
    buckets = Buckets.fit(rows, run.encoder.window, min_length=16)
    (batch,) = make_batches(rows, buckets, 1, pad_id=run.encoder.pad_id, filler_ids=run.encoder.filler_ids)
    s = jax.device_get(run.tagger(batch))
    n = len(words)
    return CRFScores(np.asarray(s.emissions[0, :n]), np.asarray(s.transitions), np.asarray(s.start), np.asarray(s.end))
