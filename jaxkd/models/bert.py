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
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd.models.dropout import Dropout
from jaxkd.models.ops import attention, dense, gelu_erf

__all__ = [
    "ACTIVATIONS",
    "BertConfig",
    "BertEmbeddings",
    "BertLayer",
    "BertModel",
    "BertSelfAttention",
    "load_bert",
]


def _gelu_tanh(x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x, approximate=True)


#: ``hidden_act`` spellings of Hugging Face configs that this encoder supports.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": gelu_erf,  # BERT's own: x * Phi(x) with the exact erf
    "gelu_python": gelu_erf,
    "gelu_new": _gelu_tanh,  # tanh approximation (GPT-2 style)
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Architecture of a BERT encoder: the fields of a Hugging Face ``config.json``
    that matter for the last hidden state (other fields are ignored)."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    position_embedding_type: str = "absolute"

    def __post_init__(self) -> None:
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"unsupported hidden_act {self.hidden_act!r}; supported: {sorted(ACTIVATIONS)}"
            )
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"position_embedding_type={self.position_embedding_type!r} is not supported: "
                "this encoder implements BERT's learned absolute position embeddings only"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}"
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_hidden_layers < 0:
            raise ValueError(f"num_hidden_layers must be >= 0, got {self.num_hidden_layers}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BertConfig:
        """Builds a config from a Hugging Face config dictionary.

        Keys this encoder does not use are ignored; a ``model_type`` other than
        ``"bert"`` is refused (other families lay out or embed differently).
        """
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(
                f"model_type={model_type!r} is not a BERT checkpoint; jaxkd loads BERT only"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names and v is not None}
        if "vocab_size" not in kwargs:
            raise ValueError("the BERT config has no vocab_size")
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        """Reads a Hugging Face ``config.json``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict[str, Any]:
        """The config as a Hugging Face style dictionary (``model_type: bert``)."""
        return {"model_type": "bert", **dataclasses.asdict(self)}

    def replace(self, **changes: Any) -> BertConfig:
        """A copy with some fields changed (e.g. ``num_hidden_layers=3``)."""
        return dataclasses.replace(self, **changes)


def _dense(n_in: int, n_out: int, config: BertConfig, param_dtype, rngs: nnx.Rngs):
    """A parameter holder (kernel [in, out], bias [out]) applied with :func:`ops.dense`."""
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


def _gather_rows(x: jax.Array, positions: jax.Array) -> jax.Array:
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
            x = _gather_rows(x, query_positions)
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
            return x if positions is None else _gather_rows(x, positions)
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
    from jaxkd.models import bert_weights

    directory = bert_weights.resolve_checkpoint(path_or_name)
    config = BertConfig.from_json_file(bert_weights.config_file(directory))
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
    weights = bert_weights.read_weights(directory)
    rngs = nnx.Rngs(0) if rngs is None else rngs
    # Build the module without computing a random initialisation, then fill it.
    model = nnx.eval_shape(lambda: BertModel(config, rngs=nnx.Rngs(0), dtype=dtype))
    bert_weights.assign_weights(model, weights, checkpoint_layers=available, source=directory)
    model.dropout_rngs = rngs["dropout"].fork()
    bert_weights.check_concrete(model)
    model.eval()
    return model
