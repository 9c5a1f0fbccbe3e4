"""Tagging schemes: the one tag parser, IOB1 -> IOB2, allowed CRF moves.

Tags are ``"O"`` or ``PREFIX-TYPE`` (``"B-PER"``, ``"I-geo-loc"``: the type is
everything after the first ``-``). :func:`split_tag` is the only place a tag
string is split into its prefix and type: the readers, the label vocabulary,
:func:`bio_constraints` and :mod:`jaxkd.evaluate` all call it.

* **IOB2** (BIO): every chunk starts with ``B-X``; ``I-X`` only continues a
  chunk of type X.
* **IOB1** (the original CoNLL-2003 release): a chunk starts with ``I-X``;
  ``B-X`` marks only the first word of a chunk that directly follows another
  chunk of the same type.
* **IOBES**: also ``E-X`` (last word of a chunk) and ``S-X`` (a one-word
  chunk); only :func:`bio_constraints` reads it.
* **token** (:data:`TOKEN`): tags that are not chunks, such as parts of
  speech (``"NN"``, ``"PRP$"``, ``"."``): any non-empty string, every
  transition allowed, nothing converted, scored by token accuracy. Files
  are read in it only when asked (``scheme="token"``, or a CoNLL-U source).

:func:`iob1_to_iob2` turns every ``I-X`` that starts a chunk (first word, or
after ``O`` or after a tag of another type) into ``B-X`` and keeps everything
else. It is the identity on valid IOB2, so applying it to a file of unknown
scheme is safe; on IOB2 with mistakes it performs the usual repair (a stray
``I-X`` opens a chunk, as conlleval reads it).
"""

from __future__ import annotations

from typing import Collection, Sequence

import numpy as np

from jaxkd.crf.constraints import Constraints

OUTSIDE = "O"
TOKEN = "token"  # tags that are not chunks (parts of speech)
SCHEMES = ("auto", "iob1", "iob2", TOKEN)  # how a file's tags are read
PREFIXES = ("B", "I")  # IOB1 and IOB2
IOBES_PREFIXES = ("B", "I", "E", "S")


def split_tag(tag: str, prefixes: Collection[str] | None = PREFIXES) -> tuple[str, str | None]:
    """``"B-PER" -> ("B", "PER")``, ``"I-geo-loc" -> ("I", "geo-loc")``,
    ``"O" -> ("O", None)``.

    Args:
      tag: a tag string.
      prefixes: the one-letter prefixes a tag may have (default ``B``, ``I``);
        a tag that is not ``"O"`` or ``PREFIX-TYPE`` with a non-empty type
        raises. ``None``: conlleval's (and seqeval's) reading, which accepts
        any non-empty string: the prefix is the first character and the type
        the rest less everything up to its first ``-``, ``None`` when that
        is empty (``"B" -> ("B", None)``, ``"BPER" -> ("B", "PER")``,
        ``"O-X" -> ("O", "X")``); an empty tag raises ``IndexError`` there,
        as in seqeval.

    Raises:
      ValueError: if ``tag`` is malformed, naming the accepted forms, e.g.
        ``tag 'S-PER' is not 'O', 'B-TYPE' or 'I-TYPE'``.
    """
    if tag == OUTSIDE:
        return OUTSIDE, None
    rest = tag[1:]
    kind = rest.split("-", 1)[-1]
    if prefixes is None:
        return tag[0], kind or None
    if tag[:1] not in prefixes or not rest.startswith("-") or not kind:
        forms = [f"{OUTSIDE!r}"] + [f"'{p}-TYPE'" for p in prefixes]
        raise ValueError(f"tag {tag!r} is not {', '.join(forms[:-1])} or {forms[-1]}")
    return tag[0], kind


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


def _label_parts(label: str) -> tuple[str, str | None]:
    """:func:`split_tag` of a CRF label, any IOBES prefix accepted."""
    try:
        return split_tag(label, IOBES_PREFIXES)
    except ValueError:
        raise ValueError(f"label {label!r} is not 'O' or PREFIX-TYPE with PREFIX in B, I, E, S") from None


def bio_constraints(labels: Sequence[str], scheme: str = "IOB2") -> Constraints:
    """Builds the allowed CRF moves of a tagging scheme from its label names
    (the CRF's :class:`~jaxkd.crf.Constraints`).

    IOB2 (BIO): a sequence may not start with ``I-X``; ``I-X`` may only follow
    ``B-X`` or ``I-X`` (so no ``O -> I-X`` and no ``B-X -> I-Y``).

    IOBES: additionally, ``B-X``/``I-X`` must be followed by ``I-X``/``E-X`` and
    may not end a sequence; ``E-X``/``S-X``/``O`` may be followed only by
    ``O``, ``B-*`` or ``S-*``.

    Args:
      labels: ``N`` label names, e.g. ``["O", "B-PER", "I-PER"]``.
      scheme: ``"IOB2"`` (alias ``"BIO"``) or ``"IOBES"``.

    Returns:
      :class:`jaxkd.crf.Constraints` with ``[N, N]``, ``[N]``, ``[N]`` boolean
      masks.
    """
    scheme = scheme.upper()
    if scheme == "BIO":
        scheme = "IOB2"
    if scheme not in {"IOB2", "IOBES"}:
        raise ValueError(f"unknown tagging scheme {scheme!r}; use 'IOB2' or 'IOBES'")
    parts = [_label_parts(label) for label in labels]
    if scheme == "IOB2":
        bad = [lab for lab, (p, _) in zip(labels, parts) if p in {"E", "S"}]
        if bad:
            raise ValueError(f"labels {bad} are not IOB2; pass scheme='IOBES'")
    n = len(labels)
    trans = np.ones((n, n), bool)
    start = np.ones((n,), bool)
    end = np.ones((n,), bool)
    for j, (pj, kj) in enumerate(parts):
        inside = pj in {"I", "E"}  # must continue an open entity of type kj
        if inside:
            start[j] = False
        if scheme == "IOBES" and pj in {"B", "I"}:
            end[j] = False
        for i, (pi, ki) in enumerate(parts):
            if scheme == "IOB2":
                ok = not inside or (pi in {"B", "I"} and ki == kj)
            else:
                opened = pi in {"B", "I"}  # i leaves an entity open
                if opened:
                    ok = inside and ki == kj
                else:
                    ok = not inside
            trans[i, j] = ok
    return Constraints.from_masks(trans, start, end)
