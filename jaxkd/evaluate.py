"""Evaluation: entity-level scores of chunk tags, conlleval's reading of
chunks as seqeval's default mode scores them (tags split by
:func:`jaxkd.data.scheme.split_tag`), and token accuracy of tags that are not
chunks (parts of speech). :func:`scores` picks by the tag scheme and names
the score a run selects its best epoch by.

The chunk reading is jaxkd's own (importing seqeval costs a process 1-1.6 s,
most of it scikit-learn); the tests check it against seqeval on random tag
sequences of every prefix kind.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from jaxkd.data.scheme import split_tag


def _chunk_ends(prev: str, prefix: str, prev_type: str, kind: str) -> bool:
    """Whether a chunk ended at the previous word."""
    return (
        prev in "ES"
        or (prev in "BI" and prefix in "BSO")
        or (prev not in "O." and prev_type != kind)
    )


def _chunk_starts(prev: str, prefix: str, prev_type: str, kind: str) -> bool:
    """Whether a chunk starts at this word."""
    return (
        prefix in "BS"
        or (prev in "ESO" and prefix in "EI")
        or (prefix not in "O." and prev_type != kind)
    )


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence's tags as ``(type, first, last)`` word
    indices (``last`` inclusive), read as conlleval reads IOB1/IOB2/IOBES: an
    ``I-`` after ``O`` or after another type starts a chunk."""
    out = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = split_tag(tag, prefixes=None)  # conlleval's lenient reading
        kind = kind or "_"  # the type of O, and of a bare prefix
        if _chunk_ends(prev, prefix, prev_type, kind):
            out.append((prev_type, begin, i - 1))
        if _chunk_starts(prev, prefix, prev_type, kind):
            begin = i
        prev, prev_type = prefix, kind
    return out


def _prf(correct: int, predicted: int, support: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 100 * precision, 100 * recall, 100 * f1


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged entity precision / recall / F1 in percent, as conlleval.

    A predicted chunk counts when a gold chunk has the same type and span.
    ``token_f1`` is given beside (micro F1 over words whose gold or predicted
    tag is not ``O``; the official Efficient-KD code reported this kind of
    number), never instead.

    Args:
      gold, pred: per sentence, one tag string per word (IOB2).

    Returns:
      {"precision", "recall", "f1", "token_f1", "support", "per_type":
      {TYPE: {"precision", "recall", "f1", "support"}}}, types of the gold
      chunks and the predicted ones.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    true, guessed = set(), set()
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        true.update((i, *c) for c in chunks(g))
        guessed.update((i, *c) for c in chunks(p))
    hits = true & guessed
    support, predicted, correct = (Counter(c[1] for c in group) for group in (true, guessed, hits))
    per_type = {}
    for kind in sorted(set(support) | set(predicted)):
        precision, recall, f1 = _prf(correct[kind], predicted[kind], support[kind])
        per_type[kind] = {"precision": precision, "recall": recall, "f1": f1, "support": support[kind]}
    precision, recall, f1 = _prf(len(hits), len(guessed), len(true))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "token_f1": token_f1(gold, pred),
        "support": len(true),
        "per_type": per_type,
    }


def token_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro F1 (percent) over words, counting a word correct when its tag
    matches, ignoring words that are ``O`` in both."""
    g = np.array([t for s in gold for t in s], dtype=object)
    p = np.array([t for s in pred for t in s], dtype=object)
    true_pos = np.sum((g == p) & (g != "O"))
    pred_pos = np.sum(p != "O")
    gold_pos = np.sum(g != "O")
    if pred_pos == 0 or gold_pos == 0:
        return 0.0
    prec, rec = true_pos / pred_pos, true_pos / gold_pos
    return float(0.0 if prec + rec == 0 else 100 * 2 * prec * rec / (prec + rec))


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Token accuracy in percent, overall and per gold tag.

    Args:
      gold, pred: per sentence, one tag string per word.

    Returns:
      {"accuracy", "correct", "support", "per_tag": {TAG: {"accuracy",
      "support"}}}: ``support`` words, ``correct`` of them with the gold tag;
      a tag's accuracy is over the words whose gold tag it is (its recall).
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    support, correct = Counter(), Counter()
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        support.update(g)
        correct.update(a for a, b in zip(g, p) if a == b)
    total, hits = sum(support.values()), sum(correct.values())
    return {
        "accuracy": 100 * hits / total if total else 0.0,
        "correct": hits,
        "support": total,
        "per_tag": {t: {"accuracy": 100 * correct[t] / n, "support": n} for t, n in sorted(support.items())},
    }


def scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, chunks: bool = True) -> dict:
    """:func:`entity_scores` of chunk tags or :func:`token_accuracy` of token
    tags, with ``"metric"`` (``"f1"`` or ``"accuracy"``) and ``"score"``
    (its value: what a run's best epoch is chosen by) added."""
    if chunks:
        out = entity_scores(gold, pred)
        return {**out, "metric": "f1", "score": out["f1"]}
    out = token_accuracy(gold, pred)
    return {**out, "metric": "accuracy", "score": out["accuracy"]}


METRIC_NAMES = {"f1": "F1", "accuracy": "accuracy"}  # how logs name a score


def format_scores(name: str, scores: dict) -> str:
    """A conlleval-like block: the overall line, then one line per type (or,
    for token accuracy, per tag)."""
    if "per_tag" in scores:
        lines = [f"{name}: accuracy {scores['accuracy']:6.2f}  ({scores['support']} words)"]
        lines += [f"  {tag:>14}: accuracy {row['accuracy']:6.2f}  ({row['support']})"
                  for tag, row in scores["per_tag"].items()]
        return "\n".join(lines)
    lines = [
        f"{name}: precision {scores['precision']:6.2f}  recall {scores['recall']:6.2f}  "
        f"F1 {scores['f1']:6.2f}  ({scores['support']} entities)"
    ]
    for kind, row in sorted(scores["per_type"].items()):
        lines.append(
            f"  {kind:>14}: precision {row['precision']:6.2f}  recall {row['recall']:6.2f}  "
            f"F1 {row['f1']:6.2f}  ({row['support']})"
        )
    return "\n".join(lines)
