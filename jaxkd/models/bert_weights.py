"""Finding, reading and checking Hugging Face BERT checkpoints.

A checkpoint is a directory with ``config.json`` and the weights as
``model.safetensors`` (or shards listed in ``model.safetensors.index.json``),
usually next to the tokenizer files. Tensors are read with safetensors' numpy
backend, one at a time: no PyTorch, and pickled ``pytorch_model.bin`` files are
refused, never unpickled.

Tensor names are Hugging Face ``BertModel`` names, optionally under ``bert.``
(as saved by ``BertFor*`` task models); the old ``LayerNorm.gamma`` /
``LayerNorm.beta`` spellings are accepted. The pooler, pre-training (``cls.*``)
and task heads (``classifier.*``, ``qa_outputs.*``) and the ``position_ids`` /
``token_type_ids`` buffers are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors import safe_open

__all__ = [
    "CHECKPOINT_FILES",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointKeysError",
    "CheckpointNotFoundError",
    "SafetensorsReader",
    "assign_weights",
    "canonical_name",
    "check_concrete",
    "config_file",
    "parameter_slots",
    "read_weights",
    "resolve_checkpoint",
    "weight_files",
]

#: Files fetched for a hub name: config, weights (single or sharded), tokenizer.
CHECKPOINT_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_OTHER_FORMATS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
_IGNORED_PREFIXES = ("pooler.", "cls.", "classifier.", "qa_outputs.")
_IGNORED_NAMES = frozenset({"embeddings.position_ids", "embeddings.token_type_ids"})
_LAYER_NAME = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_MAX_LISTED = 25


class CheckpointError(ValueError):
    """A BERT checkpoint cannot be loaded."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """Neither a local directory nor a hub name that can be had."""


class CheckpointFormatError(CheckpointError):
    """The checkpoint exists but is not in the expected files or format."""


class CheckpointKeysError(CheckpointError):
    """Tensors are missing, unexpected or of the wrong shape; all are named.

    Attributes:
      missing: parameter names the model needs and the checkpoint lacks.
      unexpected: checkpoint names (as stored) that map to no parameter.
      mismatched: ``name -> (checkpoint shape, expected shape)``.
    """

    def __init__(self, source, missing=(), unexpected=(), mismatched=None):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = dict(sorted((mismatched or {}).items()))
        parts = [f"checkpoint {source} does not fit the BERT model:"]
        if self.missing:
            parts.append(f"missing {len(self.missing)} tensor(s): {_listing(self.missing)}")
        if self.unexpected:
            parts.append(
                f"unexpected {len(self.unexpected)} tensor(s): {_listing(self.unexpected)}"
            )
        if self.mismatched:
            shown = [f"{k} {got} (expected {want})" for k, (got, want) in self.mismatched.items()]
            parts.append(f"wrong shape for {len(shown)} tensor(s): {_listing(shown)}")
        super().__init__("\n  ".join(parts))


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------
# Locating a checkpoint
# --------------------------------------------------------------------------


def resolve_checkpoint(path_or_name: str | Path) -> Path:
    """The local directory of a checkpoint given as a directory or a hub name.

    An existing directory is returned as is. Anything else that looks like a hub
    id (``name`` or ``owner/name``) is fetched with
    ``huggingface_hub.snapshot_download`` (config, safetensors weights and
    tokenizer files only), which uses the local Hugging Face cache and works
    offline for a cached model.

    Raises:
      CheckpointNotFoundError: not a directory, and not obtainable from the hub;
        the message says which files to put where.
      CheckpointFormatError: a file (e.g. ``pytorch_model.bin``) instead of a directory.
    """
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.suffix in _PICKLE_SUFFIXES:
            raise CheckpointFormatError(_pickle_refusal(path))
        raise CheckpointFormatError(
            f"{path} is a file; pass the directory that holds config.json and model.safetensors"
        )
    name = str(path_or_name)
    if not _HUB_ID.match(name) or name.count("/") > 1:
        raise CheckpointNotFoundError(f"no checkpoint directory {name!r}")
    return _download(name)


def _download(name: str) -> Path:
    hint = (
        f"download config.json, model.safetensors and tokenizer.json / vocab.txt "
        f"(with tokenizer_config.json) of {name!r} from the Hugging Face hub into a "
        f"directory and pass that directory's path instead of {name!r}"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise CheckpointNotFoundError(
            f"{name!r} is not a directory and huggingface_hub is not installed; {hint}"
        ) from err
    try:
        directory = Path(snapshot_download(repo_id=name, allow_patterns=list(CHECKPOINT_FILES)))
    except Exception as err:  # offline, not cached, unknown repo, HTTP error, ...
        raise CheckpointNotFoundError(
            f"{name!r} is not a local directory and could not be had from the Hugging Face "
            f"hub or its cache ({type(err).__name__}: {err}); {hint}"
        ) from err
    if not (directory / "config.json").is_file():
        raise CheckpointNotFoundError(f"the hub snapshot of {name!r} has no config.json; {hint}")
    return directory


def _pickle_refusal(path: Path) -> str:
    return (
        f"{path} is a pickled PyTorch checkpoint; jaxkd never unpickles files (that can run "
        "arbitrary code). Convert it to safetensors where torch is installed, e.g. "
        "`transformers.BertModel.from_pretrained(DIR).save_pretrained(OUT)` (writes "
        "model.safetensors), and pass OUT (with config.json and the tokenizer files)"
    )


def config_file(directory: Path) -> Path:
    """``directory/config.json``, or a clear error if it is absent."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointFormatError(f"{directory} has no config.json (a Hugging Face BERT config)")
    return path


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory (one, or the shards of an index).

    Raises:
      CheckpointFormatError: only pickled or other-framework weights, or none.
    """
    directory = Path(directory)
    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        files = [directory / s for s in shards]
        absent = [str(p.name) for p in files if not p.is_file()]
        if absent:
            raise CheckpointFormatError(f"{index} lists shards that are absent: {absent}")
        return files
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointFormatError(
            f"{directory} has no model.safetensors, only {pickles}: "
            + _pickle_refusal(directory / pickles[0])
        )
    others = [n for n in _OTHER_FORMATS if (directory / n).exists()]
    if others:
        raise CheckpointFormatError(
            f"{directory} has weights only as {others}, which jaxkd does not read; "
            "save the model as model.safetensors"
        )
    raise CheckpointFormatError(f"{directory} has no model.safetensors")


# --------------------------------------------------------------------------
# Reading tensors
# --------------------------------------------------------------------------


class SafetensorsReader(Mapping):
    """Lazy, read-only ``name -> np.ndarray`` view of safetensors files.

    Only the header is read up front; each tensor is read when indexed, so a
    truncated student never reads the layers it drops.
    """

    def __init__(self, files: list[Path]):
        self._file: dict[str, Path] = {}
        self._shape: dict[str, tuple[int, ...]] = {}
        for file in files:
            with safe_open(str(file), framework="numpy") as f:
                for key in f.keys():
                    if key in self._file:
                        raise CheckpointFormatError(f"tensor {key!r} appears in two files")
                    self._file[key] = Path(file)
                    self._shape[key] = tuple(f.get_slice(key).get_shape())

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of a tensor without reading it."""
        return self._shape[key]

    def __getitem__(self, key: str) -> np.ndarray:
        with safe_open(str(self._file[key]), framework="numpy") as f:
            return f.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._file)

    def __len__(self) -> int:
        return len(self._file)


