"""Label text with a trained tagger.

    python -m jaxkd.predict --workdir runs/demo/efficient --input tweets.txt [--output out.conll]
    python -m jaxkd.predict --workdir runs/teacher --input test.conll --output-format jsonl
    echo "EU rejects German call" | python -m jaxkd.predict --workdir runs/teacher --output-format tags

``--workdir`` is a training run's workdir or an ``hf`` export
(``python -m jaxkd.export``). Input (files, or standard input): raw text, one
sentence per line, words split on whitespace; or a CoNLL file, words in the
first column, blank lines between sentences, and when there are two or more
columns the last one is kept as gold tags and entity F1 is reported. With
``--format auto`` the content decides (:func:`detect_format`) and the choice is
printed. Output: ``conll`` columns ``word [gold] predicted`` with a blank line
after each sentence; ``jsonl``, one JSON object per sentence (words, tags,
entities as ``[type, start, end, text]`` with ``end`` exclusive, gold tags when
read); or ``tags``, one line per sentence of ``word/TAG``. Every input word
gets exactly one prediction (long sentences are windowed, never cut). A file
output is written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

from absl import logging

from jaxkd.data.conll import DOCSTART, ColumnCountError, Dialect, read_columns
from jaxkd.evaluate import format_scores, scores
from jaxkd.labeling import load_tagger
from jaxkd.progress import progress
from jaxkd.training.compiles import use_persistent_cache

INPUT_FORMATS = ("auto", "text", "conll")
OUTPUT_FORMATS = ("conll", "jsonl", "tags")
CHUNK_SENTENCES = 2048  # sentences labelled per call of the tagger (progress granularity)
TAG_PATTERN = re.compile(r"^(O|[BIESLU]-\S+)$")


class InputError(ValueError):
    pass


class Document(NamedTuple):
    """One input's sentences (word lists), gold tags or None, and its name."""

    sentences: list[list[str]]
    gold: list[list[str]] | None
    name: str
    format: str


def _read_text(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return p.read_text(encoding="utf-8"), str(p)
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err})") from None


def detect_format(lines: Sequence[str], labels: Sequence[str] = ()) -> tuple[str, str]:
    """``("conll" | "text", reason)`` from the content of a file.

    Lines split into columns as :meth:`jaxkd.data.conll.Dialect.of_text`
    says. CoNLL when every non-blank line (``-DOCSTART-`` aside) has the same
    number of columns, at least two, and every last column is a tag (one of
    ``labels``, or of the form ``O`` / ``B-X`` / ``I-X`` / ``E-X`` / ``S-X``);
    or one column per line with blank lines between groups of several lines.
    Raw text otherwise.
    """
    dialect = Dialect.of_text(lines)
    rows = [dialect.fields(ln) for ln in lines]
    content = [r for r in rows if r and r[0] != DOCSTART]
    if not content:
        return "text", "no content"
    widths = {len(r) for r in content}
    known = set(labels)
    if len(widths) == 1 and (width := next(iter(widths))) >= 2:
        if all(r[-1] in known or TAG_PATTERN.match(r[-1]) for r in content):
            return "conll", f"{width} columns on every line, the last one tags, kept as gold"
        return "text", f"{width} words per line, but the last words are not tags"
    if widths == {1}:
        blanks = sum(1 for r in rows if not r)
        if blanks and len(content) >= 2 * blanks:
            return "conll", "one word per line, blank lines between sentences"
    return "text", "lines of different lengths"


def parse(text: str, name: str, fmt: str, labels: Sequence[str] = ()) -> Document:
    """The sentences of one input in ``fmt`` (``auto``: :func:`detect_format`)."""
    lines = text.splitlines()
    if fmt == "auto":
        fmt, reason = detect_format(lines, labels)
        other = "text" if fmt == "conll" else "conll"
        print(f"[jaxkd] reading {name} as {'CoNLL columns' if fmt == 'conll' else 'raw text, one sentence per line'} "
              f"({reason}; --format {other} to override)", file=sys.stderr)
    if fmt == "text":
        return Document([ln.split() for ln in lines if ln.strip()], None, name, fmt)
    if fmt != "conll":
        raise InputError(f"unknown --format {fmt!r}; use one of {INPUT_FORMATS}")
    try:
        rows = read_columns(enumerate(lines, 1), _word_and_last, source=name, dialect=Dialect.of_text(lines))
    except ColumnCountError as err:
        raise InputError(
            f"{name}:{err.line}: {err.found} columns where earlier lines have {err.expected} "
            "(if this file is raw text, one sentence per line, use --format text)"
        ) from None
    sentences = [[word for word, _ in sentence] for sentence in rows.sentences]
    gold = [[tag for _, tag in sentence] for sentence in rows.sentences]
    return Document(sentences, gold if rows.columns and rows.columns > 1 else None, name, fmt)


