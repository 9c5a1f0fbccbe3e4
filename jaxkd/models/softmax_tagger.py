"""Token-level softmax tagger: encoder -> first sub-word of each word ->
dropout -> linear -> a softmax over the tags of each word, independently.

It is the CRF tagger with its transition, start and end scores fixed at zero
(state, not parameters): the same interfaces (``__call__`` gives
:class:`~jaxkd.crf.CRFScores`), and the CRF's algorithms then give the
softmax's own quantities. Over the words of a sentence the zero-transition
chain factorises: its marginals are the per-word softmaxes, its pair
marginals their products (Structural KD's scenario 3), its k-best paths the
k most probable tag sequences, and its Viterbi path the per-word argmax.
With ``constraints`` (BIO), decoding is the most probable *valid* sequence
under the per-word softmaxes (the repair of a stray ``I-X``), and as a
teacher its distributions are those over valid sequences. Training uses the
token cross-entropy (:func:`jaxkd.losses.token_nll`), never the chain's
normaliser.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxkd import losses
from jaxkd.crf import Constraints
from jaxkd.models.bert import BertModel
from jaxkd.models.tagger import Fixed, Tagger


class SoftmaxTagger(Tagger):
    """A per-word softmax tagger on top of a BERT encoder (arguments as
    :class:`~jaxkd.models.tagger.Tagger`)."""

    head_kind = "softmax"

    def __init__(
        self,
        encoder: BertModel,
        num_tags: int,
        *,
        dropout: float = 0.3,
        constraints: Constraints | None = None,
        rngs: nnx.Rngs,
    ):
        super().__init__(encoder, num_tags, dropout=dropout, constraints=constraints, rngs=rngs)
        self.transitions = Fixed(jnp.zeros((num_tags, num_tags), jnp.float32))
        self.start = Fixed(jnp.zeros((num_tags,), jnp.float32))
        self.end = Fixed(jnp.zeros((num_tags,), jnp.float32))

    def gold_loss(self, scores, batch, *, algorithm: str = "sequential"):
        """``[B]``: the token cross-entropy of the gold tags."""
        return losses.token_nll(scores.emissions, batch.word_mask, batch.tags)
