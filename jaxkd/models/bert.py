"""A BERT encoder as a Flax NNX module, numerically equal to Hugging Face's.

The module tree mirrors the Hugging Face ``BertModel`` so that a checkpoint maps
onto it one tensor at a time (see :mod:`jaxkd.models.bert_weights`)::

    BertModel
      embeddings: BertEmbeddings   word / position / token-type tables, LayerNorm
      layers[i]:  BertLayer        self-attention block, then feed-forward block

Numerics follow the original BERT exactly: exact (erf) GELU unless the config
asks for the tanh approximation, LayerNorm epsilon from the config, padded keys
excluded from attention with the most negative finite float32 (what Hugging
Face adds), and the softmax always in float32.

Two ways in:

* :func:`load_bert` reads a checkpoint directory or a hub name (weights copied
  in, dropout off);
* ``BertModel(config, rngs=nnx.Rngs(0))`` builds a randomly initialised model
  (tests, students trained from scratch).

Dropout follows the usual NNX switches: ``model.train()`` turns it on (drawing
keys from the model's own ``'dropout'`` stream), ``model.eval()`` turns it off.
Both constructors return a model in eval mode.

The config lives in :mod:`jaxkd.models.bert_config` and the blocks in
:mod:`jaxkd.models.bert_layers`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd.models.bert_config import ACTIVATIONS, BertConfig
from jaxkd.models.bert_layers import BertEmbeddings, BertLayer, BertSelfAttention, gather_rows
from jaxkd.models.bert_weights import assign_weights, check_concrete, config_file, read_weights, resolve_checkpoint

__all__ = [
    "ACTIVATIONS",
    "BertConfig",
    "BertEmbeddings",
    "BertLayer",
    "BertModel",
    "BertSelfAttention",
    "load_bert",
]


class BertModel(nnx.Module):
    """BERT encoder returning the last hidden state (no pooler, no heads).

    Args:
      config: the architecture; ``config.num_hidden_layers`` layers are built.
      rngs: initialises the parameters (``'params'`` stream, else ``'default'``)
        and seeds dropout (``'dropout'`` stream, else ``'default'``).
      dtype: operand dtype of the dense products. ``jnp.bfloat16`` multiplies
        bf16-rounded operands with float32 accumulation, forward and backward
        (:func:`jaxkd.models.ops.dense`); embeddings, LayerNorm, attention,
        GELU and the residual stream stay float32, as does the output.
      param_dtype: dtype of the parameters (float32 by default).

    The model starts in eval mode (dropout off); ``model.train()`` turns
    dropout on, ``model.eval()`` off again.
    """

    def __init__(
        self, config: BertConfig, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32
    ):
        self.config = config
        self.dtype = dtype
        self.embeddings = BertEmbeddings(config, param_dtype=param_dtype, rngs=rngs)
        self.layers = nnx.List(
            [
                BertLayer(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
                for _ in range(config.num_hidden_layers)
            ]
        )
        # One stream feeds every dropout layer; it lives in the model's state so
        # that nnx.jit / nnx.split carry its counter along.
        self.dropout_rngs = rngs["dropout"].fork()

    @property
    def hidden_size(self) -> int:
        """H, the width of the returned hidden states."""
        return self.config.hidden_size

    @property
    def num_layers(self) -> int:
        """Number of transformer layers in this model."""
        return len(self.layers)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        positions: jax.Array | None = None,
    ) -> jax.Array:
        """Encodes a batch.

        Args:
          input_ids: [B, T] int token ids.
          attention_mask: [B, T] int or bool, nonzero on real tokens (None: all real).
          token_type_ids: [B, T] int segment ids (None: all zeros).
          positions: optional [B, P] int: return only these rows of the last
            hidden state. The last layer then computes its queries, feed-forward
            and normalisation for these rows alone (the same values as the
            full output's rows, with less work).

        Returns:
          [B, T, H] float32 last hidden state ([B, P, H] with ``positions``).
          Rows at padded positions hold unspecified finite values.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {input_ids.shape}")
        if attention_mask is None:
            key_mask = jnp.ones(input_ids.shape, dtype=bool)
        else:
            key_mask = jnp.asarray(attention_mask).astype(bool)
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids, self.dropout_rngs)
        if not len(self.layers):
            return x if positions is None else gather_rows(x, positions)
        for layer in self.layers[:-1]:
            x = layer(x, key_mask, self.dropout_rngs)
        return self.layers[-1](x, key_mask, self.dropout_rngs, positions)


def load_bert(
    path_or_name: str | Path,
    num_layers: int | None = None,
    *,
    dtype=jnp.float32,
    rngs: nnx.Rngs | None = None,
) -> BertModel:
    """Loads a Hugging Face BERT checkpoint into a :class:`BertModel` (eval mode).

    Args:
      path_or_name: a directory holding ``config.json`` and ``model.safetensors``
        (or a sharded ``model.safetensors.index.json``), or a hub name such as
        ``"bert-base-cased"`` resolved through ``huggingface_hub`` (its local
        cache works offline).
      num_layers: keep the embeddings and only the first ``num_layers`` encoder
        layers (student initialisation); ``None`` keeps all.
      dtype: compute dtype (``jnp.bfloat16`` for bf16 compute); parameters are
        always float32.
      rngs: seeds dropout (``'dropout'`` or ``'default'`` stream) for
        ``model.train()``; default ``nnx.Rngs(0)``.

    Returns:
      The model, whose ``config.num_hidden_layers`` is the number of layers kept.

    Raises:
      CheckpointNotFoundError: no such directory, and the hub name cannot be had.
      CheckpointFormatError: only a pickled PyTorch file, or no config/weights.
      CheckpointKeysError: missing, unexpected or mis-shaped tensors (named).
      ValueError: ``num_layers`` out of range, unsupported config.
    """
    directory = resolve_checkpoint(path_or_name)
    config = BertConfig.from_json_file(config_file(directory))
    available = config.num_hidden_layers
    if num_layers is not None:
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int or None, got {num_layers!r}")
        if num_layers > available:
            raise ValueError(
                f"num_layers={num_layers} but the checkpoint {directory} has only "
                f"{available} layers"
            )
        config = config.replace(num_hidden_layers=num_layers)
    return bert_from_weights(config, read_weights(directory), checkpoint_layers=available, dtype=dtype, rngs=rngs,
                             source=directory)


def bert_from_weights(
    config: BertConfig,
    weights: Mapping,
    *,
    checkpoint_layers: int,
    dtype=jnp.float32,
    rngs: nnx.Rngs | None = None,
    source="checkpoint",
) -> BertModel:
    """A :class:`BertModel` of ``config`` (eval mode) filled from ``weights``,
    Hugging Face tensors by name (e.g. a :class:`~jaxkd.models.bert_weights.SafetensorsReader`)
    of a checkpoint with ``checkpoint_layers`` layers (``source`` names it in errors)."""
    rngs = nnx.Rngs(0) if rngs is None else rngs
    # Build the module without computing a random initialisation, then fill it.
    model = nnx.eval_shape(lambda: BertModel(config, rngs=nnx.Rngs(0), dtype=dtype))
    assign_weights(model, weights, checkpoint_layers=checkpoint_layers, source=source)
    model.dropout_rngs = rngs["dropout"].fork()
    check_concrete(model)
    model.eval()
    return model
