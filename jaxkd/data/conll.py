"""Reading CoNLL column files into sentences.

A CoNLL file has one token per line, in whitespace-separated columns (tabs if
the first token line has a tab, else runs of spaces), and a line holding only
whitespace between sentences. ``-DOCSTART-`` lines (CoNLL-2003 document
boundaries) are skipped. CRLF line ends and trailing spaces are tolerated.
:func:`read_columns` is the one reader of columns: :func:`parse_conll` reads
labelled files with it, :mod:`jaxkd.predict` its input (:class:`Dialect`).

Chunk tags are converted to IOB2 (see :mod:`jaxkd.data.scheme`) so that
every sentence's gold path is allowed by
:func:`jaxkd.data.scheme.bio_constraints`; token tags (``scheme="token"``,
parts of speech) are kept as they are. A file whose name ends in ``.gz`` is
read through gzip (line numbers are those of the uncompressed text).
"""

from __future__ import annotations

import gzip
import re
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from jaxkd.data.errors import DataError, where
from jaxkd.data.scheme import SCHEMES, TOKEN, first_iob1_start, iob1_to_iob2, split_tag

DOCSTART = "-DOCSTART-"
_SPACES = re.compile(r"[ \t]+")


class Sentence(NamedTuple):
    """One labelled sentence.

    Attributes:
      words: ``[n]`` tokens, as in the file.
      tags: ``[n]`` IOB2 tags (``"O"``, ``"B-X"``, ``"I-X"``), or token tags.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...]


class ConllFile(NamedTuple):
    """A parsed file with the facts needed for good error messages.

    Attributes:
      path: the file.
      sentences: the sentences, tags in IOB2.
      lines: for each sentence, the 1-based line number of each word.
      scheme: what the tags in the file were: ``"iob1"``, ``"iob2"`` or ``"token"``.
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
        conversion is the identity on valid IOB2), or ``"token"`` (tags that
        are not chunks, e.g. parts of speech: any non-empty string, kept).

    Returns:
      A :class:`ConllFile`; its ``sentences`` have IOB2 (or token) tags.

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
    rows = read_columns(file_lines(path), _WordTag(path, word_col, tag_col, scheme != TOKEN), source=path)
    sentences = [Sentence(*zip(*pairs)) for pairs in rows.sentences]
    if not sentences:
        raise DataError(
            f"{where(path)}: no sentences (the file is empty or holds only blank "
            f"and {DOCSTART} lines)"
        )
    if scheme == TOKEN:
        return ConllFile(path, sentences, rows.lines, TOKEN, 0)
    sentences, found, retagged = normalise_scheme(
        sentences, scheme, lambda i, k: where(path, rows.lines[i][k])
    )
    return ConllFile(path, sentences, rows.lines, found, retagged)


class Dialect(NamedTuple):
    """How the lines of a CoNLL text split into fields.

    Attributes:
      tabs: fields are separated by tabs (spaces around a field dropped),
        else by runs of spaces and tabs; ``None``: tabs if the first token
        line holds one.
      loose: the reading of :mod:`jaxkd.predict`'s input (:meth:`of_text`):
        fields separated by tabs, else by any white space (e.g. no-break
        spaces too); empty fields dropped and white space stripped from each;
        a ``-DOCSTART-`` line is recognised by its first field and skipped
        without ending the sentence.
    """

    tabs: bool | None = None
    loose: bool = False

    @classmethod
    def of_text(cls, lines: Sequence[str]) -> Dialect:
        """The loose reading of ``lines``, tab-separated if any line holds a tab."""
        return cls(any("\t" in line for line in lines), loose=True)

    def fields(self, text: str) -> list[str]:
        """The fields of one line (``tabs`` decided)."""
        if self.loose:
            return [f.strip() for f in (text.split("\t") if self.tabs else text.split()) if f.strip()]
        if self.tabs:
            return [field.strip(" ") for field in text.rstrip(" \t").split("\t")]
        return _SPACES.split(text.strip(" \t"))

    def is_docstart(self, text: str) -> bool:
        """Whether a line that is not blank is a ``-DOCSTART-`` line."""
        first = self.fields(text)[0] if self.loose else text.split(None, 1)[0]
        return first == DOCSTART


FILE_DIALECT = Dialect()  # the reading of labelled files (parse_conll)


class ColumnCountError(DataError):
    """A token line with another column count than the first token line.

    Attributes:
      line, found: the line (1-based) and its column count.
      expected, first_line: the first token line's column count and line.
    """

    def __init__(self, source: object, line: int, found: int, expected: int, first_line: int, text: str):
        super().__init__(
            f"{where(source, line)}: expected {expected} column(s) like the "
            f"first token line (line {first_line}), found {found}: {text!r}"
        )
        self.line, self.found, self.expected, self.first_line = line, found, expected, first_line


