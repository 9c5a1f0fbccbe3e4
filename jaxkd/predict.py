"""Label text with a trained tagger.

    python -m jaxkd.predict --workdir runs/demo/efficient --input tweets.txt [--output out.conll]
    python -m jaxkd.predict --workdir runs/teacher --input test.conll --format conll

Input: raw text (one sentence per line, words split on whitespace) or a CoNLL
file (words in the first column, blank lines between sentences; when a tag
column is present it is kept as gold and entity F1 is reported). Output: CoNLL
columns ``word [gold] predicted``, a blank line after each sentence, one
prediction for every input word (long sentences are windowed, never cut). The
output file is written whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


class InputError(ValueError):
    pass


def read_input(path: str | None, fmt: str) -> tuple[list[list[str]], list[list[str]] | None, str]:
    """(sentences as word lists, gold tags or None, source name)."""
    if path is None or path == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file")
        try:
            text, name = p.read_text(encoding="utf-8"), str(p)
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text ({err})") from None
    lines = text.splitlines()
    if fmt == "auto":
        fmt = "conll" if any("\t" in ln for ln in lines[:50]) or name.endswith((".conll", ".txt.conll")) else "text"
    sentences: list[list[str]] = []
    gold: list[list[str]] = []
    if fmt == "text":
        sentences = [ln.split() for ln in lines if ln.strip()]
        golds = None
    elif fmt == "conll":
        words: list[str] = []
        tags: list[str] = []
        columns = None
        for number, line in enumerate(lines, 1):
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [f.strip() for f in fields if f.strip()]
            if not fields:
                if words:
                    sentences.append(words)
                    gold.append(tags)
                words, tags = [], []
                continue
            if fields[0] == "-DOCSTART-":
                continue
            if columns is None:
                columns = len(fields)
            elif len(fields) != columns:
                raise InputError(f"{name}:{number}: {len(fields)} columns where earlier lines have {columns}")
            words.append(fields[0])
            tags.append(fields[-1])
        if words:
            sentences.append(words)
            gold.append(tags)
        golds = gold if columns and columns > 1 else None
    else:
        raise InputError(f"unknown --format {fmt!r}; use text, conll or auto")
    if not sentences:
        raise InputError(f"{name}: no sentences to label")
    return sentences, golds, name


def label(workdir: str | Path, sentences: list[list[str]], *, batch_size: int = 64, checkpoint_name: str = "best") -> list[list[str]]:
    """Predicted tag strings for every word of every sentence (:func:`jaxkd.load_tagger`)."""
    from jaxkd.labeling import load_tagger

    try:
        tagger = load_tagger(workdir, checkpoint=checkpoint_name, batch_size=batch_size)
    except FileNotFoundError as err:
        raise InputError(str(err)) from None
    return [s.tags for s in tagger.label(sentences)]


def write_conll(path: str | None, sentences, predictions, gold=None) -> None:
    """Writes ``word [gold] pred`` lines; to a temporary file renamed at the end."""
    out_lines = []
    for i, (words, tags) in enumerate(zip(sentences, predictions)):
        for j, (w, t) in enumerate(zip(words, tags)):
            out_lines.append(f"{w}\t{gold[i][j]}\t{t}" if gold is not None else f"{w}\t{t}")
        out_lines.append("")
    text = "\n".join(out_lines) + "\n"
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a training run's workdir")
    parser.add_argument("--input", default="-", help="file to label (default: stdin)")
    parser.add_argument("--output", default="-", help="CoNLL output file (default: stdout)")
    parser.add_argument("--format", default="auto", choices=("auto", "text", "conll"))
    parser.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    try:
        sentences, gold, name = read_input(args.input, args.format)
        predictions = label(args.workdir, sentences, batch_size=args.batch_size, checkpoint_name=args.checkpoint)
    except (InputError, FileNotFoundError, ValueError) as err:
        print(f"jaxkd.predict: error: {err}", file=sys.stderr)
        return 2
    assert all(len(p) == len(s) for p, s in zip(predictions, sentences))
    write_conll(args.output, sentences, predictions, gold)
    n_words = sum(len(s) for s in sentences)
    print(f"[jaxkd] labelled {len(sentences)} sentences, {n_words} words from {name}", file=sys.stderr)
    if gold is not None:
        from jaxkd.evaluate import entity_scores, format_scores

        try:
            print(format_scores("entity scores vs the input's tags", entity_scores(gold, predictions)), file=sys.stderr)
        except Exception as err:  # gold column may hold other schemes
            print(f"[jaxkd] (no scores: {err})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
