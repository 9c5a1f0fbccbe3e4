"""A corpus encoded for one checkpoint: rows of every split, shared buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from jaxkd.data.batching import Batch, Buckets, make_batches, stitch
from jaxkd.data.corpus import Corpus
from jaxkd.data.tokenization import Row, SubwordEncoder


@dataclass(frozen=True)
class EncodedCorpus:
    """Rows of each split of ``corpus`` and one :class:`Buckets` for all.

    Attributes:
      corpus: the sentences and labels.
      encoder: the tokeniser used.
      rows: ``{"train": [...], "dev": [...], "test": [...]}``, plus
        ``"unlabeled"`` when unlabelled sentences were given (their tags are 0).
      buckets: fitted on the rows of all splits, so all splits share shapes.
    """

    corpus: Corpus
    encoder: SubwordEncoder
    rows: dict[str, list[Row]]
    buckets: Buckets

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool | None = None,
        seed: int = 0,
        epoch: int = 0,
    ) -> list[Batch]:
        """Batches of a split; shuffled (by ``seed``, ``epoch``) by default only
        for ``"train"``."""
        return make_batches(
            self.rows[split],
            self.buckets,
            batch_size,
            shuffle=split == "train" if shuffle is None else shuffle,
            seed=seed,
            epoch=epoch,
            pad_id=self.encoder.pad_id,
            filler_ids=self.encoder.filler_ids,
        )

    def stitch(
        self, split: str, batches: Iterable[Batch], values: Iterable[np.ndarray]
    ) -> list[np.ndarray]:
        """Per-word outputs of a split's batches, back in sentence order
        (:func:`jaxkd.data.batching.stitch`)."""
        lengths = [len(s.words) for s in self.corpus.splits[split]]
        return stitch(batches, values, lengths)


def encode_corpus(
    corpus: Corpus,
    encoder: SubwordEncoder,
    *,
    min_length: int = 16,
    word_multiple: int = 8,
    unlabeled: Sequence[Sequence[str]] = (),
) -> EncodedCorpus:
    """Encodes every split. Train tags must be in the vocabulary (they built
    it); dev/test tags outside it were allowed when the corpus was loaded
    (``allow_unseen_tags``) and are encoded as ``O``. ``unlabeled`` sentences
    (word sequences) become the rows of ``"unlabeled"``, batched in the same
    shapes."""
    rows = {
        split: encoder.encode(sentences, corpus.labels, allow_unseen_tags=split != "train")
        for split, sentences in corpus.splits.items()
    }
    if unlabeled:
        rows["unlabeled"] = encoder.encode(list(unlabeled))
    buckets = Buckets.fit(
        (r for split_rows in rows.values() for r in split_rows),
        encoder.window,
        min_length=min_length,
        word_multiple=word_multiple,
    )
    return EncodedCorpus(corpus, encoder, rows, buckets)
