"""Tiny random BERT checkpoints for tests, written deterministically from a seed.

``write_tiny_checkpoint(dir)`` writes what a Hugging Face BERT directory holds:

* ``config.json``        -- a ``BertModel`` config (``model_type: bert``);
* ``model.safetensors``  -- float32 weights with Hugging Face key names drawn
  with ``numpy.random.default_rng(seed)`` (the same seed gives the same bytes),
  including a pooler that jaxkd ignores;
* ``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` -- a small
  WordPiece tokenizer (BERT normaliser and pre-tokeniser, ``[CLS] ... [SEP]``
  post-processing) built with the ``tokenizers`` library.

Needs only numpy, safetensors and tokenizers, so that
``tests/data/make_bert_reference.py`` can use it from a PyTorch environment.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: Default vocabulary after the special tokens: whole words (lower and upper
#: case), punctuation, common suffix pieces, and single letters / digits (with
#: their ``##`` forms) so that any ASCII word tokenises without ``[UNK]``.
DEFAULT_WORDS = (
    "the",
    "a",
    "an",
    "of",
    "in",
    "on",
    "at",
    "to",
    "and",
    "is",
    "was",
    "he",
    "she",
    "it",
    "said",
    "lives",
    "works",
    "visited",
    "city",
    "company",
    "team",
    "game",
    "new",
    "york",
    "John",
    "Smith",
    "Mary",
    "London",
    "Paris",
    "Berlin",
    "Google",
    "Apple",
    "New",
    "York",
    "The",
    "He",
    "She",
    "Monday",
    "EU",
    "U.S.",
    ".",
    ",",
    "!",
    "?",
    "'",
    '"',
    "-",
    "(",
    ")",
    ":",
    ";",
    "@",
    "#",
    "##s",
    "##ed",
    "##ing",
    "##er",
    "##ly",
    "##es",
    "##ion",
)
_CHARACTERS = string.ascii_lowercase + string.ascii_uppercase + string.digits


def default_vocab() -> list[str]:
    """The default token list (special tokens first: [PAD] = 0)."""
    words = list(DEFAULT_WORDS)
    words += list(_CHARACTERS) + ["##" + c for c in _CHARACTERS]
    return _unique(list(SPECIAL_TOKENS) + words)


def _unique(tokens: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for token in tokens:
        seen.setdefault(token, None)
    return list(seen)


def tiny_config(
    vocab_size: int,
    *,
    num_layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    intermediate: int = 64,
    max_positions: int = 64,
    hidden_act: str = "gelu",
) -> dict:
    """A Hugging Face ``BertModel`` config dictionary for a tiny model."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "hidden_act": hidden_act,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": max_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }


def tiny_weights(config: dict, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights with Hugging Face ``BertModel`` names.

    Scales are larger than BERT's 0.02 initialisation so that attention is far
    from uniform and activations leave GELU's linear region: a numerical
    comparison then means something.
    """
    rng = np.random.default_rng(seed)
    h, i = config["hidden_size"], config["intermediate_size"]
    weights: dict[str, np.ndarray] = {}

    def normal(shape, scale):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    def dense(name, n_out, n_in):
        weights[name + ".weight"] = normal((n_out, n_in), n_in**-0.5)  # torch: [out, in]
        weights[name + ".bias"] = normal((n_out,), 0.1)

    def norm(name):
        weights[name + ".weight"] = 1.0 + normal((h,), 0.1)
        weights[name + ".bias"] = normal((h,), 0.1)

    weights["embeddings.word_embeddings.weight"] = normal((config["vocab_size"], h), 1.0)
    weights["embeddings.position_embeddings.weight"] = normal(
        (config["max_position_embeddings"], h), 0.5
    )
    weights["embeddings.token_type_embeddings.weight"] = normal((config["type_vocab_size"], h), 0.5)
    norm("embeddings.LayerNorm")
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        for part in ("query", "key", "value"):
            dense(f"{p}.attention.self.{part}", h, h)
        dense(f"{p}.attention.output.dense", h, h)
        norm(f"{p}.attention.output.LayerNorm")
        dense(f"{p}.intermediate.dense", i, h)
        dense(f"{p}.output.dense", h, i)
        norm(f"{p}.output.LayerNorm")
    dense("pooler.dense", h, h)
    weights["embeddings.position_ids"] = np.arange(config["max_position_embeddings"])[None]
    return weights


def rename_keys(
    weights: dict[str, np.ndarray], *, prefix: str = "", gamma_beta: bool = False
) -> dict[str, np.ndarray]:
    """Stored spellings: a prefix (e.g. ``"bert."``) and/or old LayerNorm names."""
    renamed = {}
    for key, value in weights.items():
        if gamma_beta and ".LayerNorm." in key:
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma")
            key = key.replace("LayerNorm.bias", "LayerNorm.beta")
        renamed[prefix + key] = value
    return renamed


def write_tokenizer(
    directory: Path, vocab: Sequence[str], *, lowercase: bool = False, max_length: int = 64
) -> None:
    """Writes ``vocab.txt``, ``tokenizer.json`` and ``tokenizer_config.json``."""
    ids = {token: i for i, token in enumerate(vocab)}
    for token in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
        if token not in ids:
            raise ValueError(f"the vocabulary must contain {token}")
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(
        ("[SEP]", ids["[SEP]"]), ("[CLS]", ids["[CLS]"])
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens([t for t in SPECIAL_TOKENS if t in ids])
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": lowercase,
        "model_max_length": max_length,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))


def write_tiny_checkpoint(
    directory: str | Path,
    *,
    seed: int = 0,
    vocab: Sequence[str] | None = None,
    num_layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    intermediate: int = 64,
    max_positions: int = 64,
    prefix: str = "",
    gamma_beta: bool = False,
    hidden_act: str = "gelu",
    lowercase: bool = False,
) -> Path:
    """Writes a tiny random BERT checkpoint directory and returns its path.

    Args:
      directory: created if absent.
      seed: weights come from ``numpy.random.default_rng(seed)``.
      vocab: tokens after the special tokens ([PAD]=0 ... [MASK]=4); default
        :func:`default_vocab`.
      num_layers, hidden, heads, intermediate, max_positions, hidden_act: architecture.
      prefix: prepended to every stored name (``"bert."`` like ``BertFor*`` models).
      gamma_beta: store LayerNorm parameters as ``gamma`` / ``beta`` (old BERT).
      lowercase: whether the tokenizer lowercases (the default vocabulary is cased).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = default_vocab() if vocab is None else _unique(list(SPECIAL_TOKENS) + list(vocab))
    config = tiny_config(
        len(tokens),
        num_layers=num_layers,
        hidden=hidden,
        heads=heads,
        intermediate=intermediate,
        max_positions=max_positions,
        hidden_act=hidden_act,
    )
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    weights = rename_keys(tiny_weights(config, seed=seed), prefix=prefix, gamma_beta=gamma_beta)
    save_file(weights, str(directory / "model.safetensors"))
    write_tokenizer(directory, tokens, lowercase=lowercase, max_length=max_positions)
    return directory