def _word_and_last(number: int, fields: list[str], text: str) -> tuple[str, str]:
    """A token line's word (first column) and last column (the gold tag when there are two or more)."""
    return fields[0], fields[-1]


def read_inputs(paths: Sequence[str], fmt: str, labels: Sequence[str] = ()) -> list[Document]:
    """Every input parsed; raises :class:`InputError` if none holds a sentence."""
    documents = [parse(*_read_text(path), fmt, labels) for path in paths]
    if not any(d.sentences for d in documents):
        raise InputError(f"{', '.join(d.name for d in documents)}: no sentences to label")
    return documents


def label_all(tagger, sentences: list[list[str]], *, progress_mode: str = "auto") -> list:
    """``tagger.label`` over ``sentences`` in chunks, with progress on long inputs."""
    mode = progress_mode if len(sentences) > CHUNK_SENTENCES else "never"
    bar = progress(sum(map(len, sentences)), "labelling", mode, unit="word")
    out = []
    for k in range(0, len(sentences), CHUNK_SENTENCES):
        chunk = sentences[k : k + CHUNK_SENTENCES]
        out += tagger.label(chunk)
        bar.update(sum(map(len, chunk)))
    bar.close()
    return out


def format_output(labelled, gold, fmt: str) -> list[str]:
    """The output lines of labelled sentences (see the module docstring)."""
    lines = []
    for i, sentence in enumerate(labelled):
        if fmt == "conll":
            for j, (w, t) in enumerate(zip(sentence.words, sentence.tags)):
                lines.append(f"{w}\t{gold[i][j]}\t{t}" if gold is not None else f"{w}\t{t}")
            lines.append("")
        elif fmt == "jsonl":
            entities = [list(e) for e in sentence.entities]
            record = {"words": sentence.words, "tags": sentence.tags, "entities": entities}
            if gold is not None:
                record["gold"] = gold[i]
            lines.append(json.dumps(record, ensure_ascii=False))
        elif fmt == "tags":
            lines.append(" ".join(f"{w}/{t}" for w, t in zip(sentence.words, sentence.tags)))
        else:
            raise InputError(f"unknown --output-format {fmt!r}; use one of {OUTPUT_FORMATS}")
    return lines


def write_output(path: str, lines: list[str]) -> None:
    """To standard output, or to a temporary file renamed at the end."""
    text = "\n".join(lines) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def label(
    workdir: str | Path, sentences: list[list[str]], *, batch_size: int = 64, checkpoint_name: str = "best"
) -> list[list[str]]:
    """Predicted tag strings for every word of every sentence (:func:`jaxkd.load_tagger`)."""
    try:
        tagger = load_tagger(workdir, checkpoint=checkpoint_name, batch_size=batch_size)
    except FileNotFoundError as err:
        raise InputError(str(err)) from None
    return [s.tags for s in tagger.label(sentences)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a training run's workdir, or an hf export")
    parser.add_argument("--input", action="append", help="file to label; repeat for several (default: stdin, also '-')")
    parser.add_argument("--output", default="-", help="output file (default: stdout)")
    parser.add_argument("--format", default="auto", choices=INPUT_FORMATS, help="input format (auto: from the content)")
    parser.add_argument("--output-format", default="conll", choices=OUTPUT_FORMATS)
    parser.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--progress", default="auto", choices=("auto", "always", "lines", "never"))
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    use_persistent_cache("auto")  # a later call with the same shapes loads, not compiles
    try:
        tagger = load_tagger(args.workdir, checkpoint=args.checkpoint, batch_size=args.batch_size)
        documents = read_inputs(args.input or ["-"], args.format, tagger.labels)
        sentences = [s for d in documents for s in d.sentences]
        labelled = label_all(tagger, sentences, progress_mode=args.progress)
    except (InputError, FileNotFoundError, ValueError) as err:
        print(f"jaxkd.predict: error: {err}", file=sys.stderr)
        return 2
    if any(len(s.tags) != len(s.words) for s in labelled):  # a broken promise, never an input error
        raise RuntimeError("a sentence got a different number of tags than words")
    lines, k, scored = [], 0, ([], [])
    for d in documents:
        part = labelled[k : k + len(d.sentences)]
        k += len(d.sentences)
        lines += format_output(part, d.gold, args.output_format)
        if d.gold is not None:
            scored[0].extend(d.gold)
            scored[1].extend(s.tags for s in part)
    write_output(args.output, lines)
    n_words = sum(len(s) for s in sentences)
    names = ", ".join(d.name for d in documents)
    print(f"[jaxkd] labelled {len(sentences)} sentences, {n_words} words from {names}", file=sys.stderr)
    if scored[0]:
        try:
            chunks = tagger.run.labels.chunks
            what = "entity scores" if chunks else "token accuracy"
            print(format_scores(f"{what} vs the input's tags", scores(*scored, chunks=chunks)), file=sys.stderr)
        except Exception as err:  # noqa: BLE001 - a gold column in another scheme
            print(f"[jaxkd] (no scores: {err})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