def read_weights(directory: Path) -> SafetensorsReader:
    """A lazy reader over the weights of a checkpoint directory."""
    return SafetensorsReader(weight_files(directory))


def canonical_name(key: str) -> str:
    """Hugging Face ``BertModel`` name of a stored tensor name: drops a ``bert.``
    prefix and renames ``LayerNorm.gamma`` / ``.beta`` to ``.weight`` / ``.bias``."""
    name = key.removeprefix("bert.")
    if name.endswith("LayerNorm.gamma"):
        name = name.removesuffix("gamma") + "weight"
    elif name.endswith("LayerNorm.beta"):
        name = name.removesuffix("beta") + "bias"
    return name


def _ignored(name: str) -> bool:
    return name in _IGNORED_NAMES or name.startswith(_IGNORED_PREFIXES)


# --------------------------------------------------------------------------
# Checkpoint names <-> model variables
# --------------------------------------------------------------------------


def parameter_slots(model) -> dict[str, tuple[nnx.Variable, bool]]:
    """Maps each Hugging Face tensor name to ``(model variable, transposed)``.

    ``transposed`` is True for dense kernels: torch stores ``[out, in]``,
    ``nnx.Linear`` holds ``[in, out]``.
    """
    slots: dict[str, tuple[nnx.Variable, bool]] = {}

    def dense(prefix: str, linear: nnx.Linear) -> None:
        slots[prefix + ".weight"] = (linear.kernel, True)
        slots[prefix + ".bias"] = (linear.bias, False)

    def norm(prefix: str, layer_norm: nnx.LayerNorm) -> None:
        slots[prefix + ".weight"] = (layer_norm.scale, False)
        slots[prefix + ".bias"] = (layer_norm.bias, False)

    emb = model.embeddings
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        slots[f"embeddings.{table}.weight"] = (getattr(emb, table).embedding, False)
    norm("embeddings.LayerNorm", emb.layer_norm)
    for i, layer in enumerate(model.layers):
        p = f"encoder.layer.{i}"
        att = layer.attention
        dense(f"{p}.attention.self.query", att.query)
        dense(f"{p}.attention.self.key", att.key)
        dense(f"{p}.attention.self.value", att.value)
        dense(f"{p}.attention.output.dense", att.output)
        norm(f"{p}.attention.output.LayerNorm", att.layer_norm)
        dense(f"{p}.intermediate.dense", layer.intermediate)
        dense(f"{p}.output.dense", layer.output)
        norm(f"{p}.output.LayerNorm", layer.layer_norm)
    return slots


