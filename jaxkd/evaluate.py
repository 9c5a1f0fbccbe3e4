"""Entity-level evaluation (conlleval-compatible, via seqeval) and decoding of
whole splits back to per-word tag strings."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged entity precision / recall / F1 in percent, as conlleval.

    Uses seqeval's default (conlleval-compatible) mode. ``token_f1`` is given
    beside (micro F1 over words whose gold or predicted tag is not ``O``; the
    official Efficient-KD code reported this kind of number), never instead.

    Args:
      gold, pred: per sentence, one tag string per word (IOB2).

    Returns:
      {"precision", "recall", "f1", "token_f1", "support", "per_type":
      {TYPE: {"precision", "recall", "f1", "support"}}}.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        name: {
            "precision": 100 * row["precision"],
            "recall": 100 * row["recall"],
            "f1": 100 * row["f1-score"],
            "support": int(row["support"]),
        }
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {
        "precision": 100 * precision_score(gold, pred, zero_division=0),
        "recall": 100 * recall_score(gold, pred, zero_division=0),
        "f1": 100 * f1_score(gold, pred, zero_division=0),
        "token_f1": token_f1(gold, pred),
        "support": sum(v["support"] for v in per_type.values()),
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


def format_scores(name: str, scores: dict) -> str:
    """A conlleval-like block: the overall line, then one line per type."""
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
