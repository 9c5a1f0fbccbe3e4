"""The corpus type and the policies every source applies.

A :class:`Corpus` is train/dev/test sentences plus the label vocabulary; the
sources (:mod:`jaxkd.data.sources`, :mod:`jaxkd.data.hf`) build one with
:func:`assemble`, each split with a ``locate`` function for error messages.

Policies (each recorded in ``Corpus.notes`` when it applies):

* **No dev split** (CoNLL-2000): the *last* ``dev_fraction`` (10%) of the
  training sentences, by position, become dev (:func:`dev_from_train`).
  Deterministic, seed-free, and it keeps whole documents together better than
  a random draw.
* **Labels** come from the training split only (:class:`LabelVocab`,
  completed with ``B-``/``I-`` for every type).
* **Unseen tags**: a dev/test tag of a type that never occurs in train is an
  error naming the tag and where it occurs. With ``allow_unseen_tags=True``
  the sentence keeps the tag, so entity-level evaluation against the gold
  strings counts such chunks as missed (the model cannot predict them); in
  batches the tag is encoded as ``O`` (id 0), which only affects a dev loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from jaxkd.data.conll import Sentence
from jaxkd.data.errors import DataError, where
from jaxkd.data.labels import LabelVocab

Locate = Callable[[int, int], str]


@dataclass(frozen=True)
class Corpus:
    """A labelled corpus ready for tokenisation.

    Attributes:
      train, dev, test: lists of :class:`jaxkd.data.conll.Sentence` (IOB2).
      labels: the vocabulary built from ``train``.
      name: a short name (``"wnut16"``, the directory's name, the dataset id).
      notes: human-readable facts about how the corpus was made (dev split
        taken from train, IOB1 converted, unseen tags kept, ...).
    """

    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    labels: LabelVocab
    name: str
    notes: tuple[str, ...] = ()

    @property
    def splits(self) -> dict[str, list[Sentence]]:
        """``{"train": ..., "dev": ..., "test": ...}``."""
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def summary(self) -> str:
        """One line per split and note, for logs."""
        lines = [f"corpus {self.name}: {len(self.labels)} labels {list(self.labels.labels)}"]
        for split, sents in self.splits.items():
            lines.append(
                f"  {split}: {len(sents)} sentences, {sum(len(s.words) for s in sents)} words"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def assemble(
    name: str,
    splits: Mapping[str, tuple[list[Sentence], Locate]],
    *,
    allow_unseen_tags: bool,
    notes: list[str],
    scheme: str = "IOB2",
) -> Corpus:
    """Builds the vocabulary (of ``scheme``: ``"IOB2"`` or ``"token"``) from
    train and checks dev/test against it."""
    train = splits["train"][0]
    vocab = LabelVocab.from_sentences(train, scheme)
    for split in ("dev", "test"):
        sentences, locate = splits[split]
        unseen = [
            (i, k, tag)
            for i, sentence in enumerate(sentences)
            for k, tag in enumerate(sentence.tags)
            if tag not in vocab
        ]
        if not unseen:
            continue
        tags = sorted({tag for _, _, tag in unseen})
        first = "; ".join(f"{tag!r} at {locate(i, k)}" for i, k, tag in unseen[:3])
        missed = "counted as missed chunks" if vocab.chunks else "counted as wrong words"
        pad = f"encoded as {vocab.labels[0]!r} in batches"
        if not allow_unseen_tags:
            raise DataError(
                f"{name}: {len(unseen)} {split} tag(s) {'of types ' if vocab.chunks else ''}never seen in train: "
                f"{tags} (first: {first}); the model cannot predict them. Pass "
                "--config.data.allow_unseen_tags=true (allow_unseen_tags=True in Python) to keep "
                f"them for evaluation only ({missed}; {pad})"
            )
        notes.append(
            f"{split}: kept {len(unseen)} tag(s) unseen in train {tags} for "
            f"evaluation only ({pad}; first: " + first + ")"
        )
    return Corpus(
        splits["train"][0], splits["dev"][0], splits["test"][0], vocab, name, tuple(notes)
    )


def dev_from_train(
    train: list[Sentence], locate: Locate, dev_fraction: float, origin: str, notes: list[str]
) -> tuple[tuple[list[Sentence], Locate], tuple[list[Sentence], Locate]]:
    """Splits off the last ``dev_fraction`` of ``train`` as dev."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1), not {dev_fraction}")
    n_dev = max(1, round(len(train) * dev_fraction))
    if n_dev >= len(train):
        raise DataError(
            f"{origin}: no dev split and only {len(train)} training sentence(s), "
            "too few to take a dev split from"
        )
    cut = len(train) - n_dev
    notes.append(
        f"no dev split in {origin}: the last {n_dev} of {len(train)} training "
        f"sentences ({dev_fraction:.0%}, by position) are used as dev"
    )
    return (train[:cut], locate), (train[cut:], lambda i, k: locate(i + cut, k))


def line_locator(path: Path, lines: Sequence[Sequence[int]]) -> Locate:
    """``(sentence, word) -> "path:line"`` from a parsed file's line numbers."""
    return lambda i, k: where(path, lines[i][k])
