"""A trained tagger's tags of every word of a split, their scores (entity F1,
or token accuracy for tags that are not chunks), and the content of
``results.json`` (the best dev epoch scored on dev and test)."""

from __future__ import annotations

import jax
import numpy as np

from jaxkd.data.pipeline import EncodedCorpus
from jaxkd.evaluate import scores
from jaxkd.training.mesh import Placement
from jaxkd.training.state import RunState
from jaxkd.training.teacher import Targets


def predict_split(decode, params, rest, encoded: EncodedCorpus, split_name: str, batch_size: int, *,
                  place: Placement | None = None) -> list[list[str]]:
    """The decoded tags of every word of a split, as label strings per sentence
    (``place``: where the parameters are, e.g. a mesh over several processes)."""
    batches = encoded.batches(split_name, batch_size, shuffle=False)
    if place is None:
        values = [np.asarray(decode(params, rest, b)) for b in batches]
    else:
        values = [place.to_host(decode(params, rest, place.rows(b))) for b in batches]
    per_sentence = encoded.stitch(split_name, batches, values)
    return [encoded.corpus.labels.decode(ids) for ids in per_sentence]


def score_split(decode, params, rest, encoded: EncodedCorpus, split_name: str, batch_size: int, *,
                place: Placement | None = None) -> dict:
    """The scores of a split (:func:`jaxkd.evaluate.scores`: entity precision,
    recall and F1, or token accuracy; ``"score"`` is the one that ranks epochs)."""
    pred = predict_split(decode, params, rest, encoded, split_name, batch_size, place=place)
    gold = [list(s.tags) for s in encoded.corpus.splits[split_name]]
    return scores(gold, pred, chunks=encoded.corpus.labels.chunks)


def score(state: RunState, params, split_name: str) -> dict:
    """:func:`score_split` of the run's tagger with ``params``."""
    return score_split(state.fns.decode, params, state.rest, state.encoded, split_name,
                       state.config.train.eval_batch_size, place=state.placement)


def final_results(state: RunState, targets: Targets) -> dict:
    """The best dev epoch scored on dev and test, with the run's history.
    Where the best epoch is the last (its weights are ``state.params``) and
    this process scored it, its dev scores and weights are used as they are,
    which restoring and scoring the `best` checkpoint would give again."""
    config = state.config
    best_is_last = bool(state.history) and state.best["epoch"] == state.history[-1]["epoch"]
    if best_is_last:
        best_params = state.params
    else:
        best_params = state.checkpoints.restore("best", params=state.params)["params"]  # placed like state.params
    dev = state.best_dev if best_is_last and state.best_dev is not None else score(state, best_params, "dev")
    return {
        "mode": config.mode,
        "method": state.spec.method,
        "dataset": state.corpus.name,
        "encoder": str(config.model.checkpoint),
        "num_layers": config.model.num_layers or None,
        "best_epoch": state.best["epoch"] + 1,
        "metric": state.metric,
        "labels": list(state.corpus.labels.labels),
        "scheme": state.corpus.labels.scheme,
        "dev": dev,
        "test": score(state, best_params, "test"),
        "epochs": state.history,
        "teacher_cache_s": targets.cache_s,
        "teacher_cache_reused": targets.reused,
        "targets_in_step": state.spec.targets_in_step,
        "timing_note": "seconds of compiled calls after warm-up; student_backward_s = train step - forward",
        "notes": list(state.corpus.notes),
        "device": str(jax.devices()[0].device_kind),
        "mesh": state.placement.describe(),
        "jax_version": jax.__version__,
    }