class ColumnRows(NamedTuple):
    """What :func:`read_columns` read.

    Attributes:
      sentences: for each sentence, what ``row`` returned for each token line.
      lines: for each sentence, the 1-based line number of each token line.
      columns: the column count of every token line (``None``: no token line).
    """

    sentences: list[list[Any]]
    lines: list[tuple[int, ...]]
    columns: int | None


def read_columns(
    lines: Iterable[tuple[int, str]],
    row: Callable[[int, list[str], str], Any],
    *,
    source: object,
    dialect: Dialect = FILE_DIALECT,
) -> ColumnRows:
    """Groups the token lines of a CoNLL text into sentences: the one reader
    of CoNLL columns (:func:`parse_conll`, :func:`jaxkd.predict.parse`).

    A line holding only white space ends a sentence; a ``-DOCSTART-`` line is
    skipped and ends one (unless ``dialect.loose``). Every other line is a
    token line, split into fields by ``dialect``; all must have the first
    one's column count.

    Args:
      lines: ``(1-based line number, text without its line end)`` pairs.
      row: ``(line number, fields, text) -> value kept for the line``; called
        in order, after the line's column count is checked; it may raise.
      source: the file (or input) named in error messages.
      dialect: how lines split into fields.

    Raises:
      ColumnCountError: a token line has another column count than the first.
    """
    sentences: list[list[Any]] = []
    numbers: list[tuple[int, ...]] = []
    words: list[Any] = []
    word_lines: list[int] = []
    columns = first = None
    for lineno, text in chain(lines, [(0, "")]):  # a blank line at the end ends the last sentence
        blank = not text.strip()
        if not blank and dialect.is_docstart(text):
            if dialect.loose:
                continue
            blank = True
        if blank:
            if words:
                sentences.append(words)
                numbers.append(tuple(word_lines))
            words, word_lines = [], []
            continue
        if dialect.tabs is None:
            dialect = dialect._replace(tabs="\t" in text.strip())
        fields = dialect.fields(text)
        if columns is None:
            columns, first = len(fields), lineno
        elif len(fields) != columns:
            raise ColumnCountError(source, lineno, len(fields), columns, first, text)
        words.append(row(lineno, fields, text))
        word_lines.append(lineno)
    return ColumnRows(sentences, numbers, columns)


class _WordTag:
    """The checked ``(word, tag)`` of each token line of a labelled file; the
    columns are checked against the first token line."""

    def __init__(self, path: Path, word_col: int, tag_col: int, chunks: bool = True):
        self.path, self.word_col, self.tag_col, self.chunks = path, word_col, tag_col, chunks
        self.columns: tuple[int, int] | None = None

    def __call__(self, lineno: int, fields: list[str], text: str) -> tuple[str, str]:
        if self.columns is None:
            self.columns = self._fix_columns(lineno, len(fields))
        word_col, tag_col = self.columns
        word, tag = fields[word_col], fields[tag_col]
        if not word:
            raise DataError(f"{where(self.path, lineno)}: empty word (column {word_col}): {text!r}")
        if not tag:
            raise DataError(f"{where(self.path, lineno)}: empty tag (column {tag_col}): {text!r}")
        if self.chunks:
            try:
                split_tag(tag)
            except ValueError as err:
                raise DataError(f"{where(self.path, lineno)}: {err}") from None
        return word, tag

    def _fix_columns(self, lineno: int, columns: int) -> tuple[int, int]:
        for name, col in (("word_col", self.word_col), ("tag_col", self.tag_col)):
            if not -columns <= col < columns:
                raise DataError(
                    f"{where(self.path, lineno)}: {name}={col} is out of range for the "
                    f"file's first token line, which has {columns} column(s)"
                )
        word_col, tag_col = self.word_col % columns, self.tag_col % columns
        if word_col == tag_col:
            raise DataError(
                f"{where(self.path, lineno)}: word and tag columns are the same column "
                f"({word_col}) of {columns}; a labelled file needs two columns"
            )
        return word_col, tag_col


def file_lines(path: Path):
    """Yields ``(1-based line number, line without its CR/LF)`` of a text file
    (gzip-compressed if its name ends in ``.gz``). Only ``\\n`` ends a line; a
    UTF-8 byte-order mark at the start is dropped."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
    except FileNotFoundError:
        raise DataError(f"{where(path)}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{where(path)}: is a directory, not a CoNLL file") from None
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{where(path)}: not a readable gzip file ({err})") from None
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