def _shape_of(weights: Mapping, key: str) -> tuple[int, ...]:
    shape = getattr(weights, "shape", None)
    return tuple(shape(key)) if callable(shape) else tuple(np.shape(weights[key]))


def assign_weights(model, weights: Mapping, *, checkpoint_layers: int, source="checkpoint") -> None:
    """Copies checkpoint tensors into the model's parameters, checking names and shapes.

    Args:
      model: a :class:`~jaxkd.models.bert.BertModel` (possibly abstract, from
        ``nnx.eval_shape``); its layers are the first layers of the checkpoint.
      weights: stored name -> array (a :class:`SafetensorsReader` or a dict).
      checkpoint_layers: layers the checkpoint's config declares; stored layers
        beyond the model's but below this are dropped silently (truncation).
      source: what to call the checkpoint in error messages.

    Raises:
      CheckpointKeysError: names every missing, unexpected, duplicated or
        mis-shaped tensor; nothing is assigned then.
    """
    slots = parameter_slots(model)
    found: dict[str, str] = {}  # canonical name -> stored key
    unexpected: list[str] = []
    for key in weights:
        name = canonical_name(key)
        if _ignored(name):
            continue
        if name not in slots:
            match = _LAYER_NAME.match(name)
            if match and model.num_layers <= int(match.group(1)) < checkpoint_layers:
                continue  # a layer that the truncated model drops
            unexpected.append(key)
        elif name in found:
            unexpected.append(key)  # e.g. both "bert.x" and "x" stored
        else:
            found[name] = key
    missing = [name for name in slots if name not in found]
    mismatched = {}
    for name, key in found.items():
        variable, transposed = slots[name]
        want = tuple(variable.shape)
        want = want[::-1] if transposed else want
        got = _shape_of(weights, key)
        if got != want:
            mismatched[key] = (got, want)
    if missing or unexpected or mismatched:
        raise CheckpointKeysError(source, missing, unexpected, mismatched)
    for name, key in found.items():
        variable, transposed = slots[name]
        array = np.asarray(weights[key])
        if not np.issubdtype(array.dtype, np.floating) and array.dtype.name != "bfloat16":
            raise CheckpointFormatError(f"tensor {key!r} of {source} has dtype {array.dtype}")
        array = array.T if transposed else array
        variable.set_value(jnp.asarray(array, dtype=variable.get_value().dtype))


def check_concrete(model) -> None:
    """Raises if any state of ``model`` is still abstract (a bug in the loader)."""
    leaves = jax.tree_util.tree_leaves_with_path(nnx.state(model))
    abstract = [jax.tree_util.keystr(p) for p, x in leaves if not isinstance(x, jax.Array)]
    if abstract:
        raise RuntimeError(f"state left without a value after loading: {abstract}")
