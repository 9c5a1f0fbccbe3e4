"""Corpora: train/dev/test sentences plus the label vocabulary.

Three sources, one result type (:class:`Corpus`):

* :func:`from_conll_dir` - a directory of CoNLL files (``eng.train`` /
  ``eng.testa`` / ``eng.testb``, or ``train.txt`` / ``valid.txt`` or
  ``dev.txt`` / ``test.txt``).
* :func:`load_hf` / :func:`from_hf_dataset` - a Hugging Face dataset id
  (parquet, e.g. ``eriktks/conll2003``) or an already loaded ``DatasetDict``.
* :func:`wnut16` - the offline WNUT-16-style tweets of
  :func:`jaxkd.offline.wnut16_path`.

:func:`load_corpus` dispatches on a string spec.

Policies (each recorded in ``Corpus.notes`` when it applies):

* **No dev split** (CoNLL-2000): the *last* ``dev_fraction`` (10%) of the
  training sentences, by position, become dev. Deterministic, seed-free, and
  it keeps whole documents together better than a random draw.
* **Labels** come from the training split only (:class:`LabelVocab`,
  completed with ``B-``/``I-`` for every type).
* **Unseen tags**: a dev/test tag of a type that never occurs in train is an
  error naming the tag and where it occurs. With ``allow_unseen_tags=True``
  the sentence keeps the tag, so entity-level evaluation against the gold
  strings counts such chunks as missed (the model cannot predict them); in
  batches the tag is encoded as ``O`` (id 0), which only affects a dev loss.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from jaxkd.data.conll import DOCSTART, Sentence, normalise_scheme, parse_conll
from jaxkd.data.errors import DataError, where
from jaxkd.data.labels import LabelVocab
from jaxkd.data.scheme import split_tag

Locate = Callable[[int, int], str]

# File names of each split, in order of preference, for from_conll_dir.
_STEMS = {
    "train": ("train",),
    "dev": ("valid", "dev", "validation", "testa"),
    "test": ("test", "testb"),
}
_SUFFIXES = ("", ".txt", ".conll", ".tsv")
_CONLL2003 = {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}


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


# ---------------------------------------------------------------- assembling


def _assemble(
    name: str,
    splits: Mapping[str, tuple[list[Sentence], Locate]],
    *,
    allow_unseen_tags: bool,
    notes: list[str],
) -> Corpus:
    """Builds the vocabulary from train and checks dev/test against it."""
    train = splits["train"][0]
    vocab = LabelVocab.from_sentences(train)
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
        if not allow_unseen_tags:
            raise DataError(
                f"{name}: {len(unseen)} {split} tag(s) of types never seen in train: "
                f"{tags} (first: {first}); the model cannot predict them. Pass "
                "--config.data.allow_unseen_tags=true (allow_unseen_tags=True in Python) to keep "
                "them for evaluation only (counted as missed chunks; encoded as 'O' in batches)"
            )
        notes.append(
            f"{split}: kept {len(unseen)} tag(s) of types unseen in train {tags} for "
            "evaluation only (encoded as 'O' in batches; first: " + first + ")"
        )
    return Corpus(
        splits["train"][0], splits["dev"][0], splits["test"][0], vocab, name, tuple(notes)
    )


def _dev_from_train(
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


# ---------------------------------------------------------------- CoNLL files


def from_conll_dir(
    directory: str | Path,
    *,
    word_col: int = 0,
    tag_col: int = -1,
    scheme: str = "auto",
    dev_fraction: float = 0.1,
    allow_unseen_tags: bool = False,
    name: str | None = None,
) -> Corpus:
    """A corpus from a directory of CoNLL column files.

    Recognised names: ``eng.train``/``eng.testa``/``eng.testb`` (CoNLL-2003),
    or ``train``, ``valid``|``dev``|``validation``|``testa`` and
    ``test``|``testb`` with suffix ``.txt``, ``.conll``, ``.tsv`` or none
    (CoNLL-2000 ships ``train.txt`` and ``test.txt``). Without a dev file the
    last ``dev_fraction`` of train becomes dev (see the module docstring).

    Args:
      directory: the folder.
      word_col, tag_col, scheme: as in :func:`jaxkd.data.conll.parse_conll`
        (CoNLL-2003 NER: the defaults; its chunks: ``tag_col=2``).
      dev_fraction: share of train used as dev when there is no dev file.
      allow_unseen_tags: see the module docstring.
      name: corpus name (default: the directory's name).

    Raises:
      DataError: a missing directory or split file, an ambiguous file name, a
        malformed file, or an unseen tag.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{where(directory)}: not a directory of CoNLL files")
    files = _find_split_files(directory)
    notes: list[str] = []
    splits: dict[str, tuple[list[Sentence], Locate]] = {}
    for split, path in files.items():
        parsed = parse_conll(path, word_col=word_col, tag_col=tag_col, scheme=scheme)
        if parsed.retagged:
            notes.append(
                f"{path.name}: IOB1 tags converted to IOB2 ({parsed.retagged} tags changed)"
            )
        splits[split] = (parsed.sentences, _line_locator(parsed.path, parsed.lines))
    if "dev" not in splits:
        splits["train"], splits["dev"] = _dev_from_train(
            *splits["train"], dev_fraction, str(files["train"]), notes
        )
    return _assemble(
        name or directory.resolve().name, splits, allow_unseen_tags=allow_unseen_tags, notes=notes
    )


def _line_locator(path: Path, lines: Sequence[Sequence[int]]) -> Locate:
    return lambda i, k: where(path, lines[i][k])


def _find_split_files(directory: Path) -> dict[str, Path]:
    present = {p.name: p for p in directory.iterdir() if p.is_file()}
    found: dict[str, Path] = {}
    for split in ("train", "dev", "test"):
        names = [_CONLL2003[split]] + [s + x for s in _STEMS[split] for x in _SUFFIXES]
        hits = [present[n] for n in names if n in present]
        if len(hits) > 1:
            raise DataError(
                f"{where(directory)}: several files could be the {split} split: "
                f"{sorted(p.name for p in hits)}; keep one"
            )
        if hits:
            found[split] = hits[0]
    missing = [s for s in ("train", "test") if s not in found]
    if missing:
        raise DataError(
            f"{where(directory)}: no {' or '.join(missing)} file; expected eng.train/"
            "eng.testa/eng.testb or train.txt/valid.txt (or dev.txt)/test.txt; "
            f"found {sorted(present) or 'no files'}"
        )
    return found


# ---------------------------------------------------------------- Hugging Face


def load_hf(
    dataset_id: str,
    task: str = "auto",
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> Corpus:
    """Downloads a Hugging Face dataset (parquet, no loading script) and
    converts it with :func:`from_hf_dataset`.

    Args:
      dataset_id: e.g. ``"eriktks/conll2003"`` or ``"eriktks/conll2000"``.
      task: ``"ner"``, ``"chunk"``, a tag field name, or ``"auto"``.
      revision, cache_dir: passed to ``datasets.load_dataset``.
      **options: passed to :func:`from_hf_dataset`.

    Raises:
      DataError: the dataset cannot be loaded; when offline the message says so.
    """
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"hf:{dataset_id} needs the Hugging Face datasets package: pip install 'jaxkd[hf]' (or pip install datasets)"
        ) from None

    try:
        loaded = datasets.load_dataset(dataset_id, revision=revision, cache_dir=cache_dir)
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as err:
        raise DataError(_hf_failure(dataset_id, err)) from err
    options.setdefault("name", dataset_id)
    return from_hf_dataset(loaded, task=task, **options)


def _hf_failure(dataset_id: str, err: BaseException) -> str:
    import datasets

    offline = bool(getattr(datasets.config, "HF_HUB_OFFLINE", False)) or any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    if offline:
        why = (
            "Hugging Face offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and "
            "the dataset is not in the local cache"
        )
    elif isinstance(err, ConnectionError):
        why = "the Hugging Face Hub could not be reached: this machine looks offline (no network)"
    else:
        why = "loading failed"
    return (
        f"cannot load Hugging Face dataset {dataset_id!r}: {why} "
        f"[{type(err).__name__}: {err}]. Without a network, use a local directory "
        "of CoNLL files or the offline corpus 'wnut16'"
    )


def from_hf_dataset(
    dataset: Mapping[str, Any],
    *,
    name: str,
    task: str = "auto",
    word_field: str = "tokens",
    scheme: str = "auto",
    dev_fraction: float = 0.1,
    allow_unseen_tags: bool = False,
) -> Corpus:
    """A corpus from a loaded ``datasets.DatasetDict`` (or a mapping of split
    name to ``datasets.Dataset``).

    Splits: ``train``; dev = ``validation``, ``valid`` or ``dev`` (else the last
    ``dev_fraction`` of train); ``test``. The tag feature is a sequence of
    ``ClassLabel`` (ids decoded with its ``names``) or of strings. Examples
    with no words, or only a ``-DOCSTART-`` token, are skipped.

    Args:
      dataset: the splits.
      name: corpus name (the dataset id).
      task: a tag field name, or ``X`` for the field ``X_tags`` (``"ner"``,
        ``"chunk"``); ``"auto"``: ``ner_tags`` if present, else ``chunk_tags``.
      word_field: the words' field.
      scheme, dev_fraction, allow_unseen_tags: as in :func:`from_conll_dir`.
    """
    available = list(dataset.keys())
    pick = {
        "train": [s for s in ("train",) if s in dataset],
        "dev": [s for s in ("validation", "valid", "dev") if s in dataset],
        "test": [s for s in ("test",) if s in dataset],
    }
    missing = [s for s in ("train", "test") if not pick[s]]
    if missing:
        raise DataError(f"{name}: no {' or '.join(missing)} split; splits are {available}")
    features = dataset[pick["train"][0]].features
    field = _tag_field(features, task, name)
    if word_field not in features:
        raise DataError(f"{name}: no word field {word_field!r}; fields are {list(features)}")
    decode = _tag_decoder(features[field], field, name)
    notes = [f"tags from field {field!r}"]
    splits: dict[str, tuple[list[Sentence], Locate]] = {}
    for split, keys in pick.items():
        if keys:
            splits[split] = _hf_split(
                dataset[keys[0]], name, keys[0], word_field, field, decode, scheme, notes
            )
    if "dev" not in splits:
        splits["train"], splits["dev"] = _dev_from_train(
            *splits["train"], dev_fraction, f"{name} (splits {available})", notes
        )
    return _assemble(name, splits, allow_unseen_tags=allow_unseen_tags, notes=notes)


def _tag_field(features: Mapping[str, Any], task: str, name: str) -> str:
    if task == "auto":
        for field in ("ner_tags", "chunk_tags"):
            if field in features:
                return field
        raise DataError(f"{name}: no 'ner_tags' or 'chunk_tags' field; fields are {list(features)}")
    field = task if task in features else f"{task}_tags"
    if field not in features:
        raise DataError(
            f"{name}: no tag field {field!r} (task={task!r}); fields are {list(features)}"
        )
    return field


def _tag_decoder(feature: Any, field: str, name: str) -> Callable[[Any], str]:
    """Tag value -> string, from a sequence-of-ClassLabel or -of-string feature."""
    from datasets import ClassLabel, Value

    inner = getattr(feature, "feature", None)  # datasets List / Sequence
    if isinstance(inner, ClassLabel):
        names = list(inner.names)
        return lambda value: names[value]
    if isinstance(inner, Value) and inner.dtype in ("string", "large_string"):
        return str
    raise DataError(
        f"{name}: field {field!r} is {feature}, not a sequence of ClassLabel or strings"
    )


def _hf_split(ds, name, split, word_field, field, decode, scheme, notes):
    where_ = lambda i, k: f"{name} split {split!r}, example {kept[i]}, word {k}"  # noqa: E731
    sentences: list[Sentence] = []
    kept: list[int] = []
    skipped = 0
    for index, (words, values) in enumerate(zip(ds[word_field], ds[field])):
        words = tuple(str(w) for w in words)
        if not words or words == (DOCSTART,):
            skipped += 1
            continue
        if len(words) != len(values):
            raise DataError(
                f"{name} split {split!r}, example {index}: {len(words)} words but "
                f"{len(values)} tags"
            )
        tags = tuple(decode(v) for v in values)
        for k, tag in enumerate(tags):
            try:
                split_tag(tag)
            except ValueError as err:
                raise DataError(
                    f"{name} split {split!r}, example {index}, word {k}: {err}"
                ) from None
        sentences.append(Sentence(words, tags))
        kept.append(index)
    if not sentences:
        raise DataError(f"{name} split {split!r}: no sentences")
    if skipped:
        notes.append(f"{split}: skipped {skipped} empty or {DOCSTART} example(s)")
    sentences, _, retagged = normalise_scheme(sentences, scheme, where_)
    if retagged:
        notes.append(f"{split}: IOB1 tags converted to IOB2 ({retagged} tags changed)")
    return sentences, where_


# ---------------------------------------------------------------- WNUT-16 tweets


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
        from jaxkd.offline import wnut16_path

        path = wnut16_path()
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
            _line_locator(parsed.path, [parsed.lines[i] for i in idx]),
        )
        for split, idx in parts.items()
    }
    notes = [
        f"{parsed.path.name}: {n} sentences split by seeded hash (seed {seed}) into "
        f"{len(parts['train'])}/{len(parts['dev'])}/{len(parts['test'])} train/dev/test"
    ]
    if parsed.retagged:
        notes.append(f"IOB1 tags converted to IOB2 ({parsed.retagged} tags changed)")
    return _assemble("wnut16", splits, allow_unseen_tags=allow_unseen_tags, notes=notes)


# ---------------------------------------------------------------- dispatcher


def load_corpus(spec: str | Path, **options: Any) -> Corpus:
    """Loads a corpus from a spec string.

    * ``"wnut16"`` -> :func:`wnut16`
    * ``"hf:<dataset id>"`` (e.g. ``"hf:eriktks/conll2003"``) -> :func:`load_hf`
    * a directory path -> :func:`from_conll_dir`

    ``options`` go to the chosen function.
    """
    text = str(spec)
    if text == "wnut16":
        return wnut16(**options)
    if text.startswith("hf:"):
        return load_hf(text[3:], **options)
    if Path(text).is_dir():
        return from_conll_dir(text, **options)
    raise DataError(
        f"unknown corpus {text!r}: expected 'wnut16', 'hf:<dataset id>' "
        "(e.g. 'hf:eriktks/conll2003') or an existing directory of CoNLL files"
    )
