"""Sub-word alignment and windows (jaxkd.data.tokenization)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from jaxkd.data import DataError, LabelVocab, Sentence, SubwordEncoder, load_corpus, load_tokenizer
from jaxkd.offline import minilm_path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "john",
    "smith",
    "lives",
    "in",
    "new",
    "york",
    ".",
    "'",
    "un",
    "a",
    "b",
]
PIECES = ["##s", "##ing", "##a", "##b", "##able"]


def tiny_checkpoint(directory: Path, max_position_embeddings: int = 32) -> Path:
    """A BERT-style tokenizer folder: vocab.txt, tokenizer.json, configs."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + WORDS + PIECES
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.enable_truncation(8)  # like real tokenizer.json files: must be ignored
    tok.save(str(directory / "tokenizer.json"))
    (directory / "config.json").write_text(
        json.dumps({"max_position_embeddings": max_position_embeddings})
    )
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return directory


@pytest.fixture
def checkpoint(tmp_path):
    return tiny_checkpoint(tmp_path / "tiny")


def ids_of(encoder, *tokens):
    return [encoder.tokenizer.token_to_id(t) for t in tokens]


def check_rows(encoder: SubwordEncoder, word_lists, rows) -> None:
    """Every word labelled exactly once, at its first sub-word, rows within
    the window and each row's content a contiguous run of the sentence."""
    pieces = encoder.word_pieces(word_lists)
    covered = [np.zeros(len(w), int) for w in word_lists]
    for row in rows:
        s, lo, n = row.sentence_index, row.word_offset, len(row.word_index)
        assert len(row.input_ids) <= encoder.window
        assert row.input_ids[0] == encoder.cls_id and row.input_ids[-1] == encoder.sep_id
        assert row.input_ids.dtype == row.word_index.dtype == row.tags.dtype == np.int32
        assert np.all(np.diff(row.word_index) > 0) and len(row.tags) == n
        flat = [t for p in pieces[s] for t in p]
        starts = np.concatenate([[0], np.cumsum([len(p) for p in pieces[s]])])
        begin = int(starts[lo]) - (
            int(row.word_index[0]) - 1
        )  # where the row's content starts in flat
        assert row.input_ids[1:-1].tolist() == flat[begin : begin + len(row.input_ids) - 2]
        assert (row.word_index - 1 + begin).tolist() == starts[lo : lo + n].tolist()
        assert begin + len(row.input_ids) - 2 >= starts[lo + n]  # labelled words are whole
        covered[s][lo : lo + n] += 1
    assert all(np.all(c == 1) for c in covered)


def test_first_subword_represents_each_word(checkpoint):
    enc = SubwordEncoder.from_pretrained(checkpoint)
    assert enc.window == 32 and enc.context == 3
    sent = Sentence(
        ("John", "lives", "in", "cats", "unable", "zzz", "\u200b", ""), ("B-PER",) + ("O",) * 7
    )
    vocab = LabelVocab.from_types(["PER"])
    (row,) = enc.encode([sent], vocab)
    cls_, john, lives, in_, cat, s_, un, able, unk, sep = ids_of(
        enc, "[CLS]", "john", "lives", "in", "cat", "##s", "un", "##able", "[UNK]", "[SEP]"
    )
    assert row.input_ids.tolist() == [cls_, john, lives, in_, cat, s_, un, able, unk, unk, unk, sep]
    assert row.word_index.tolist() == [1, 2, 3, 4, 6, 8, 9, 10]
    assert row.tags.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert (row.sentence_index, row.word_offset) == (0, 0)
    check_rows(enc, [sent.words], [row])


def test_plain_word_lists_and_no_vocab_give_zero_tags(checkpoint):
    enc = SubwordEncoder.from_pretrained(checkpoint)
    rows = enc.encode([["the", "cat"], ["mat"]])
    assert [r.tags.tolist() for r in rows] == [[0, 0], [0]]
    assert [r.sentence_index for r in rows] == [0, 1]
    with pytest.raises(DataError, match="sentence 1 has no words"):
        enc.encode([["a"], []])
    with pytest.raises(DataError, match="sentence 0 has 2 words but 1 tags"):
        enc.encode([Sentence(("a", "b"), ("O",))], LabelVocab.from_types([]))
    with pytest.raises(TypeError, match="is a string"):
        enc.encode(["the cat"])


def test_vocab_txt_fallback_matches_tokenizer_json(checkpoint, tmp_path):
    words = [["John", "Smith", "lives", "in", "New", "York", "."], ["unable", "cats", "b's"]]
    reference = SubwordEncoder.from_pretrained(checkpoint).encode(words)
    (checkpoint / "tokenizer.json").unlink()
    fallback = SubwordEncoder.from_pretrained(checkpoint).encode(words)
    for a, b in zip(reference, fallback):
        assert (
            a.input_ids.tolist() == b.input_ids.tolist()
            and a.word_index.tolist() == b.word_index.tolist()
        )
    with pytest.raises(DataError, match="no tokenizer.json or vocab.txt"):
        load_tokenizer(tmp_path)


