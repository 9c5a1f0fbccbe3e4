"""Corpora from Hugging Face datasets (the optional ``datasets`` package).

:func:`load_hf` downloads a dataset id (parquet, e.g. ``eriktks/conll2003``);
:func:`from_hf_dataset` converts an already loaded ``DatasetDict``. The
policies of :mod:`jaxkd.data.corpus` apply. ``datasets`` is imported only
when one of them runs: it is an optional dependency (``pip install
'jaxkd[hf]'``), and a slow import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from jaxkd.data.conll import DOCSTART, Sentence, normalise_scheme
from jaxkd.data.corpus import Corpus, Locate, assemble, dev_from_train
from jaxkd.data.errors import DataError
from jaxkd.data.scheme import TOKEN, split_tag


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
            f"hf:{dataset_id} needs the Hugging Face datasets package: "
            "pip install 'jaxkd[hf]' (or pip install datasets)"
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
        ``"chunk"``, ``"pos"`` with ``scheme="token"``); ``"auto"``:
        ``ner_tags`` if present, else ``chunk_tags``.
      word_field: the words' field.
      scheme, dev_fraction, allow_unseen_tags: as in
        :func:`jaxkd.data.sources.from_conll_dir`.
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
        splits["train"], splits["dev"] = dev_from_train(
            *splits["train"], dev_fraction, f"{name} (splits {available})", notes
        )
    return assemble(name, splits, allow_unseen_tags=allow_unseen_tags, notes=notes,
                    scheme=TOKEN if scheme == TOKEN else "IOB2")


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
                if scheme != TOKEN:
                    split_tag(tag)
                elif not tag.strip():
                    raise ValueError(f"empty tag {tag!r}")
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
    if scheme == TOKEN:
        return sentences, where_
    sentences, _, retagged = normalise_scheme(sentences, scheme, where_)
    if retagged:
        notes.append(f"{split}: IOB1 tags converted to IOB2 ({retagged} tags changed)")
    return sentences, where_
