"""Reading CoNLL column files into sentences.

A CoNLL file has one token per line, in whitespace-separated columns (tabs if
the first token line has a tab, else runs of spaces), and a line holding only
whitespace between sentences. ``-DOCSTART-`` lines (CoNLL-2003 document
boundaries) are skipped. CRLF line ends and trailing spaces are tolerated.

Tags are converted to IOB2 (see :mod:`jaxkd.data.scheme`) so that every
sentence's gold path is allowed by :func:`jaxkd.crf.constraints.bio_constraints`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, NamedTuple

from jaxkd.data.errors import DataError, where
from jaxkd.data.scheme import SCHEMES, first_iob1_start, iob1_to_iob2, split_tag

DOCSTART = "-DOCSTART-"
_SPACES = re.compile(r"[ \t]+")


class Sentence(NamedTuple):
    """One labelled sentence.

    Attributes:
      words: ``[n]`` tokens, as in the file.
      tags: ``[n]`` IOB2 tags (``"O"``, ``"B-X"``, ``"I-X"``).
    """

    words: tuple[str, ...]
    tags: tuple[str, ...]


class ConllFile(NamedTuple):
    """A parsed file with the facts needed for good error messages.

    Attributes:
      path: the file.
      sentences: the sentences, tags in IOB2.
      lines: for each sentence, the 1-based line number of each word.
      scheme: what the tags in the file were: ``"iob1"`` or ``"iob2"``.
      retagged: how many tags the IOB1 -> IOB2 conversion changed.
    """

    path: Path
    sentences: list[Sentence]
    lines: list[tuple[int, ...]]
    scheme: str
    retagged: int


def read_conll(
    path: str | Path, *, word_col: int = 0, tag_col: int = -1, scheme: str = "auto"
) -> list[Sentence]:
    """Reads a CoNLL column file; see :func:`parse_conll`."""
    return parse_conll(path, word_col=word_col, tag_col=tag_col, scheme=scheme).sentences


def parse_conll(
    path: str | Path, *, word_col: int = 0, tag_col: int = -1, scheme: str = "auto"
) -> ConllFile:
    """Reads a CoNLL column file.

    Args:
      path: the file (UTF-8).
      word_col: column of the words (Python index; negative counts from the end).
      tag_col: column of the tags (default: the last one).
      scheme: the tagging scheme of the file: ``"iob1"`` (converted to IOB2),
        ``"iob2"`` (checked: an ``I-X`` that opens a chunk is an error) or
        ``"auto"`` (IOB1 if any ``I-X`` opens a chunk, else IOB2; the IOB1
        conversion is the identity on valid IOB2).

    Returns:
      A :class:`ConllFile`; its ``sentences`` have IOB2 tags.

    Raises:
      DataError: naming the file and 1-based line for a line whose column
        count differs from the first token line's, an empty word or tag, a tag
        that is not ``O``/``B-X``/``I-X``, an IOB1 chunk start under
        ``scheme="iob2"``, bytes that are not UTF-8; and for a file with no
        sentence at all.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    path = Path(path)
    sentences: list[Sentence] = []
    lines: list[tuple[int, ...]] = []
    words: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    layout: _Layout | None = None

    def flush() -> None:
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags)))
            lines.append(tuple(numbers))
            words.clear(), tags.clear(), numbers.clear()

    for lineno, text in _lines(path):
        if not text.strip():
            flush()
            continue
        if text.split(None, 1)[0] == DOCSTART:
            flush()
            continue
        if layout is None:
            layout = _Layout.from_first_line(text, lineno, path, word_col, tag_col)
        word, tag = layout.fields(text, lineno, path)
        try:
            split_tag(tag)
        except ValueError as err:
            raise DataError(f"{where(path, lineno)}: {err}") from None
        words.append(word)
        tags.append(tag)
        numbers.append(lineno)
    flush()
    if not sentences:
        raise DataError(
            f"{where(path)}: no sentences (the file is empty or holds only blank "
            f"and {DOCSTART} lines)"
        )
    sentences, found, retagged = normalise_scheme(
        sentences, scheme, lambda i, k: where(path, lines[i][k])
    )
    return ConllFile(path, sentences, lines, found, retagged)


