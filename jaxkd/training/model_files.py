"""A workdir's model description: everything needed to rebuild a trained
tagger without the original pre-trained checkpoint.

``<workdir>/model/`` holds the encoder's ``config.json`` (with the number of
layers kept), the tokenizer files, ``labels.json`` and ``tagger.json``
(dropout, constraints, dtype). The weights are in ``<workdir>/checkpoints/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from jaxkd.crf import Constraints
from jaxkd.data.labels import LabelVocab
from jaxkd.models.bert import BertConfig, BertModel, load_bert
from jaxkd.models.tagger import Tagger

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def model_dir(workdir: str | Path) -> Path:
    return Path(workdir) / "model"


def build_tagger(
    encoder_path: str | Path,
    labels: LabelVocab,
    *,
    num_layers: int | None,
    dropout: float,
    constrained: bool,
    dtype: str,
    seed: int,
) -> Tagger:
    """A tagger whose encoder is loaded from a pre-trained checkpoint (its first
    ``num_layers`` layers) and whose emission layer and CRF are fresh."""
    if dtype not in DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    encoder = load_bert(encoder_path, num_layers=num_layers, dtype=DTYPES[dtype], rngs=nnx.Rngs(seed))
    return Tagger(
        encoder,
        len(labels),
        dropout=dropout,
        constraints=labels.constraints() if constrained else None,
        rngs=nnx.Rngs(seed + 1),
    )


def write_model_files(workdir: str | Path, encoder_dir: Path, tagger: Tagger, labels: LabelVocab, *, dtype: str) -> None:
    """Writes ``<workdir>/model/`` (see the module docstring)."""
    out = model_dir(workdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(tagger.encoder.config.to_dict(), indent=2))
    for name in TOKENIZER_FILES:
        if (Path(encoder_dir) / name).is_file():
            shutil.copyfile(Path(encoder_dir) / name, out / name)
    (out / "labels.json").write_text(labels.to_json())
    meta = {"dropout": float(tagger.dropout.rate), "constrained": bool(tagger.constrained), "dtype": dtype}
    (out / "tagger.json").write_text(json.dumps(meta, indent=2))


def read_labels(workdir: str | Path) -> LabelVocab:
    path = model_dir(workdir) / "labels.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {workdir} a jaxkd training workdir?")
    return LabelVocab.from_json(path.read_text())


def abstract_tagger(workdir: str | Path, *, dtype: str | None = None) -> Tagger:
    """The tagger described by ``<workdir>/model/``, with uninitialised weights
    (to be filled from a checkpoint). ``dtype`` overrides the run's compute
    dtype (e.g. ``"bfloat16"`` products for faster labelling)."""
    directory = model_dir(workdir)
    config = BertConfig.from_json_file(directory / "config.json")
    meta = json.loads((directory / "tagger.json").read_text())
    labels = read_labels(workdir)
    dtype = dtype or meta["dtype"]
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    dtype = DTYPES[dtype]

    def make():
        encoder = BertModel(config, rngs=nnx.Rngs(0), dtype=dtype)
        return Tagger(
            encoder,
            len(labels),
            dropout=meta["dropout"],
            constraints=labels.constraints() if meta["constrained"] else None,
            rngs=nnx.Rngs(1),
        )

    model = nnx.eval_shape(make)
    # eval_shape leaves every array abstract; the non-trained state must be real.
    allowed = labels.constraints() if meta["constrained"] else Constraints.none(len(labels))
    model.allowed_transitions.set_value(jnp.asarray(allowed.transitions))
    model.allowed_start.set_value(jnp.asarray(allowed.start))
    model.allowed_end.set_value(jnp.asarray(allowed.end))
    model.encoder.dropout_rngs = nnx.Rngs(0)["dropout"].fork()
    return model
