"""Unlabelled text for distillation: sentences whose tags nobody reads.

A distilling student can also learn from sentences that have no gold tags,
through the distillation term alone (the teacher labels them). Two sources:

* a text file, one sentence per line, words separated by white space (blank
  lines are skipped);
* ``"wnut16-unused"``: the offline WNUT-16 training tweets that a run leaves
  out with ``data.max_train_sentences`` (their tags are dropped here).
"""

from __future__ import annotations

from pathlib import Path

from jaxkd.data.errors import DataError, where

WNUT16_UNUSED = "wnut16-unused"


def read_sentences(path: str | Path) -> list[tuple[str, ...]]:
    """The sentences of a text file, one per non-blank line.

    Returns:
      ``[S]`` tuples of words (white-space split, in file order).

    Raises:
      DataError: the file is missing, not UTF-8 (naming the line), or has no
        sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file (data.unlabeled: a text file, one sentence per line, or {WNUT16_UNUSED!r})"
        )
    sentences = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{where(path, number)}: not UTF-8 text ({err.reason} at byte {err.start})") from None
            words = tuple(line.split())
            if words:
                sentences.append(words)
    if not sentences:
        raise DataError(f"{path}: no sentence (every line is blank)")
    return sentences


def unused_training_sentences(train: list, used: int) -> list[tuple[str, ...]]:
    """The words of ``train[used:]``, the training sentences a run leaves out
    (``data.max_train_sentences = used``); their tags are not kept.

    Raises:
      DataError: ``used`` leaves no sentence out.
    """
    if not 0 < used < len(train):
        raise DataError(
            f"data.unlabeled={WNUT16_UNUSED!r} needs data.max_train_sentences between 1 and {len(train) - 1} "
            f"(the training split has {len(train)} sentences; the ones past the limit are the unlabelled text); "
            f"got {used}"
        )
    return [tuple(s.words) for s in train[used:]]
