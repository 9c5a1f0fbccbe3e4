"""BERT-CRF tagger: encoder -> first sub-word of each word -> dropout -> linear
emissions, plus the CRF's transition, start and end scores.

The CRF runs over words, not sub-words: ``batch.word_index`` picks the first
sub-word of every word, so no ``X``/``[CLS]``/``[SEP]`` pseudo-labels exist.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxkd import crf, losses
from jaxkd.crf import Constraints, CRFScores
from jaxkd.models.bert import BertModel
from jaxkd.models.dropout import Dropout

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # model.dtype: the encoder's compute dtype


class Fixed(nnx.Variable):
    """State that travels with the model but is never trained (constraints)."""


def word_features(encoder: BertModel, batch):
    """``[B, W, H]`` float32: ``encoder``'s hidden state at each word's first
    sub-word (``batch``: a :class:`jaxkd.data.Batch`), what every head reads."""
    return encoder(batch.input_ids, batch.attention_mask, batch.token_type_ids, positions=batch.word_index)


class Tagger(nnx.Module):
    """A linear-chain CRF tagger on top of a BERT encoder (``model.head =
    "crf"``; :class:`~jaxkd.models.softmax_tagger.SoftmaxTagger` is the
    per-word softmax head).

    Args:
      encoder: a :class:`~jaxkd.models.bert.BertModel` (loaded or random).
      num_tags: N, the number of tags.
      dropout: dropout rate before the emission layer (the paper uses 0.3).
      constraints: optional allowed moves, honoured by decoding and every loss
        that runs the CRF.
      rngs: initialises the emission layer and seeds dropout.
    """

    head_kind = "crf"  # model.head

    def __init__(
        self,
        encoder: BertModel,
        num_tags: int,
        *,
        dropout: float = 0.3,
        constraints: Constraints | None = None,
        rngs: nnx.Rngs,
    ):
        self.encoder = encoder
        self.num_tags = num_tags
        self.dropout = Dropout(dropout)  # keys from the encoder's dropout stream
        self.head = nnx.Linear(encoder.hidden_size, num_tags, rngs=rngs)
        self.transitions = nnx.Param(jnp.zeros((num_tags, num_tags), jnp.float32))
        self.start = nnx.Param(jnp.zeros((num_tags,), jnp.float32))
        self.end = nnx.Param(jnp.zeros((num_tags,), jnp.float32))
        self.constrained = constraints is not None
        if constraints is None:
            constraints = Constraints.none(num_tags)
        self.allowed_transitions = Fixed(jnp.asarray(constraints.transitions, bool))
        self.allowed_start = Fixed(jnp.asarray(constraints.start, bool))
        self.allowed_end = Fixed(jnp.asarray(constraints.end, bool))

    def set_allowed(self, constraints: Constraints) -> None:
        """Sets the allowed moves: transitions ``[N, N]``, start and end ``[N]``
        (bool), e.g. into a tagger built abstract by ``nnx.eval_shape``."""
        self.allowed_transitions.set_value(jnp.asarray(constraints.transitions, bool))
        self.allowed_start.set_value(jnp.asarray(constraints.start, bool))
        self.allowed_end.set_value(jnp.asarray(constraints.end, bool))

    @property
    def constraints(self) -> Constraints | None:
        """The allowed moves, or None when the tagger is unconstrained."""
        if not self.constrained:
            return None
        return Constraints(
            self.allowed_transitions.get_value(), self.allowed_start.get_value(), self.allowed_end.get_value()
        )

    def word_features(self, batch):
        """The encoder's hidden state at each word's first sub-word.

        Args:
          batch: a :class:`jaxkd.data.Batch` (input_ids, attention_mask,
            token_type_ids [B, T]; word_index [B, W]).

        Returns:
          [B, W, H] float32 (what the emission layer reads, before dropout).
        """
        return word_features(self.encoder, batch)

    def __call__(self, batch) -> CRFScores:
        """Word-level CRF scores of a batch.

        Args:
          batch: a :class:`jaxkd.data.Batch` (input_ids, attention_mask,
            token_type_ids [B, T]; word_index [B, W]).

        Returns:
          CRFScores with emissions [B, W, N] float32 and the CRF parameters.
        """
        emissions = self.head(self.dropout(self.word_features(batch), rngs=self.encoder.dropout_rngs))
        return CRFScores(emissions, self.transitions.get_value(), self.start.get_value(), self.end.get_value())

    # What training, labelling and the teacher ask of every head (the span
    # head, jaxkd.models.span_tagger, answers the same three).

    def gold_loss(self, scores: CRFScores, batch, *, algorithm: str = "sequential"):
        """``[B]``: the loss of the batch's gold tags (the CRF's NLL)."""
        return losses.nll(scores, batch.word_mask, batch.tags, constraints=self.constraints, algorithm=algorithm)

    def decode(self, scores: CRFScores, mask):
        """``[B, W]`` int32: the best (allowed) tag sequence, by Viterbi."""
        tags, _ = crf.viterbi(scores.emissions, mask, *scores.crf_args(), constraints=self.constraints)
        return tags

    def tag_marginals(self, scores: CRFScores, mask, *, temperature: float = 1.0):
        """Unary ``[B, W, N]`` and pairwise ``[B, W, N, N]`` tag marginals."""
        return losses.teacher_marginals(scores, mask, temperature=temperature, constraints=self.constraints)
