"""What a run reads before it trains: its corpus (``data.*``), its unlabelled
text (``data.unlabeled``) and its pre-trained encoder (``model.checkpoint``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jaxkd import offline
from jaxkd.data import Corpus, load_corpus
from jaxkd.data.sources import CORPORA
from jaxkd.data.unlabeled import WNUT16_UNUSED, read_sentences, unused_training_sentences
from jaxkd.models.bert_weights import resolve_checkpoint
from jaxkd.training.state import TrainingError


def encoder_dir(name: str) -> Path:
    """The pre-trained checkpoint directory of ``model.checkpoint``."""
    if name in offline.CHECKPOINTS:
        return offline.CHECKPOINTS[name]()
    return resolve_checkpoint(name)


def load_data(config) -> Corpus:
    """The corpus of ``data.source``, its training split limited to
    ``data.max_train_sentences`` (noted)."""
    d = config.data
    source = d.source
    if source == "wnut16" or source in CORPORA:
        corpus = load_corpus(source, allow_unseen_tags=d.allow_unseen_tags)
    elif source.startswith("hf:"):
        corpus = load_corpus(source, task=d.task or "auto", scheme=d.scheme, allow_unseen_tags=d.allow_unseen_tags)
    else:
        corpus = load_corpus(source, word_col=d.word_col, tag_col=d.tag_col, scheme=d.scheme,
                             allow_unseen_tags=d.allow_unseen_tags, conllu_tags=d.conllu_tags)
    n = d.max_train_sentences
    if n and n < len(corpus.train):
        notes = tuple(corpus.notes) + (f"train limited to its first {n} sentences (data.max_train_sentences)",)
        corpus = dataclasses.replace(corpus, train=list(corpus.train[:n]), notes=notes)
    return corpus


def load_unlabeled(config) -> list[tuple[str, ...]]:
    """The sentences of ``data.unlabeled`` (none when it is empty)."""
    name = config.data.unlabeled
    if not name:
        return []
    if name == WNUT16_UNUSED:
        if config.data.source != "wnut16":
            raise TrainingError(
                f"data.unlabeled={WNUT16_UNUSED!r} is the unused part of the wnut16 training split, but data.source "
                f"is {config.data.source!r}: give a text file (one sentence per line) instead"
            )
        full = load_corpus("wnut16", allow_unseen_tags=config.data.allow_unseen_tags)
        return unused_training_sentences(full.train, config.data.max_train_sentences)
    return read_sentences(name)
