"""Span-based tagger: encoder -> first sub-word of each word -> dropout ->
a biaffine scorer over every (start word, end word) pair, giving each span
i..j (i <= j) a distribution over "no entity" and the C entity types (Yu et
al. 2020's biaffine NER, over word features).

It is trained with the cross-entropy of every span's gold label
(:func:`jaxkd.losses.span_nll`) and decodes by accepting spans greedily,
best first, skipping those that overlap an accepted one
(:func:`jaxkd.crf.spans.greedy_decode`); the result is written as BIO tags,
so evaluation, labelling and export read it like any tagger's output. As a
teacher it gives a token-level student the per-word (and adjacent-pair) BIO
marginals of its span distribution conditioned on non-overlap, by an exact
dynamic programme (:func:`jaxkd.crf.spans.tag_marginals`; Structural KD's
scenario 4).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd import losses
from jaxkd.crf import spans
from jaxkd.losses import EXACT
from jaxkd.models.bert import BertModel
from jaxkd.models.dropout import Dropout
from jaxkd.models.tagger import word_features

SPAN_DIM = 128  # the width of the start and end projections


class SpanScores(NamedTuple):
    """logits: [B, W, W, C + 1] float32, the label scores of span i..j at
    ``[b, i, j]`` (label 0 "no entity", label c + 1 type c; entries with
    j < i or past the sentence are not used)."""

    logits: Any

    def log_odds(self, temperature: float = 1.0):
        """``[B, W, W, C]``: ``log p(c | i..j) - log p(none | i..j)`` at a
        temperature, the scores of :mod:`jaxkd.crf.spans`'s distribution."""
        logits = jnp.asarray(self.logits, jnp.float32) / temperature
        return logits[..., 1:] - logits[..., :1]


class SpanTagger(nnx.Module):
    """A biaffine span classifier on top of a BERT encoder (``model.head =
    "span"``).

    Args:
      encoder: a :class:`~jaxkd.models.bert.BertModel`.
      labels: the BIO :class:`~jaxkd.data.labels.LabelVocab` whose types are
        the span labels (tags are what it decodes to).
      dropout: dropout rate on the word features.
      rngs: initialises the projections and seeds dropout.
      width: the size D of the start and end projections.
    """

    head_kind = "span"
    constrained = False  # its decoding always spells valid BIO
    constraints = None

    def __init__(self, encoder: BertModel, labels, *, dropout: float = 0.3, rngs: nnx.Rngs, width: int = SPAN_DIM):
        bio = spans.BIOTags.of(labels)
        self.encoder = encoder
        self.num_tags = bio.num_tags
        # Plain ints: static, part of the graph definition.
        self.tag_outside, self.tag_begin, self.tag_inside = bio.outside, bio.begin, bio.inside
        self.dropout = Dropout(dropout)
        self.start_proj = nnx.Linear(encoder.hidden_size, width, rngs=rngs)
        self.end_proj = nnx.Linear(encoder.hidden_size, width, rngs=rngs)
        # [C + 1, D + 1, D + 1]: with a constant 1 appended to both projections
        # this holds the bilinear term, each side's linear term and the bias.
        self.biaffine = nnx.Param(jnp.zeros((len(bio.begin) + 1, width + 1, width + 1), jnp.float32))

    @property
    def bio(self) -> spans.BIOTags:
        return spans.BIOTags(self.num_tags, self.tag_outside, self.tag_begin, self.tag_inside)

    def __call__(self, batch) -> SpanScores:
        """Span label scores of a batch (a :class:`jaxkd.data.Batch`)."""
        h = self.dropout(word_features(self.encoder, batch), rngs=self.encoder.dropout_rngs)

        def side(layer):
            x = jax.nn.gelu(layer(h), approximate=False)
            return jnp.concatenate([x, jnp.ones_like(x[..., :1])], axis=-1)  # [B, W, D + 1]

        left = jnp.einsum("bid,cde->bice", side(self.start_proj), self.biaffine.get_value(), precision=EXACT)
        return SpanScores(jnp.einsum("bice,bje->bijc", left, side(self.end_proj), precision=EXACT))

    def gold_loss(self, scores: SpanScores, batch, *, algorithm: str = "sequential"):
        """``[B]``: the span cross-entropy of the batch's gold chunks."""
        mask = batch.word_mask
        return losses.span_nll(scores.logits, mask, spans.gold_spans(batch.tags, mask, self.bio))

    def decode(self, scores: SpanScores, mask):
        """``[B, W]`` int32 BIO tags of the greedily accepted spans."""
        return spans.greedy_decode(scores.logits, mask, self.bio)

    def tag_marginals(self, scores: SpanScores, mask, *, temperature: float = 1.0):
        """The BIO marginals of the span distribution conditioned on
        non-overlap: unary ``[B, W, N]`` and pairwise ``[B, W, N, N]``."""
        lengths = jnp.asarray(mask, bool).sum(-1)
        outside = jnp.zeros(scores.logits.shape[:2], jnp.float32)
        return spans.tag_marginals(scores.log_odds(temperature), outside, lengths, self.bio)
