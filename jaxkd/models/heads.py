"""The heads a tagger can have (``model.head``) and building a tagger of any of them.

* ``"crf"``: :class:`~jaxkd.models.tagger.Tagger`, a linear-chain CRF over the words;
* ``"softmax"``: :class:`~jaxkd.models.softmax_tagger.SoftmaxTagger`, a softmax per word;
* ``"span"``: :class:`~jaxkd.models.span_tagger.SpanTagger`, a biaffine span classifier.

:data:`UNSUPPORTED` says, in one place, which tool cannot take which head and why.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd.crf import Constraints
from jaxkd.models.bert import BertConfig, BertModel, load_bert
from jaxkd.models.softmax_tagger import SoftmaxTagger
from jaxkd.models.span_tagger import SpanTagger
from jaxkd.models.tagger import DTYPES, Fixed, Tagger

HEADS = ("crf", "softmax", "span")  # model.head
_CLASSES = {"crf": Tagger, "softmax": SoftmaxTagger, "span": SpanTagger}

# (head, use) -> why that use cannot take a tagger of that head.
UNSUPPORTED = {
    ("span", "hf"): (
        "a span head (model.head = 'span') is a biaffine span scorer, which transformers' token classifier "
        "cannot hold; use --format jax, whose compiled function includes its greedy span decoding"
    ),
    (
        "span",
        "crf scores",
    ): "a span tagger (model.head = 'span') scores spans, not tags: it has no CRF scores to inspect",
    ("span", "token tags"): (
        "a span head (model.head = 'span') labels chunks, and tags that are not chunks (parts of speech, "
        "data.scheme = 'token') have none: every word needs its own tag; use model.head = 'crf' or 'softmax'"
    ),
}


def unsupported(head: str, use: str) -> str | None:
    """Why ``use`` ("hf": the Hugging Face export; "crf scores": inspecting
    the CRF's scores) cannot take a tagger of ``head``; None when it can."""
    return UNSUPPORTED.get((head, use))


def tagger_class(head: str) -> type:
    """The model of a ``model.head``."""
    if head not in _CLASSES:
        raise ValueError(f"model.head must be one of {', '.join(HEADS)}; got {head!r}")
    return _CLASSES[head]


def make_tagger(head: str, encoder, labels, *, dropout: float, constrained: bool, rngs: nnx.Rngs):
    """The tagger of ``model.head`` on ``encoder`` (a
    :class:`~jaxkd.models.bert.BertModel`) for the tags of ``labels`` (a
    :class:`~jaxkd.data.labels.LabelVocab`), with fresh head weights."""
    cls = tagger_class(head)
    if head == "span":  # its labels are the vocabulary's types; its decoding is always valid BIO
        return cls(encoder, labels, dropout=dropout, rngs=rngs)
    constraints = labels.constraints() if constrained else None
    return cls(encoder, len(labels), dropout=dropout, constraints=constraints, rngs=rngs)


def build_tagger(
    encoder_path: str | Path,
    labels,
    *,
    num_layers: int | None,
    dropout: float,
    constrained: bool,
    dtype: str,
    seed: int,
    head: str = "crf",
):
    """A tagger whose encoder is loaded from a pre-trained checkpoint (its first
    ``num_layers`` layers) and whose head is fresh (``labels``: a
    :class:`~jaxkd.data.labels.LabelVocab`)."""
    if dtype not in DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    encoder = load_bert(encoder_path, num_layers=num_layers, dtype=DTYPES[dtype], rngs=nnx.Rngs(seed))
    return make_tagger(head, encoder, labels, dropout=dropout, constrained=constrained, rngs=nnx.Rngs(seed + 1))


def abstract_tagger(encoder_config: BertConfig, labels, *, head: str, dropout: float, constrained: bool, dtype: str):
    """The tagger of a saved description with uninitialised weights (abstract
    arrays, to be filled from a checkpoint) but real fixed state: the allowed
    moves of ``labels`` (when ``constrained``) and a softmax head's zero
    transition scores."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")

    def make():
        encoder = BertModel(encoder_config, rngs=nnx.Rngs(0), dtype=DTYPES[dtype])
        return make_tagger(head, encoder, labels, dropout=dropout, constrained=constrained, rngs=nnx.Rngs(1))

    model = nnx.eval_shape(make)
    for _, variable in nnx.iter_graph(model):
        if isinstance(variable, Fixed) and isinstance(variable.get_value(), jax.ShapeDtypeStruct):
            variable.set_value(jnp.zeros(variable.get_value().shape, variable.get_value().dtype))
    if isinstance(model, Tagger):  # the span head has no allowed moves
        model.set_allowed(labels.constraints() if constrained else Constraints.none(len(labels)))
    model.encoder.dropout_rngs = nnx.Rngs(0)["dropout"].fork()
    return model
