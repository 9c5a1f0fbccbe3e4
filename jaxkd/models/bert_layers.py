"""The blocks of the BERT encoder (see :mod:`jaxkd.models.bert`): the
embeddings, the self-attention block and the transformer layer, with their
parameters laid out as Hugging Face's so that a checkpoint maps onto them one
tensor at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd.models.bert_config import ACTIVATIONS, BertConfig
from jaxkd.models.dropout import Dropout
from jaxkd.models.ops import attention, dense

__all__ = ["BertEmbeddings", "BertLayer", "BertSelfAttention", "gather_rows"]


def _dense(n_in: int, n_out: int, config: BertConfig, param_dtype, rngs: nnx.Rngs):
    """A parameter holder (kernel [in, out], bias [out]) applied with :func:`jaxkd.models.ops.dense`."""
    return nnx.Linear(
        n_in,
        n_out,
        dtype=jnp.float32,
        param_dtype=param_dtype,
        kernel_init=nnx.initializers.normal(config.initializer_range),
        bias_init=nnx.initializers.zeros,
        rngs=rngs,
    )


def _layer_norm(config: BertConfig, param_dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(
        config.hidden_size,
        epsilon=config.layer_norm_eps,
        dtype=jnp.float32,
        param_dtype=param_dtype,
        rngs=rngs,
    )


class BertEmbeddings(nnx.Module):
    """Sum of word, position and token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig, *, param_dtype, rngs: nnx.Rngs):
        init = nnx.initializers.normal(config.initializer_range)

        def table(rows: int) -> nnx.Embed:
            return nnx.Embed(
                rows,
                config.hidden_size,
                dtype=jnp.float32,
                param_dtype=param_dtype,
                embedding_init=init,
                rngs=rngs,
            )

        self.max_positions = config.max_position_embeddings
        self.word_embeddings = table(config.vocab_size)
        self.position_embeddings = table(config.max_position_embeddings)
        self.token_type_embeddings = table(config.type_vocab_size)
        self.layer_norm = _layer_norm(config, param_dtype, rngs)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(
        self, input_ids: jax.Array, token_type_ids: jax.Array, dropout_rngs: nnx.RngStream
    ) -> jax.Array:
        """input_ids, token_type_ids: [B, T] int -> embeddings [B, T, H] float32."""
        length = input_ids.shape[1]
        if length > self.max_positions:
            raise ValueError(
                f"sequence length {length} exceeds max_position_embeddings={self.max_positions}"
            )
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(jnp.arange(length))[None]
        return self.dropout(self.layer_norm(x), rngs=dropout_rngs)


def _apply(linear: nnx.Linear, x: jax.Array, dtype) -> jax.Array:
    return dense(x, linear.kernel.get_value(), linear.bias.get_value(), dtype)


def gather_rows(x: jax.Array, positions: jax.Array) -> jax.Array:
    """x: [B, T, H], positions: [B, P] int -> [B, P, H]."""
    return jnp.take_along_axis(x, positions[..., None].astype(jnp.int32), axis=1)


class BertSelfAttention(nnx.Module):
    """Multi-head self-attention with its output projection, residual and LayerNorm
    (Hugging Face's ``BertAttention``)."""

    def __init__(self, config: BertConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.dtype = dtype
        self.query = _dense(hidden, hidden, config, param_dtype, rngs)
        self.key = _dense(hidden, hidden, config, param_dtype, rngs)
        self.value = _dense(hidden, hidden, config, param_dtype, rngs)
        self.output = _dense(hidden, hidden, config, param_dtype, rngs)
        self.layer_norm = _layer_norm(config, param_dtype, rngs)
        self.attention_dropout = Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = Dropout(config.hidden_dropout_prob)

    def _project(self, x: jax.Array, parts) -> list[jax.Array]:
        """x: [B, T, H] -> one [B, T, heads, d] array per projection in ``parts``.

        One product per projection: a single product against the concatenated
        kernels copies them (1.7 MB per layer for MiniLM) in every call, and
        on a CPU was 3% slower to label with and no faster to train."""
        shape = x.shape[:2] + (self.num_heads, self.head_dim)
        return [_apply(p, x, self.dtype).reshape(shape) for p in parts]

    def __call__(
        self,
        x: jax.Array,
        key_mask: jax.Array,
        dropout_rngs: nnx.RngStream,
        query_positions: jax.Array | None = None,
    ) -> jax.Array:
        """x: [B, T, H]; key_mask: [B, T] bool (True = attend); query_positions:
        optional [B, P] int, the rows to compute (all T when None) ->
        [B, T or P, H]."""
        if query_positions is None:
            q, k, v = self._project(x, (self.query, self.key, self.value))
        else:
            k, v = self._project(x, (self.key, self.value))
            x = gather_rows(x, query_positions)
            (q,) = self._project(x, (self.query,))
        drop = self.attention_dropout
        keep = drop.mask(q.shape[:1] + (self.num_heads, q.shape[1], k.shape[1]), dropout_rngs)
        context = attention(q, k, v, key_mask, keep=keep, keep_scale=drop.scale)
        out = self.output_dropout(_apply(self.output, context, self.dtype), rngs=dropout_rngs)
        return self.layer_norm(out + x)


class BertLayer(nnx.Module):
    """One transformer block: self-attention, then the feed-forward network
    (dense -> activation -> dense -> dropout -> residual -> LayerNorm)."""

    def __init__(self, config: BertConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.dtype = dtype
        self.attention = BertSelfAttention(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.intermediate = _dense(config.hidden_size, config.intermediate_size, config, param_dtype, rngs)
        self.output = _dense(config.intermediate_size, config.hidden_size, config, param_dtype, rngs)
        self.layer_norm = _layer_norm(config, param_dtype, rngs)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(
        self,
        x: jax.Array,
        key_mask: jax.Array,
        dropout_rngs: nnx.RngStream,
        query_positions: jax.Array | None = None,
    ) -> jax.Array:
        """x: [B, T, H]; key_mask: [B, T] bool; query_positions: optional [B, P]
        int rows to compute -> [B, T or P, H]."""
        x = self.attention(x, key_mask, dropout_rngs, query_positions)
        y = _apply(self.output, self.activation(_apply(self.intermediate, x, self.dtype)), self.dtype)
        return self.layer_norm(self.dropout(y, rngs=dropout_rngs) + x)
