"""Data pipeline: sources -> sentences -> sub-word rows -> static-shape batches.

* :mod:`~jaxkd.data.conll` - CoNLL column files -> :class:`Sentence` s (IOB2);
  the one reader of CoNLL columns.
* :mod:`~jaxkd.data.scheme` - the one tag parser, IOB1 -> IOB2, the allowed
  CRF moves of a label set.
* :mod:`~jaxkd.data.labels` - :class:`LabelVocab`.
* :mod:`~jaxkd.data.corpus` - :class:`Corpus` and the policies every source
  applies (dev split from train, labels from train, unseen tags).
* :mod:`~jaxkd.data.sources` - a :class:`Corpus` from a CoNLL directory or the
  offline WNUT-16 tweets; :func:`load_corpus`.
* :mod:`~jaxkd.data.hf` - a :class:`Corpus` from a Hugging Face dataset.
* :mod:`~jaxkd.data.tokenization` - :class:`SubwordEncoder`: first sub-word
  per word, windows for long sentences.
* :mod:`~jaxkd.data.batching` - :class:`Batch`, :class:`Buckets`,
  :func:`make_batches`, :func:`stitch`.
* :mod:`~jaxkd.data.pipeline` - :func:`encode_corpus` ties them together.
"""

from jaxkd.data.batching import Batch, Buckets, make_batches, stitch
from jaxkd.data.conll import ConllFile, Sentence, parse_conll, read_conll
from jaxkd.data.corpus import Corpus
from jaxkd.data.errors import DataError
from jaxkd.data.hf import from_hf_dataset, load_hf
from jaxkd.data.labels import LabelVocab
from jaxkd.data.pipeline import EncodedCorpus, encode_corpus
from jaxkd.data.scheme import iob1_to_iob2
from jaxkd.data.sources import from_conll_dir, load_corpus, wnut16
from jaxkd.data.tokenization import Row, SubwordEncoder, load_tokenizer, wordpiece_tokenizer

__all__ = [
    "Batch",
    "Buckets",
    "ConllFile",
    "Corpus",
    "DataError",
    "EncodedCorpus",
    "LabelVocab",
    "Row",
    "Sentence",
    "SubwordEncoder",
    "encode_corpus",
    "from_conll_dir",
    "from_hf_dataset",
    "iob1_to_iob2",
    "load_corpus",
    "load_hf",
    "load_tokenizer",
    "make_batches",
    "parse_conll",
    "read_conll",
    "stitch",
    "wnut16",
    "wordpiece_tokenizer",
]
