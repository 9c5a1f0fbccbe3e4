"""Label vocabulary (jaxkd.data.labels)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxkd.data import DataError, LabelVocab, Sentence


def test_order_is_O_then_types_sorted_with_B_before_I_and_completed():
    sents = [
        Sentence(("a", "b", "c"), ("B-PER", "I-PER", "O")),
        Sentence(("d", "e"), ("B-LOC", "B-MISC")),  # LOC and MISC never seen with I-
    ]
    vocab = LabelVocab.from_sentences(sents)
    assert vocab.labels == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-PER", "I-PER")
    assert vocab.types == ("LOC", "MISC", "PER")
    assert LabelVocab.from_tags(["I-PER", "B-PER", "O"]) == LabelVocab.from_tags(["B-PER"])
    assert len(vocab) == 7 and "I-LOC" in vocab and "B-ORG" not in vocab


def test_encode_decode_roundtrip_and_unseen():
    vocab = LabelVocab.from_types(["geo-loc", "person"])
    tags = ["O", "B-person", "I-person", "B-geo-loc"]
    ids = vocab.encode(tags)
    assert ids.dtype == np.int32 and ids.tolist() == [0, 3, 4, 1]
    assert vocab.decode(ids) == tags and vocab.decode([0, 2]) == ["O", "I-geo-loc"]
    with pytest.raises(DataError, match="'B-movie' is not in the label vocabulary"):
        vocab.encode(["B-movie"])
    assert vocab.encode(["B-movie", "B-person"], allow_unseen=True).tolist() == [0, 3]
    with pytest.raises(DataError, match="tag id 5"):
        vocab.decode([5])


def test_constraints_follow_bio():
    vocab = LabelVocab.from_types(["LOC", "PER"])  # O B-LOC I-LOC B-PER I-PER
    c = vocab.constraints()
    trans, start, end = map(np.asarray, c)
    assert trans.shape == (5, 5) and start.shape == (5,) and end.shape == (5,)
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    assert trans[1, 2] and trans[2, 2] and not trans[0, 2] and not trans[3, 2] and not trans[2, 4]


def test_json_roundtrip_keeps_order():
    vocab = LabelVocab(("O", "B-Z", "I-Z", "B-A", "I-A"))  # saved order is kept as is
    again = LabelVocab.from_json(vocab.to_json())
    assert again == vocab and again.labels == vocab.labels
    for bad in ("not json", '{"x": 1}', '{"labels": ["B-A", "O"]}', '{"labels": [1]}'):
        with pytest.raises(DataError):
            LabelVocab.from_json(bad)


def test_invalid_vocabularies():
    with pytest.raises(ValueError, match="first label"):
        LabelVocab(("B-A", "O"))
    with pytest.raises(ValueError, match="duplicate"):
        LabelVocab(("O", "B-A", "B-A"))
    with pytest.raises(DataError):
        LabelVocab.from_tags(["O", "PER"])
