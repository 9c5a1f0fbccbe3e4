"""Unlabelled text for distillation (data.unlabeled): reading it, mixing its
batches into the epochs, and a student of another checkpoint learning from
it through the KD term alone."""

from __future__ import annotations

import types

import numpy as np
import pytest

from jaxkd.config import ConfigError, validate
from jaxkd.data import DataError, SubwordEncoder, encode_corpus, load_corpus
from jaxkd.data.unlabeled import read_sentences, unused_training_sentences
from jaxkd.training.epoch import epoch_steps
from jaxkd.training.loop import run
from tests.runs import tiny_config


def test_read_sentences_one_per_line(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("alice went to  paris\n\n   \nbob\tsaw rome \n".encode())
    assert read_sentences(path) == [("alice", "went", "to", "paris"), ("bob", "saw", "rome")]


def test_read_sentences_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_sentences(tmp_path / "missing.txt")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    with pytest.raises(DataError, match="blank.txt: no sentence"):
        read_sentences(blank)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"fine line\nbad \xe9 line\n")
    with pytest.raises(DataError, match=r"latin.txt:2: not UTF-8"):
        read_sentences(latin)


def test_unused_training_sentences_are_the_ones_past_the_limit(assets):
    _, _, data = assets
    train = load_corpus(str(data)).train
    unused = unused_training_sentences(train, 90)
    assert unused == [tuple(s.words) for s in train[90:]] and len(unused) == len(train) - 90
    for limit in (0, len(train)):
        with pytest.raises(DataError, match="max_train_sentences"):
            unused_training_sentences(train, limit)


def test_only_a_distilling_student_takes_unlabelled_text(assets, tmp_path):
    _, ckpt, data = assets
    text = tmp_path / "u.txt"
    text.write_text("alice went to paris\n")
    with pytest.raises(ConfigError, match="only a distilling student"):
        validate(tiny_config(ckpt, data, **{"data.unlabeled": str(text)}))  # a teacher
    with pytest.raises(ConfigError, match="only a distilling student"):
        validate(tiny_config(ckpt, data, **{"mode": "student", "data.unlabeled": str(text)}))  # vanilla
    with pytest.raises(ConfigError, match="unlabeled_ratio"):
        validate(tiny_config(ckpt, data, **{"data.unlabeled_ratio": 0.0}))


def test_epoch_steps_spread_unlabelled_batches_and_cycle_through_them(assets):
    _, ckpt, data = assets
    corpus = load_corpus(str(data))
    unlabeled = [("alice", "saw", "rome")] * 20 + [("bob", "met", "the", "city")] * 21  # 41 sentences
    encoded = encode_corpus(corpus, SubwordEncoder.from_pretrained(ckpt), min_length=64, unlabeled=unlabeled)
    config = tiny_config(ckpt, data, **{"train.batch_size": 8})
    per_pass = len(encoded.batches("unlabeled", 8, shuffle=False))  # 6 batches, the last one short
    state = types.SimpleNamespace(config=config, encoded=encoded, unlabeled_per_epoch=4)
    labeled = len(encoded.batches("train", 8, shuffle=False))
    seen = []
    for epoch in range(3):
        steps = epoch_steps(state, epoch, 0.5)
        gold = [b for b, g in steps if g]
        expected = encoded.batches("train", 8, shuffle=True, seed=config.seed, epoch=epoch)
        assert len(gold) == labeled and all(np.array_equal(a.input_ids, b.input_ids) for a, b in zip(gold, expected))
        flags = [g for _, g in steps]
        assert flags.count(False) == 4
        positions = [i for i, g in enumerate(flags) if not g]
        assert min(np.diff(positions)) >= labeled // 4  # spread out, not bunched
        seen += [int(s) for b, g in steps if not g for s in b.sentence_index if s >= 0]
    # 12 batches = 2 passes over the 6 of a pass: every sentence twice.
    assert 3 * 4 == 2 * per_pass
    assert np.bincount(seen, minlength=41).tolist() == [2] * 41
    # lambda 0 (an epoch of gold NLL alone): no unlabelled batch.
    assert all(g for _, g in epoch_steps(state, 0, 0.0))


def test_a_student_of_another_checkpoint_learns_from_unlabelled_text_through_kd_alone(assets, teacher, tmp_path):
    """A narrower student (its own checkpoint, the teacher's tokenizer) with
    one labelled batch and four times as many unlabelled ones: the unlabelled
    sentences are full of entities, so a step that also applied the gold NLL to
    them (with their placeholder tags, all "O") would teach it to tag nothing."""
    from jaxkd.labeling import load_tagger
    from tests.tiny_bert import write_tiny_checkpoint

    root, ckpt, data = assets
    narrow = write_tiny_checkpoint(
        tmp_path / "narrow", seed=7, num_layers=1, hidden=16, heads=2, intermediate=32, max_positions=64
    )
    rng = np.random.default_rng(3)
    names = ["alice", "bob", "paris", "rome"]
    lines = [" ".join([*rng.choice(names, 2), "went", "to", rng.choice(names)]) for _ in range(64)]
    text = tmp_path / "unlabeled.txt"
    text.write_text("\n".join(lines) + "\n")
    cfg = tiny_config(ckpt, data, **{
        "mode": "student", "teacher_workdir": str(teacher[0]), "distill.method": "efficient",
        "model.checkpoint": str(narrow), "data.max_train_sentences": 16, "data.unlabeled": str(text),
        "data.unlabeled_ratio": 4.0, "distill.lambda_schedule": "constant", "distill.lambda_value": 0.5,
        "train.epochs": 8, "train.head_lr": 3e-2,
    })
    results = run(cfg, tmp_path / "student")
    assert [e["unlabeled_batches"] for e in results["epochs"]] == [4] * 8
    assert all(np.isfinite(e["unlabeled_loss"]) for e in results["epochs"])
    student = load_tagger(tmp_path / "student")
    assert student.run.tagger.encoder.config.hidden_size == 16
    sentences = [line.split() for line in lines[:16]]
    taught = [s.tags for s in load_tagger(teacher[0]).label(sentences)]
    learnt = [s.tags for s in student.label(sentences)]
    agree = np.mean([a == b for t, s in zip(taught, learnt) for a, b in zip(t, s)])
    entities = np.mean([t != "O" for tags in learnt for t in tags])
    # (measured: 0.84 and 0.39; with the NLL on them too: 0.45 and 0.0)
    assert agree > 0.75 and entities > 0.25, (agree, entities, learnt[:3])
