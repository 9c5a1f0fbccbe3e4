"""Reading CoNLL-U files (Universal Dependencies) into sentences of token tags.

A CoNLL-U file has one line per word of ten tab-separated fields (ID, FORM,
LEMMA, UPOS, XPOS, FEATS, HEAD, DEPREL, DEPS, MISC), ``#`` comment lines
before each sentence, and a blank line after it. Two kinds of line are not
words and are skipped: a multi-word token's range (ID ``3-4``, the surface
form of the words 3 and 4, e.g. ``don't`` over ``do`` and ``n't``) and an
empty node of the enhanced graph (ID ``8.1``). Every other line is one word
with one tag, so each sentence has exactly the words the treebank annotates.
The tags are token tags (scheme ``"token"``): UPOS (17 universal parts of
speech) or XPOS (the treebank's own, e.g. the Penn Treebank's for English).
"""

from __future__ import annotations

from pathlib import Path

from jaxkd.data.conll import ConllFile, Sentence, file_lines
from jaxkd.data.errors import DataError, where
from jaxkd.data.scheme import TOKEN

COLUMNS = {"upos": 3, "xpos": 4}  # the tag columns, by name
_FIELDS = 10


def parse_conllu(path: str | Path, *, tags: str = "upos") -> ConllFile:
    """Reads a CoNLL-U file (gzip-compressed if its name ends in ``.gz``).

    Args:
      path: the file (UTF-8).
      tags: ``"upos"`` or ``"xpos"``, the column to read the tags from.

    Returns:
      A :class:`jaxkd.data.conll.ConllFile` of scheme ``"token"``: per
      sentence its words (FORM) and tags, and each word's line number.

    Raises:
      DataError: naming the file and line for a line without ten fields, an
        ID that is not the next word's number, a range or empty node, an
        empty FORM, a tag that is empty or ``_`` (not annotated), and for a
        file with no sentence. The last sentence needs no blank line after it.
    """
    if tags not in COLUMNS:
        raise ValueError(f"tags must be one of {sorted(COLUMNS)}, not {tags!r}")
    path, column = Path(path), COLUMNS[tags]
    sentences: list[Sentence] = []
    lines: list[tuple[int, ...]] = []
    words: list[tuple[str, str, int]] = []
    for lineno, text in file_lines(path):
        if not text.strip():
            if words:
                sentences.append(Sentence(tuple(w for w, _, _ in words), tuple(t for _, t, _ in words)))
                lines.append(tuple(n for _, _, n in words))
            words = []
            continue
        if text.startswith("#"):
            continue
        word = _word(path, lineno, text, len(words) + 1, column, tags)
        if word is not None:
            words.append((*word, lineno))
    if words:
        sentences.append(Sentence(tuple(w for w, _, _ in words), tuple(t for _, t, _ in words)))
        lines.append(tuple(n for _, _, n in words))
    if not sentences:
        raise DataError(f"{where(path)}: no sentences (the file is empty or holds only comments)")
    return ConllFile(path, sentences, lines, TOKEN, 0)


def _word(path: Path, lineno: int, text: str, expected: int, column: int, tags: str) -> tuple[str, str] | None:
    """``(form, tag)`` of a word line; ``None`` for a range or an empty node."""
    fields = text.rstrip("\r").split("\t")
    if len(fields) != _FIELDS:
        raise DataError(
            f"{where(path, lineno)}: a CoNLL-U line has {_FIELDS} tab-separated fields, this one "
            f"{len(fields)}: {text[:80]!r}"
        )
    ident = fields[0]
    if "-" in ident or "." in ident:
        low, _, high = ident.replace(".", "-", 1).partition("-")
        if not (low.isdigit() and high.isdigit()):
            raise DataError(f"{where(path, lineno)}: ID {ident!r} is not a range N-M or an empty node N.M")
        return None
    if not ident.isdigit() or int(ident) != expected:
        raise DataError(f"{where(path, lineno)}: ID {ident!r} where word {expected} of the sentence was expected")
    form, tag = fields[1], fields[column].strip()
    if not form:
        raise DataError(f"{where(path, lineno)}: empty FORM")
    if not tag or tag == "_":
        raise DataError(f"{where(path, lineno)}: word {form!r} has no {tags.upper()} tag ({tag!r})")
    return form, tag
