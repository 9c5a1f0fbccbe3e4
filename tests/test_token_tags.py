"""Tags that are not chunks (parts of speech): CoNLL-U reading, the shipped
corpora, the token scheme's vocabulary, constraints, windows and scores."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from jaxkd.data import DataError, LabelVocab, Sentence, SubwordEncoder, from_conll_dir, load_corpus, read_conll
from jaxkd.data.conllu import parse_conllu
from jaxkd.data.sources import CORPORA, CORPORA_DIR
from jaxkd.evaluate import scores, token_accuracy
from jaxkd.stats import micro_f1, paired_bootstrap, sentence_counts

CONLLU = """\
# newdoc id = d1
# sent_id = s1
# text = I don't like it.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tlike\tlike\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tlikes\t_\t_\t_\t_\t_\t_\t4:conj\t_
5\tit\tit\tPRON\tPRP\t_\t4\tobj\t_\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = s2
1\tHis\this\tPRON\tPRP$\t_\t2\tnmod:poss\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_
"""


def test_conllu_skips_comments_ranges_and_empty_nodes_one_tag_per_word(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(CONLLU)
    upos = parse_conllu(path, tags="upos")
    assert [s.words for s in upos.sentences] == [("I", "do", "n't", "like", "it", "."), ("His", "dog")]
    assert upos.sentences[0].tags == ("PRON", "AUX", "PART", "VERB", "PRON", "PUNCT")
    assert parse_conllu(path, tags="xpos").sentences[1].tags == ("PRP$", "NN")
    assert upos.lines[0] == (4, 6, 7, 8, 10, 11) and upos.scheme == "token"
    gz = tmp_path / "x.conllu.gz"
    gz.write_bytes(gzip.compress(CONLLU.encode()))
    assert parse_conllu(gz).sentences == upos.sentences


@pytest.mark.parametrize(
    "change,message",
    [
        (("1\tI\tI\tPRON", "1\tI\tPRON"), r"x\.conllu:4: .*10 tab-separated fields, this one 9"),
        (("5\tit", "7\tit"), r"x\.conllu:10: ID '7' where word 5"),
        (("AUX\tVBP", "AUX\t_"), r"x\.conllu:6: word 'do' has no XPOS tag"),
        (("2-3\tdon't", "2-x\tdon't"), r"x\.conllu:5: ID '2-x' is not a range"),
    ],
)
def test_conllu_errors_name_file_and_line(tmp_path, change, message):
    path = tmp_path / "x.conllu"
    path.write_text(CONLLU.replace(*change))
    with pytest.raises(DataError, match=message):
        parse_conllu(path, tags="xpos")


def test_conllu_directory_by_path_is_a_token_corpus(tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"en_x-ud-{split}.conllu").write_text(CONLLU)
    corpus = from_conll_dir(tmp_path, conllu_tags="xpos")
    assert corpus.labels.scheme == "token" and not corpus.labels.chunks
    assert corpus.labels.labels == (".", "NN", "PRP", "PRP$", "RB", "VB", "VBP")  # code point order
    assert load_corpus(tmp_path).labels.labels[0] == "AUX"  # upos by default
    (tmp_path / "other-train.conllu").write_text(CONLLU)
    with pytest.raises(DataError, match="several CoNLL-U files could be the train split"):
        from_conll_dir(tmp_path)


def _source_counts(folder: str) -> list[int]:
    """The sentence counts that the corpus's SOURCE.md records (train, dev, test)."""
    text = (CORPORA_DIR / folder / "SOURCE.md").read_text()
    return [int(n.replace(",", "")) for n in re.findall(r"\| ([\d,]+) \|$", text, re.M)]


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_shipped_corpora_load_offline_with_their_recorded_splits(name):
    folder, tags = CORPORA[name]
    corpus = load_corpus(name)
    assert [len(corpus.train), len(corpus.dev), len(corpus.test)] == _source_counts(folder)
    assert any((CORPORA_DIR / folder / f).is_file() for f in ("LICENSE", "LICENSE.md", "LICENSE.txt"))
    if tags is None:  # NER: IOB2, every split's tags in the vocabulary
        assert corpus.labels.chunks and corpus.labels.labels[0] == "O"
    else:  # UD English-EWT: 17 universal tags, about 50 Penn Treebank tags
        assert not corpus.labels.chunks
        assert len(corpus.labels) == {"upos": 17, "xpos": 49}[tags]
    every_word = [t for s in corpus.test for t in s.tags]
    assert all(t in corpus.labels for t in every_word)


def test_token_vocabulary_json_constraints_and_old_saves():
    vocab = LabelVocab.from_sentences([Sentence(("a", "b"), ("NN", "IN")), Sentence(("c",), ("PRP$",))], "token")
    assert vocab.labels == ("IN", "NN", "PRP$") and vocab.types == ()
    allowed = vocab.constraints()
    assert np.all(allowed.transitions) and np.all(allowed.start) and np.all(allowed.end)
    assert LabelVocab.from_json(vocab.to_json()) == vocab
    assert LabelVocab.from_json('{"labels": ["O", "B-X", "I-X"]}').scheme == "IOB2"  # saved before the scheme was
    with pytest.raises(ValueError, match="non-empty"):
        LabelVocab(("NN", " "), "token")


def test_conll_file_read_as_token_tags_keeps_them(tmp_path):
    path = tmp_path / "pos.txt"
    path.write_text("He PRP\nran VBD\n. .\n\nI-95 NNP\n")
    assert [s.tags for s in read_conll(path, scheme="token")] == [("PRP", "VBD", "."), ("NNP",)]
    with pytest.raises(DataError, match="pos.txt:1: tag 'PRP' is not"):
        read_conll(path)  # chunk tags by default


