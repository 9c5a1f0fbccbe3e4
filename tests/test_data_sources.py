"""Corpora from CoNLL directories, Hugging Face datasets and WNUT-16
(jaxkd.data.sources, .hf, .corpus)."""

from __future__ import annotations

from collections import Counter

import huggingface_hub.constants
import pytest

from jaxkd.data import (
    Corpus,
    DataError,
    Sentence,
    from_conll_dir,
    from_hf_dataset,
    load_corpus,
    load_hf,
    read_conll,
    wnut16,
)
from jaxkd.offline import wnut16_path


def sentences_text(sents: list[list[tuple[str, str]]], sep=" ") -> str:
    return "".join("".join(f"{w}{sep}{t}\n" for w, t in s) + "\n" for s in sents)


def numbered(n: int, tag: str = "B-NP") -> list[list[tuple[str, str]]]:
    return [[(f"w{i}", tag), ("x", "O")] for i in range(n)]


def test_conll2003_directory(tmp_path):
    row = "{w} NNP B-NP {t}\n"
    (tmp_path / "eng.train").write_text(
        "-DOCSTART- -X- -X- O\n\n"
        + row.format(w="EU", t="I-ORG")
        + row.format(w="Paris", t="I-LOC")
        + "\n"
    )
    (tmp_path / "eng.testa").write_text(row.format(w="Rome", t="I-LOC") + "\n")
    (tmp_path / "eng.testb").write_text(
        row.format(w="UN", t="I-ORG") + row.format(w="x", t="O") + "\n"
    )
    corpus = from_conll_dir(tmp_path, name="c03")
    assert isinstance(corpus, Corpus) and corpus.name == "c03"
    assert corpus.train == [Sentence(("EU", "Paris"), ("B-ORG", "B-LOC"))]
    assert corpus.dev[0].tags == ("B-LOC",) and corpus.test[0].tags == ("B-ORG", "O")
    assert corpus.labels.labels == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
    assert any("eng.train: IOB1 tags converted to IOB2" in n for n in corpus.notes)
    assert "train: 1 sentences" in corpus.summary()


def test_conll2000_directory_takes_last_tenth_of_train_as_dev(tmp_path):
    (tmp_path / "train.txt").write_text(sentences_text(numbered(30)))
    (tmp_path / "test.txt").write_text(sentences_text(numbered(4)))
    corpus = load_corpus(str(tmp_path))
    assert [s.words[0] for s in corpus.train] == [f"w{i}" for i in range(27)]
    assert [s.words[0] for s in corpus.dev] == ["w27", "w28", "w29"]
    assert len(corpus.test) == 4
    assert any("no dev split" in n and "last 3 of 30" in n for n in corpus.notes)
    assert from_conll_dir(tmp_path, dev_fraction=0.2).dev[0].words[0] == "w24"


def test_dev_file_names(tmp_path):
    for name in ("train.txt", "dev.txt", "test.txt"):
        (tmp_path / name).write_text(sentences_text(numbered(2)))
    assert len(from_conll_dir(tmp_path).dev) == 2
    (tmp_path / "valid.txt").write_text(sentences_text(numbered(1)))
    with pytest.raises(
        DataError, match=r"several files could be the dev split: \['dev.txt', 'valid.txt'\]"
    ):
        from_conll_dir(tmp_path)


def test_missing_files_and_directory(tmp_path):
    (tmp_path / "train.txt").write_text(sentences_text(numbered(2)))
    with pytest.raises(DataError, match=r"no test file.*found \['train.txt'\]"):
        from_conll_dir(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        from_conll_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="unknown corpus 'nope'"):
        load_corpus("nope")


def test_unseen_dev_tag_is_an_error_unless_allowed(tmp_path):
    (tmp_path / "train.txt").write_text(
        sentences_text([[("a", "B-PER"), ("b", "I-PER")], [("c", "O")]])
    )
    (tmp_path / "dev.txt").write_text(
        sentences_text([[("a", "O")], [("x", "O"), ("y", "B-LOC"), ("z", "I-LOC")]])
    )
    (tmp_path / "test.txt").write_text(sentences_text([[("a", "B-PER")]]))
    with pytest.raises(DataError) as info:
        from_conll_dir(tmp_path)
    msg = str(info.value)
    assert "['B-LOC', 'I-LOC']" in msg and "dev.txt:4" in msg and "allow_unseen_tags=True" in msg
    corpus = from_conll_dir(tmp_path, allow_unseen_tags=True)
    assert corpus.dev[1].tags == ("O", "B-LOC", "I-LOC")  # kept for evaluation
    assert "B-LOC" not in corpus.labels
    assert any("kept 2 tag(s)" in n for n in corpus.notes)


def test_malformed_file_in_directory_names_it(tmp_path):
    (tmp_path / "train.txt").write_text("a O\nb O X\n")
    (tmp_path / "test.txt").write_text("a O\n")
    with pytest.raises(DataError, match=r"train\.txt:2: expected 2 column"):
        from_conll_dir(tmp_path)


