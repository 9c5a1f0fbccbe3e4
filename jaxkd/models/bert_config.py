"""The architecture of a BERT encoder (:class:`BertConfig`, read from a Hugging
Face ``config.json``) and the activations it may name (:data:`ACTIVATIONS`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax

from jaxkd.models.ops import gelu_erf

__all__ = ["ACTIVATIONS", "BertConfig"]


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
