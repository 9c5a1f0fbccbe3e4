"""Static-shape buckets and batches (jaxkd.data.batching, .pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxkd.data import (
    Batch,
    Buckets,
    DataError,
    LabelVocab,
    Sentence,
    SubwordEncoder,
    encode_corpus,
    load_corpus,
    make_batches,
    stitch,
)
from jaxkd.data.batching import sorted_batches
from jaxkd.offline import minilm_path

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "john",
    "york",
    "un",
    "##s",
    "##able",
]
WORDS = ["the", "cats", "unable", "sat", "zzz", "on", "mat", "john", "york"]


def random_sentences(n: int, seed: int = 0, longest: int = 40) -> list[Sentence]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, longest + 1))
        words = tuple(rng.choice(WORDS, size=k).tolist())
        tags = tuple(rng.choice(["O", "B-PER", "O"], size=k).tolist())
        out.append(Sentence(words, tags))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # vocab.txt only: the encoder builds the WordPiece tokenizer itself (the
    # explicit tokenizer.json route is tested in test_data_tokenization.py).
    path = tmp_path_factory.mktemp("ckpt")
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (path / "config.json").write_text('{"max_position_embeddings": 64}')
    return SubwordEncoder.from_pretrained(path)


def epoch(encoder, sentences, buckets=None, batch_size=4, **kw):
    vocab = LabelVocab.from_types(["PER"])
    rows = encoder.encode(sentences, vocab)
    buckets = buckets or Buckets.fit(rows, encoder.window)
    batches = make_batches(
        rows, buckets, batch_size, pad_id=encoder.pad_id, filler_ids=encoder.filler_ids, **kw
    )
    return rows, buckets, batches


def test_batch_arrays_shapes_and_dtypes(tiny):
    sentences = random_sentences(30)
    rows, buckets, batches = epoch(tiny, sentences)
    assert buckets.shapes[-1][0] == 64 and all(t in (16, 32, 64) for t, _ in buckets.shapes)
    assert all(w <= t - 2 and w % 8 == 0 or w == t - 2 for t, w in buckets.shapes)
    for b in batches:
        assert isinstance(b, Batch)
        B, T = b.input_ids.shape
        W = b.word_index.shape[1]
        assert B == 4 and (T, W) in buckets.shapes
        for name, dtype, shape in [
            ("input_ids", np.int32, (B, T)),
            ("attention_mask", np.int32, (B, T)),
            ("token_type_ids", np.int32, (B, T)),
            ("word_index", np.int32, (B, W)),
            ("word_mask", np.bool_, (B, W)),
            ("tags", np.int32, (B, W)),
            ("sentence_index", np.int32, (B,)),
            ("word_offset", np.int32, (B,)),
        ]:
            arr = getattr(b, name)
            assert arr.dtype == dtype and arr.shape == shape, name
        # prefix masks; padding positions are zero; word_index inside attention
        for mask in (b.word_mask, b.attention_mask.astype(bool)):
            assert np.all(np.diff(mask.astype(int), axis=1) <= 0)
        assert np.all(b.word_index[~b.word_mask] == 0) and np.all(b.tags[~b.word_mask] == 0)
        picked = np.take_along_axis(b.attention_mask, b.word_index, axis=1)
        assert np.all(picked[b.word_mask] == 1) and np.all(b.token_type_ids == 0)


def test_padding_rows_fill_the_last_batch_of_a_bucket(tiny):
    rows, buckets, batches = epoch(tiny, random_sentences(5, longest=3), batch_size=4)
    assert len(batches) == 2 and len(buckets.shapes) == 1
    last = batches[-1]
    assert last.sentence_index.tolist() == [4, -1, -1, -1]
    assert not last.word_mask[1:].any()
    assert last.input_ids[1:, :2].tolist() == [list(tiny.filler_ids)] * 3
    assert last.attention_mask[1:].sum(axis=1).tolist() == [2, 2, 2]
    bare = make_batches(rows, buckets, 4)  # no filler: fully masked padding rows
    assert bare[-1].attention_mask[1:].sum() == 0


def test_every_word_once_and_stitched_back_in_order(tiny):
    sentences = random_sentences(50, seed=1, longest=90)  # some need several windows
    rows, buckets, batches = epoch(tiny, sentences, batch_size=8)
    assert len(rows) > len(sentences)
    shapes = {(b.input_ids.shape, b.word_index.shape) for b in batches}
    assert len(shapes) <= len(buckets.shapes) <= 3
    vocab = LabelVocab.from_types(["PER"])
    back = stitch(batches, [b.tags for b in batches], [len(s.words) for s in sentences])
    assert [vocab.decode(t) for t in back] == [list(s.tags) for s in sentences]
    # per-word vectors (e.g. marginals) stitch too
    onehot = [np.eye(3, dtype=np.float32)[b.tags] for b in batches]
    back3 = stitch(batches, onehot, [len(s.words) for s in sentences])
    assert back3[0].shape == (len(sentences[0].words), 3)
    with pytest.raises(DataError, match="covered by 0 rows"):
        stitch(batches[1:], [b.tags for b in batches[1:]], [len(s.words) for s in sentences])
    with pytest.raises(DataError, match="covered by 2 rows"):
        stitch(
            batches + batches[:1],
            [b.tags for b in batches + batches[:1]],
            [len(s.words) for s in sentences],
        )


def test_sorted_batches_for_labelling_leave_only_the_last_batch_partial(tiny):
    sentences = random_sentences(50, seed=2, longest=90)
    vocab = LabelVocab.from_types(["PER"])
    rows = tiny.encode(sentences, vocab)
    buckets = Buckets(((16, 14), (24, 22), (32, 30), (48, 46)), tiny.window)
    batches = sorted_batches(rows, buckets, 8, pad_id=tiny.pad_id, filler_ids=tiny.filler_ids)
    full, rest = divmod(len(rows), 8)
    assert [int((b.sentence_index >= 0).sum()) for b in batches] == [8] * full + [rest] * (rest > 0)
    for b in batches:  # each of the smallest shape that holds its longest row
        longest, words = int(b.attention_mask.sum(1).max()), int(b.word_mask.sum(1).max())
        assert b.input_ids.shape[1:] + b.word_index.shape[1:] == buckets.shape_for(longest, words)
    back = stitch(batches, [b.tags for b in batches], [len(s.words) for s in sentences])
    assert [vocab.decode(t) for t in back] == [list(s.tags) for s in sentences]


def test_evaluation_order_is_stable_and_unshuffled(tiny):
    sentences = random_sentences(40, seed=2)
    _, buckets, a = epoch(tiny, sentences)
    _, _, b = epoch(tiny, sentences, seed=5, epoch=3)  # ignored without shuffle
    assert all(np.array_equal(x.input_ids, y.input_ids) for x, y in zip(a, b))
    lengths = [x.input_ids.shape[1] for x in a]
    assert lengths == sorted(lengths)  # shortest bucket first
    for T in set(lengths):  # original order inside a bucket
        order = [s for x in a if x.input_ids.shape[1] == T for s in x.sentence_index if s >= 0]
        assert order == sorted(order)


def test_shuffling_is_seeded_by_seed_and_epoch(tiny):
    sentences = random_sentences(60, seed=3)

    def order(**kw):
        _, _, batches = epoch(tiny, sentences, shuffle=True, **kw)
        return [tuple(b.sentence_index.tolist()) for b in batches]

    base = order(seed=0, epoch=0)
    assert order(seed=0, epoch=0) == base
    assert order(seed=0, epoch=1) != base and order(seed=1, epoch=0) != base
    assert sorted(s for b in base for s in b if s >= 0) == list(range(60))
    _, _, plain = epoch(tiny, sentences)
    assert len(base) == len(plain)  # same number of batches every epoch


def test_rows_outside_fitted_buckets_use_the_catch_all(tiny):
    rows, buckets, _ = epoch(tiny, random_sentences(10, longest=4))
    long_rows = tiny.encode([["the"] * 40])
    assert buckets.shape_for(len(long_rows[0].input_ids), 40) == (64, 62)
    (batch,) = make_batches(long_rows, buckets, 2)
    assert batch.input_ids.shape == (2, 64) and batch.word_index.shape == (2, 62)
    with pytest.raises(DataError, match="exceeds the window"):
        buckets.shape_for(65, 1)


def test_batch_is_a_jax_pytree():
    jax = pytest.importorskip("jax")
    b = Batch(*[np.zeros((2, 3), np.int32)] * 8)
    assert len(jax.tree_util.tree_leaves(b)) == 8


def test_wnut_epoch_with_minilm():
    corpus = load_corpus("wnut16")
    data = encode_corpus(corpus, SubwordEncoder.from_pretrained(minilm_path()))
    assert len(data.buckets.shapes) <= 6
    for split in ("train", "dev", "test"):
        batches = data.batches(split, 32)
        shapes = {(b.input_ids.shape, b.word_index.shape) for b in batches}
        assert len(shapes) <= len(data.buckets.shapes)
        back = data.stitch(split, batches, [b.tags for b in batches])
        assert [corpus.labels.decode(t) for t in back] == [
            list(s.tags) for s in corpus.splits[split]
        ]
    train = data.batches("train", 32, epoch=1)
    assert [b.sentence_index.tolist() for b in train] != [
        b.sentence_index.tolist() for b in data.batches("train", 32)
    ]
    assert sum(int((b.sentence_index >= 0).sum()) for b in train) == len(corpus.train)