class _Layout(NamedTuple):
    """Column layout of a file, fixed by its first token line."""

    tabs: bool
    columns: int
    first_line: int
    word_col: int
    tag_col: int

    @classmethod
    def from_first_line(cls, text, lineno, path, word_col, tag_col) -> _Layout:
        tabs = "\t" in text.strip()
        columns = len(_split(text, tabs))
        for name, col in (("word_col", word_col), ("tag_col", tag_col)):
            if not -columns <= col < columns:
                raise DataError(
                    f"{where(path, lineno)}: {name}={col} is out of range for the "
                    f"file's first token line, which has {columns} column(s)"
                )
        word_col, tag_col = word_col % columns, tag_col % columns
        if word_col == tag_col:
            raise DataError(
                f"{where(path, lineno)}: word and tag columns are the same column "
                f"({word_col}) of {columns}; a labelled file needs two columns"
            )
        return cls(tabs, columns, lineno, word_col, tag_col)

    def fields(self, text: str, lineno: int, path: Path) -> tuple[str, str]:
        """The (word, tag) of one token line, checked."""
        parts = _split(text, self.tabs)
        if len(parts) != self.columns:
            raise DataError(
                f"{where(path, lineno)}: expected {self.columns} column(s) like the "
                f"first token line (line {self.first_line}), found {len(parts)}: {text!r}"
            )
        word, tag = parts[self.word_col], parts[self.tag_col]
        if not word:
            raise DataError(f"{where(path, lineno)}: empty word (column {self.word_col}): {text!r}")
        if not tag:
            raise DataError(f"{where(path, lineno)}: empty tag (column {self.tag_col}): {text!r}")
        return word, tag


def _split(text: str, tabs: bool) -> list[str]:
    if tabs:
        return [field.strip(" ") for field in text.rstrip(" \t").split("\t")]
    return _SPACES.split(text.strip(" \t"))


def _lines(path: Path):
    """Yields ``(1-based line number, line without its CR/LF)``. Only ``\\n``
    ends a line; a UTF-8 byte-order mark at the start is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{where(path)}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{where(path)}: is a directory, not a CoNLL file") from None
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{where(path, lineno)}: not UTF-8 text ({err.reason})") from None
        yield lineno, text.rstrip("\r")


def normalise_scheme(
    sentences: list[Sentence], scheme: str, locate: Callable[[int, int], str]
) -> tuple[list[Sentence], str, int]:
    """Brings sentences to IOB2.

    Args:
      sentences: tags already checked to be ``O``/``B-X``/``I-X``.
      scheme: ``"iob1"``, ``"iob2"`` or ``"auto"`` as in :func:`parse_conll`.
      locate: ``(sentence index, word index) -> "where"`` for error messages.

    Returns:
      ``(sentences in IOB2, "iob1" or "iob2" (what the input was), number of
      tags changed)``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    starts = [(i, first_iob1_start(s.tags)) for i, s in enumerate(sentences)]
    starts = [(i, k) for i, k in starts if k is not None]
    if not starts:
        return sentences, "iob2", 0
    if scheme == "iob2":
        i, k = starts[0]
        raise DataError(
            f"{locate(i, k)}: tag {sentences[i].tags[k]!r} opens a chunk, which IOB2 "
            "does not allow; if the data is IOB1 (like the original CoNLL-2003 "
            "release), read it with scheme='iob1' or 'auto'"
        )
    retagged = 0
    converted = list(sentences)
    for i, _ in starts:
        new = iob1_to_iob2(sentences[i].tags)
        retagged += sum(a != b for a, b in zip(new, sentences[i].tags))
        converted[i] = Sentence(sentences[i].words, new)
    return converted, "iob1", retagged