def test_window_settings(checkpoint):
    with pytest.raises(ValueError, match="exceeds"):
        SubwordEncoder.from_pretrained(checkpoint, window=64)
    with pytest.raises(ValueError, match="context"):
        SubwordEncoder.from_pretrained(checkpoint, window=12, context=5)
    assert SubwordEncoder.from_pretrained(checkpoint, window=12).window == 12


@pytest.mark.parametrize("context", [0, 1, 3])
def test_long_sentences_are_windowed_without_losing_words(checkpoint, context):
    enc = SubwordEncoder.from_pretrained(
        checkpoint, window=12, context=context
    )  # 10 sub-words per row
    rng = np.random.default_rng(context)
    vocab_words = ["the", "cats", "unable", "sat", "zzz", "on", "mat"]
    word_lists = [list(rng.choice(vocab_words, size=n)) for n in (1, 5, 9, 10, 11, 17, 40)]
    rows = enc.encode(word_lists)
    check_rows(enc, word_lists, rows)
    assert max(r.sentence_index for r in rows) == len(word_lists) - 1
    assert sum(r.sentence_index == 6 for r in rows) > 3  # the 40-word sentence has several pieces
    if context:  # a middle piece sees context on both sides
        middle = [r for r in rows if r.sentence_index == 6][1]
        assert middle.word_index[0] > 1 and middle.word_index[-1] < len(middle.input_ids) - 2


def test_a_piece_starting_inside_a_chunk_begins_it(checkpoint):
    enc = SubwordEncoder.from_pretrained(checkpoint, window=8, context=1)  # 6 per row, 4 labelled
    vocab = LabelVocab.from_types(["LOC"])  # O B-LOC I-LOC
    sent = Sentence(("new",) * 10, ("O", "B-LOC") + ("I-LOC",) * 8)
    rows = enc.encode([sent], vocab)
    assert [r.word_offset for r in rows] == [0, 4, 8]
    assert [r.tags.tolist() for r in rows] == [[0, 1, 2, 2], [1, 2, 2, 2], [1, 2]]
    assert sent.tags[4] == "I-LOC"  # the sentence itself is unchanged


def test_a_word_longer_than_the_window_keeps_its_first_subwords(checkpoint):
    enc = SubwordEncoder.from_pretrained(checkpoint, window=8, context=1)
    words = ["the", "." * 20, "cat"]
    rows = enc.encode([words])
    check_rows(enc, [words], rows)
    assert [len(r.word_index) for r in rows] == [1, 1, 1]
    dots = enc.word_pieces([words])[0][1]
    assert len(dots) == 6 and rows[1].input_ids[1:-1].tolist() == dots


# ---------------------------------------------------------------- real MiniLM + WNUT


@pytest.fixture(scope="module")
def minilm():
    return SubwordEncoder.from_pretrained(minilm_path())


def test_minilm_every_wnut_word_gets_its_first_subword(minilm):
    corpus = load_corpus("wnut16")
    sentences = corpus.train + corpus.dev + corpus.test
    rows = minilm.encode(sentences, corpus.labels, allow_unseen_tags=True)
    assert minilm.window == 512 and len(rows) == len(sentences) == 2394
    # Independent reference: each word encoded on its own, not pre-tokenised.
    words = [w for s in sentences for w in s.words]
    singles = minilm.tokenizer.encode_batch(words, add_special_tokens=False)
    expected = [e.ids[0] if e.ids else minilm.unk_id for e in singles]
    got = [int(r.input_ids[i]) for r in rows for i in r.word_index]
    assert got == expected
    assert sum(len(r.word_index) for r in rows) == len(words) == 46469
    tags = [t for r in rows for t in corpus.labels.decode(r.tags)]
    assert tags == [t for s in sentences for t in s.tags]
    # The file's tokenizer.json truncates to 128 and pads to 128: both are off here.
    assert max(len(r.input_ids) for r in rows) < 128 and min(len(r.input_ids) for r in rows) < 10


def test_minilm_sentence_longer_than_512_subwords(minilm):
    words = [f"word{i}" if i % 7 else "antidisestablishmentarianism" for i in range(600)]
    sent = Sentence(tuple(words), ("O",) * 600)
    rows = minilm.encode([sent])
    assert sum(len(p) for p in minilm.word_pieces([words])[0]) > 1500
    assert len(rows) >= 4 and all(len(r.input_ids) <= 512 for r in rows)
    check_rows(minilm, [words], rows)
    assert [r.word_offset for r in rows] == sorted(r.word_offset for r in rows)
