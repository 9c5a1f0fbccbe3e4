"""Chunk tagging schemes: parsing tags and converting IOB1 to IOB2.

Tags are ``"O"`` or ``PREFIX-TYPE`` (``"B-PER"``, ``"I-geo-loc"``: the type is
everything after the first ``-``).

* **IOB2** (BIO): every chunk starts with ``B-X``; ``I-X`` only continues a
  chunk of type X.
* **IOB1** (the original CoNLL-2003 release): a chunk starts with ``I-X``;
  ``B-X`` marks only the first word of a chunk that directly follows another
  chunk of the same type.

:func:`iob1_to_iob2` turns every ``I-X`` that starts a chunk (first word, or
after ``O`` or after a tag of another type) into ``B-X`` and keeps everything
else. It is the identity on valid IOB2, so applying it to a file of unknown
scheme is safe; on IOB2 with mistakes it performs the usual repair (a stray
``I-X`` opens a chunk, as conlleval reads it).
"""

from __future__ import annotations

from typing import Sequence

SCHEMES = ("auto", "iob1", "iob2")
PREFIXES = ("B", "I")


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``.

    Raises:
      ValueError: if ``tag`` is neither ``"O"`` nor ``B-TYPE``/``I-TYPE``.
    """
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or not kind or prefix not in PREFIXES:
        raise ValueError(f"tag {tag!r} is not 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, kind


def starts_chunk_with_inside(tags: Sequence[str], k: int) -> bool:
    """Whether ``tags[k]`` is an ``I-X`` that opens a chunk (IOB1 style):
    it is first, or follows ``O`` or a tag of another type."""
    prefix, kind = split_tag(tags[k])
    if prefix != "I":
        return False
    if k == 0:
        return True
    return split_tag(tags[k - 1])[1] != kind


def first_iob1_start(tags: Sequence[str]) -> int | None:
    """Index of the first ``I-X`` that opens a chunk, or ``None`` (then the
    sequence is valid IOB2)."""
    for k in range(len(tags)):
        if starts_chunk_with_inside(tags, k):
            return k
    return None


def iob1_to_iob2(tags: Sequence[str]) -> tuple[str, ...]:
    """Converts one sentence's tags from IOB1 to IOB2 (see module docstring).

    >>> iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])
    ('B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC')
    """
    out = list(tags)
    for k in range(len(tags)):
        # Decide on the *original* previous tag: an IOB1 "B-X" directly after
        # "I-X" is already a chunk start and stays "B-X".
        if starts_chunk_with_inside(tags, k):
            out[k] = "B-" + split_tag(tags[k])[1]
    return tuple(out)