def test_windows_of_token_tags_keep_every_tag(tiny_checkpoint):
    enc = SubwordEncoder.from_pretrained(tiny_checkpoint, window=8, context=1)  # 4 words labelled per row
    vocab = LabelVocab(("IN", "NN"), "token")  # "IN" would read as a malformed I- tag
    sent = Sentence(("the",) * 10, ("IN",) * 10)
    rows = enc.encode([sent], vocab)
    assert [r.word_offset for r in rows] == [0, 4, 8]
    assert np.concatenate([r.tags for r in rows]).tolist() == [0] * 10


def test_token_accuracy_by_hand_and_through_the_bootstrap_counts():
    gold = [["NN", "VB", "DT"], ["NN"]]
    pred = [["NN", "NN", "DT"], ["VB"]]
    acc = token_accuracy(gold, pred)
    assert acc["accuracy"] == 50.0 and (acc["correct"], acc["support"]) == (2, 4)
    assert acc["per_tag"] == {"DT": {"accuracy": 100.0, "support": 1}, "NN": {"accuracy": 50.0, "support": 2},
                              "VB": {"accuracy": 0.0, "support": 1}}
    both = scores(gold, pred, chunks=False)
    assert (both["metric"], both["score"]) == ("accuracy", 50.0)
    counts = sentence_counts(gold, pred, chunks=False)
    assert counts.tolist() == [[2, 3, 3], [0, 1, 1]] and micro_f1(counts.sum(0)) == 50.0
    better = sentence_counts(gold, gold, chunks=False)
    diff = paired_bootstrap(better[None], counts[None], replicates=50)
    assert diff["difference"] == 50.0


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from tests.tiny_bert import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("pos") / "bert", num_layers=1, max_positions=64)


# ---------------------------------------------------------------------------
# Training on token tags: every method, both token heads, refusal of the span head
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pos_teacher(tmp_path_factory):
    """(workdir, results, data) of a 3-epoch tiny CRF teacher on the CoNLL-U corpus of tests/runs.py."""
    from jaxkd.training.loop import run
    from tests.runs import tiny_config, write_pos_corpus
    from tests.tiny_bert import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("pos-run")
    ckpt = write_tiny_checkpoint(root / "bert", num_layers=2, max_positions=64)
    data = write_pos_corpus(root / "data")
    workdir = root / "teacher"
    results = run(tiny_config(ckpt, data, **{"train.epochs": 3, "train.head_lr": 3e-2}), workdir)
    return workdir, results, ckpt, data


def test_a_token_tag_teacher_is_scored_by_accuracy_like_its_labels(pos_teacher):
    from jaxkd.labeling import load_tagger
    from tests.runs import POS

    workdir, results, _, data = pos_teacher
    assert results["metric"] == "accuracy" and results["scheme"] == "token"
    assert all(row["dev_score"] is not None for row in results["epochs"])
    corpus = load_corpus(data)
    tagger = load_tagger(workdir)
    labelled = tagger.label([list(s.words) for s in corpus.test])
    assert all(s.entities == [] for s in labelled)  # no chunks in token tags
    pred = [s.tags for s in labelled]
    gold = [list(s.tags) for s in corpus.test]
    assert results["test"]["accuracy"] == pytest.approx(token_accuracy(gold, pred)["accuracy"])
    assert results["test"]["per_tag"].keys() == {POS[w] for s in corpus.test for w in s.words}
    assert results["test"]["accuracy"] > 90  # each word's tag follows from the word


@pytest.mark.parametrize(
    "method,head",
    # vanilla is the teacher's own training (a CRF's NLL over token tags); the losses themselves do not
    # depend on the scheme (tests/test_losses.py), so one run per kind of target: scores (efficient,
    # centred), k-best paths, and marginals into a softmax student (structkd; posterior reads the same).
    [("efficient", "crf-centered"), ("kbest", "crf"), ("structkd", "softmax")],
)
def test_every_method_distills_token_tags(pos_teacher, method, head, tmp_path):
    from jaxkd.training.loop import run
    from tests.runs import tiny_config

    teacher, _, ckpt, data = pos_teacher
    changes = {"mode": "student", "teacher_workdir": str(teacher), "distill.method": method,
               "model.num_layers": 1, "train.epochs": 1, "model.head": head.split("-")[0],
               "distill.centered": head.endswith("centered")}
    results = run(tiny_config(ckpt, data, **changes), tmp_path / "s")
    assert results["metric"] == "accuracy" and 0 <= results["test"]["accuracy"] <= 100
    assert results["test"]["support"] == sum(len(s.words) for s in load_corpus(data).test)
    assert np.isfinite(results["epochs"][0]["loss"])


def test_a_span_head_is_refused_for_token_tags(pos_teacher, tmp_path):
    from jaxkd.training.loop import TrainingError, run
    from tests.runs import tiny_config

    _, _, ckpt, data = pos_teacher
    with pytest.raises(TrainingError, match="span head .* labels chunks"):
        run(tiny_config(ckpt, data, **{"model.head": "span"}), tmp_path / "span")


def test_a_token_tag_run_exported_to_hf_reads_back_and_labels_as_it_did(pos_teacher, tmp_path):
    from jaxkd.hf_export import export_hf
    from jaxkd.labeling import load_tagger

    workdir, _, _, data = pos_teacher
    sentences = [list(s.words) for s in load_corpus(data).test]
    live = [s.tags for s in load_tagger(workdir).label(sentences)]
    hf = export_hf(workdir, tmp_path / "hf")
    reread = load_tagger(hf)
    assert reread.run.labels.scheme == "token" and [s.tags for s in reread.label(sentences)] == live
