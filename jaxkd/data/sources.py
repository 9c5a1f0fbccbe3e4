"""Corpora: train/dev/test sentences plus the label vocabulary.

The sources, one result type (:class:`jaxkd.data.corpus.Corpus`):

* :func:`from_conll_dir` - a directory of CoNLL files (``eng.train`` /
  ``eng.testa`` / ``eng.testb``, or ``train.txt`` / ``valid.txt`` or
  ``dev.txt`` / ``test.txt``, each optionally ``.gz``), or of CoNLL-U files
  (``*train*.conllu``, ``*dev*.conllu``, ``*test*.conllu``; token tags).
* :func:`jaxkd.data.hf.load_hf` / :func:`jaxkd.data.hf.from_hf_dataset` - a
  Hugging Face dataset id (parquet, e.g. ``eriktks/conll2003``) or an already
  loaded ``DatasetDict``.
* :func:`wnut16` - the offline WNUT-16-style tweets of
  :func:`jaxkd.offline.wnut16_path`.
* :data:`CORPORA` - the public corpora shipped in ``jaxkd/corpora/`` (each
  with its licence and ``SOURCE.md``): ``wnut17`` (WNUT-17 Emerging
  Entities), ``btc`` (Broad Twitter Corpus), ``ud-ewt-upos`` and
  ``ud-ewt-xpos`` (Universal Dependencies English-EWT parts of speech).

:func:`load_corpus` dispatches on a string spec. Every source applies the
policies of :mod:`jaxkd.data.corpus` (a dev split taken from train when there
is none, labels from train only, unseen dev/test tags).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jaxkd import offline
from jaxkd.data.conll import parse_conll
from jaxkd.data.conllu import COLUMNS, parse_conllu
from jaxkd.data.corpus import Corpus, assemble, dev_from_train, line_locator
from jaxkd.data.errors import DataError, where
from jaxkd.data.hf import from_hf_dataset, load_hf
from jaxkd.data.scheme import TOKEN

__all__ = ["CORPORA", "Corpus", "from_conll_dir", "from_hf_dataset", "load_corpus", "load_hf", "wnut16"]

CORPORA_DIR = Path(__file__).resolve().parents[1] / "corpora"
# data.source name -> (directory under jaxkd/corpora, CoNLL-U tag column or None for CoNLL NER)
CORPORA = {
    "wnut17": ("wnut17", None),
    "btc": ("btc", None),
    "ud-ewt-upos": ("ud_english_ewt", "upos"),
    "ud-ewt-xpos": ("ud_english_ewt", "xpos"),
}

# File names of each split, in order of preference, for from_conll_dir.
_STEMS = {
    "train": ("train",),
    "dev": ("valid", "dev", "validation", "testa"),
    "test": ("test", "testb"),
}
_SUFFIXES = tuple(x + gz for gz in ("", ".gz") for x in ("", ".txt", ".conll", ".tsv"))
_CONLL2003 = {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}


def from_conll_dir(
    directory: str | Path,
    *,
    word_col: int = 0,
    tag_col: int = -1,
    scheme: str = "auto",
    dev_fraction: float = 0.1,
    allow_unseen_tags: bool = False,
    name: str | None = None,
    conllu_tags: str = "upos",
) -> Corpus:
    """A corpus from a directory of CoNLL column files or of CoNLL-U files.

    Recognised CoNLL names: ``eng.train``/``eng.testa``/``eng.testb``
    (CoNLL-2003), or ``train``, ``valid``|``dev``|``validation``|``testa``
    and ``test``|``testb`` with suffix ``.txt``, ``.conll``, ``.tsv`` or none
    (CoNLL-2000 ships ``train.txt`` and ``test.txt``), each also with
    ``.gz``. A directory with ``.conllu`` (or ``.conllu.gz``) files is read as
    CoNLL-U instead: the split is the file whose name holds ``train``,
    ``dev`` and ``test`` (as UD names them, ``en_ewt-ud-train.conllu``).
    Without a dev file the last ``dev_fraction`` of train becomes dev (see
    :mod:`jaxkd.data.corpus`).

    Args:
      directory: the folder.
      word_col, tag_col, scheme: as in :func:`jaxkd.data.conll.parse_conll`
        (CoNLL-2003 NER: the defaults; its chunks: ``tag_col=2``; its parts of
        speech: ``tag_col=1, scheme="token"``); unused for CoNLL-U.
      dev_fraction: share of train used as dev when there is no dev file.
      allow_unseen_tags: see :mod:`jaxkd.data.corpus`.
      name: corpus name (default: the directory's name).
      conllu_tags: CoNLL-U only: ``"upos"`` or ``"xpos"``.

    Raises:
      DataError: a missing directory or split file, an ambiguous file name, a
        malformed file, or an unseen tag.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{where(directory)}: not a directory of CoNLL files")
    conllu = _find_conllu_files(directory)
    if conllu and conllu_tags not in COLUMNS:
        raise DataError(f"{where(directory)}: conllu_tags must be one of {sorted(COLUMNS)}, not {conllu_tags!r}")
    if conllu:
        parsed = {split: parse_conllu(path, tags=conllu_tags) for split, path in conllu.items()}
    else:
        files = _find_split_files(directory)
        read = {"word_col": word_col, "tag_col": tag_col, "scheme": scheme}
        parsed = {split: parse_conll(path, **read) for split, path in files.items()}
    notes = [f"{f.path.name}: IOB1 tags converted to IOB2 ({f.retagged} tags changed)" for f in parsed.values()
             if f.retagged]
    splits = {split: (f.sentences, line_locator(f.path, f.lines)) for split, f in parsed.items()}
    if "dev" not in splits:
        splits["train"], splits["dev"] = dev_from_train(
            *splits["train"], dev_fraction, str(parsed["train"].path), notes
        )
    return assemble(
        name or directory.resolve().name, splits, allow_unseen_tags=allow_unseen_tags, notes=notes,
        scheme=TOKEN if parsed["train"].scheme == TOKEN else "IOB2",
    )


def _find_conllu_files(directory: Path) -> dict[str, Path]:
    """The CoNLL-U file of each split (none: not a CoNLL-U directory)."""
    found = [p for p in directory.iterdir() if p.is_file() and p.name.endswith((".conllu", ".conllu.gz"))]
    if not found:
        return {}
    hits = {split: [p for p in found if split in p.name] for split in ("train", "dev", "test")}
    expected = "CoNLL-U names holding 'train', 'dev' and 'test' (e.g. en_ewt-ud-train.conllu)"
    return _one_per_split(directory, hits, "CoNLL-U ", expected, sorted(p.name for p in found))


def _one_per_split(directory: Path, hits: dict[str, list[Path]], kind: str, expected: str, present: list[str]
                   ) -> dict[str, Path]:
    """The file of each split among its candidates ``hits``: two candidates
    are an error, and so is no train or no test file."""
    for split, paths in hits.items():
        if len(paths) > 1:
            raise DataError(
                f"{where(directory)}: several {kind}files could be the {split} split: "
                f"{sorted(p.name for p in paths)}; keep one"
            )
    missing = [s for s in ("train", "test") if not hits[s]]
    if missing:
        raise DataError(
            f"{where(directory)}: no {' or '.join(missing)} {kind}file; expected {expected}; "
            f"found {present or 'no files'}"
        )
    return {split: paths[0] for split, paths in hits.items() if paths}


def shipped(name: str, *, allow_unseen_tags: bool = False) -> Corpus:
    """One of the corpora in ``jaxkd/corpora/`` (:data:`CORPORA`), with its
    own train/dev/test split (each directory's ``SOURCE.md`` says which)."""
    folder, tags = CORPORA[name]
    return from_conll_dir(
        CORPORA_DIR / folder, scheme="iob2", allow_unseen_tags=allow_unseen_tags, name=name, conllu_tags=tags or "upos"
    )


def _find_split_files(directory: Path) -> dict[str, Path]:
    present = {p.name: p for p in directory.iterdir() if p.is_file()}
    hits = {
        split: [present[n] for n in [_CONLL2003[split]] + [s + x for s in _STEMS[split] for x in _SUFFIXES]
                if n in present]
        for split in ("train", "dev", "test")
    }
    expected = "eng.train/eng.testa/eng.testb or train.txt/valid.txt (or dev.txt)/test.txt"
    return _one_per_split(directory, hits, "", expected, sorted(present))


def wnut16(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    allow_unseen_tags: bool = False,
) -> Corpus:
    """The offline WNUT-16-style tweets (2,394 sentences, 10 entity types),
    split deterministically into train/dev/test.

    The split is a seeded draw that never changes across library versions:
    sentences are ordered by ``blake2b(f"{seed}:{index}")``, the first
    ``fractions[0]`` go to train, the next ``fractions[1]`` to dev, the rest to
    test (dev and test sizes are rounded); each split keeps file order.

    Args:
      path: the file (default :func:`jaxkd.offline.wnut16_path`).
      seed: selects the split.
      fractions: train/dev/test shares, summing to 1.
      allow_unseen_tags: as in :func:`from_conll_dir`.
    """
    if path is None:
        path = offline.wnut16_path()
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive shares summing to 1, not {fractions}")
    parsed = parse_conll(path, scheme="auto")
    n = len(parsed.sentences)
    n_dev, n_test = round(n * fractions[1]), round(n * fractions[2])
    order = sorted(
        range(n), key=lambda i: hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest()
    )
    parts = {
        "train": sorted(order[: n - n_dev - n_test]),
        "dev": sorted(order[n - n_dev - n_test : n - n_test]),
        "test": sorted(order[n - n_test :]),
    }
    splits = {
        split: (
            [parsed.sentences[i] for i in idx],
            line_locator(parsed.path, [parsed.lines[i] for i in idx]),
        )
        for split, idx in parts.items()
    }
    notes = [
        f"{parsed.path.name}: {n} sentences split by seeded hash (seed {seed}) into "
        f"{len(parts['train'])}/{len(parts['dev'])}/{len(parts['test'])} train/dev/test"
    ]
    if parsed.retagged:
        notes.append(f"IOB1 tags converted to IOB2 ({parsed.retagged} tags changed)")
    return assemble("wnut16", splits, allow_unseen_tags=allow_unseen_tags, notes=notes)


def load_corpus(spec: str | Path, **options: Any) -> Corpus:
    """Loads a corpus from a spec string.

    * ``"wnut16"`` -> :func:`wnut16`
    * a name of :data:`CORPORA` (``"wnut17"``, ``"btc"``, ``"ud-ewt-upos"``,
      ``"ud-ewt-xpos"``) -> that shipped corpus (:func:`shipped`)
    * ``"hf:<dataset id>"`` (e.g. ``"hf:eriktks/conll2003"``) -> :func:`load_hf`
    * a directory path -> :func:`from_conll_dir`

    ``options`` go to the chosen function.
    """
    text = str(spec)
    if text == "wnut16":
        return wnut16(**options)
    if text in CORPORA:
        return shipped(text, **options)
    if text.startswith("hf:"):
        return load_hf(text[3:], **options)
    if Path(text).is_dir():
        return from_conll_dir(text, **options)
    raise DataError(
        f"unknown corpus {text!r}: expected 'wnut16', one of {', '.join(CORPORA)}, 'hf:<dataset id>' "
        "(e.g. 'hf:eriktks/conll2003') or an existing directory of CoNLL or CoNLL-U files"
    )
