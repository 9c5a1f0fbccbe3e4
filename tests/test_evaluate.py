"""jaxkd's conlleval scorer against seqeval (default mode) as the oracle, on
random tag sequences mixing every prefix kind, types and sentence breaks."""

from __future__ import annotations

import numpy as np
import pytest

from jaxkd.evaluate import chunks, entity_scores

seqeval = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

TAGS = ("O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "I-MISC")


def _random_corpus(rng, sentences: int, tags=TAGS):
    return [[str(t) for t in rng.choice(tags, size=int(rng.integers(0, 9)))] for _ in range(sentences)]


def test_chunks_read_tags_as_seqeval_does():
    rng = np.random.default_rng(0)
    for sentence in _random_corpus(rng, 3000):
        assert chunks(sentence) == get_entities(sentence), sentence


def test_entity_scores_match_seqeval_overall_and_per_type():
    rng = np.random.default_rng(1)
    for _ in range(60):
        gold = _random_corpus(rng, 8)
        pred = [[str(t) if rng.random() < 0.3 else g for g, t in zip(s, rng.choice(TAGS, size=len(s)))] for s in gold]
        ours = entity_scores(gold, pred)
        metrics = (("precision", seqeval.precision_score), ("recall", seqeval.recall_score), ("f1", seqeval.f1_score))
        for key, fn in metrics:
            assert ours[key] == pytest.approx(100 * fn(gold, pred, zero_division=0), abs=1e-9)
        report = seqeval.classification_report(gold, pred, output_dict=True, zero_division=0)
        per_type = {k: v for k, v in report.items() if not k.endswith(" avg")}
        assert set(ours["per_type"]) == set(per_type)
        for kind, row in per_type.items():
            mine = ours["per_type"][kind]
            assert mine["support"] == row["support"]
            for key, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
                assert mine[key] == pytest.approx(100 * row[theirs], abs=1e-9)


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["O", "O"]]
    s = entity_scores(gold, pred)
    # gold chunks: PER(0-1), LOC(3), LOC(s2: 1); predicted: PER(0-1), PER(3); one hit
    assert (s["precision"], s["recall"], s["support"]) == (50.0, pytest.approx(100 / 3), 3)
    assert s["per_type"]["PER"]["precision"] == 50.0 and s["per_type"]["LOC"]["recall"] == 0.0
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted"):
        entity_scores(gold, [pred[0], ["O"]])