# ---------------------------------------------------------------- Hugging Face

datasets = pytest.importorskip("datasets")
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CHUNK = ["O", "B-NP", "I-NP", "B-VP", "I-VP", "B-ADJP"]


def hf_split(examples):
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "chunk_tags": datasets.List(datasets.ClassLabel(names=CHUNK)),
            "ner_tags": datasets.List(datasets.ClassLabel(names=NER)),
        }
    )
    cols = {k: [e[i] for e in examples] for i, k in enumerate(["tokens", "chunk_tags", "ner_tags"])}
    cols["id"] = [str(i) for i in range(len(examples))]
    return datasets.Dataset.from_dict(cols, features=features)


EXAMPLES = [
    (["-DOCSTART-"], [0], [0]),
    (["EU", "rejects", "German", "call"], [1, 3, 1, 2], [3, 0, 7, 0]),
    ([], [], []),
    (["Peter", "Blackburn"], [1, 2], [1, 2]),
]


def test_hf_dataset_dict_with_classlabels():
    dd = datasets.DatasetDict(
        train=hf_split(EXAMPLES), validation=hf_split(EXAMPLES[1:2]), test=hf_split(EXAMPLES[3:])
    )
    corpus = from_hf_dataset(dd, name="eriktks/conll2003")
    assert corpus.train == [
        Sentence(("EU", "rejects", "German", "call"), ("B-ORG", "O", "B-MISC", "O")),
        Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER")),
    ]
    assert corpus.labels.labels == ("O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert len(corpus.dev) == 1 and len(corpus.test) == 1
    assert any("skipped 2 empty or -DOCSTART-" in n for n in corpus.notes)
    chunks = from_hf_dataset(dd, name="x", task="chunk")
    assert chunks.train[0].tags == ("B-NP", "B-VP", "B-NP", "I-NP")
    with pytest.raises(DataError, match="no tag field 'pos_tags'"):
        from_hf_dataset(dd, name="x", task="pos")


def test_hf_without_validation_and_iob1_and_unseen():
    # conll2000 on the hub has train and test only; chunk tags given as IOB1 here.
    train = hf_split([(["v"], [3], [0])] + [(["a", "b"], [2, 2], [0, 0])] * 8 + [(["c"], [4], [0])])
    test = hf_split([(["d", "e"], [1, 2], [0, 0]), (["f"], [5], [0])])
    dd = datasets.DatasetDict(train=train, test=test)
    with pytest.raises(
        DataError, match=r"'B-ADJP' at eriktks/conll2000 split 'test', example 1, word 0"
    ):
        from_hf_dataset(dd, name="eriktks/conll2000", task="chunk")
    corpus = from_hf_dataset(dd, name="eriktks/conll2000", task="chunk", allow_unseen_tags=True)
    assert corpus.train[1].tags == ("B-NP", "I-NP")  # IOB1 "I-NP I-NP" converted
    assert corpus.dev == [Sentence(("c",), ("B-VP",))]
    assert corpus.labels.labels == ("O", "B-NP", "I-NP", "B-VP", "I-VP")
    assert corpus.test[1].tags == ("B-ADJP",)  # kept for evaluation
    assert any("last 1 of 10" in n for n in corpus.notes)
    assert any("train: IOB1 tags converted" in n for n in corpus.notes)
    assert any("test: kept 1 tag(s)" in n for n in corpus.notes)


def test_hf_missing_split():
    with pytest.raises(DataError, match=r"no test split; splits are \['train'\]"):
        from_hf_dataset(datasets.DatasetDict(train=hf_split(EXAMPLES[1:2])), name="x")


def test_hf_offline_error_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"'eriktks/conll2003'.*offline mode is on.*wnut16"):
        load_corpus("hf:eriktks/conll2003", cache_dir=tmp_path)


def test_hf_no_network_error_says_so(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError(
            "Couldn't reach 'eriktks/conll2000' on the Hub (LocalEntryNotFoundError)"
        )

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError, match=r"could not be reached: this machine looks offline"):
        load_hf("eriktks/conll2000", task="chunk")


# ---------------------------------------------------------------- WNUT-16


def test_wnut16_split_is_deterministic_and_complete():
    corpus = load_corpus("wnut16")
    again = wnut16()
    assert corpus.name == "wnut16"
    sizes = [len(corpus.train), len(corpus.dev), len(corpus.test)]
    assert sum(sizes) == 2394 and sizes == [1916, 239, 239]
    assert corpus.train == again.train and corpus.dev == again.dev and corpus.test == again.test
    assert len(corpus.labels) == 21 and corpus.labels.labels[:3] == ("O", "B-company", "I-company")
    # The three splits partition the file (compared as multisets of sentences).
    everything = Counter(read_conll(wnut16_path()))
    assert Counter(corpus.train) + Counter(corpus.dev) + Counter(corpus.test) == everything
    other = wnut16(seed=1)
    assert other.dev != corpus.dev and len(other.dev) == 239
