"""The ``jax`` export of a trained tagger: its compiled labelling function
(encoder + decoding: Viterbi, or a span head's greedy spans) serialised with
:mod:`jax.export` (StableHLO), one file per bucket shape, for a fixed batch
size; the parameters in ``params.safetensors`` (an input of the function, so
they are stored once); ``export.json`` (shapes, labels, special token ids,
inputs); the tokenizer files; and ``label.py`` (``jaxkd/exported_labeller.py``),
the standalone reader of this format, which needs jax, numpy, safetensors and
tokenizers but not jaxkd.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import save_file

from jaxkd.data.batching import Batch
from jaxkd.export_files import ExportError, fresh, write_dir
from jaxkd.labeling import bucket_shapes
from jaxkd.training.run_dir import copy_tokenizer, load_run, model_dir
from jaxkd.training.steps import DistillSpec, path_names, student_fns

JAX_FORMAT = "jaxkd-jax-export/1"


def flat_params(params) -> dict[str, np.ndarray]:
    """``{"encoder/layers/0/attention/key/kernel": array, ...}``: a tagger's
    parameters by path name (the exported function's first input)."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    out = {}
    for path, leaf in leaves:
        names = path_names(path)
        out["/".join(names[:-1] if names[-1] == "value" else names)] = np.asarray(leaf, np.float32)
    return out


def labelling_function(run):
    """``(params: {name: array}, input_ids [B, T] int32, attention_mask [B, T] int32,
    word_index [B, W] int32, word_mask [B, W] bool) -> tags [B, W] int32``: the
    tagger's decoding (Viterbi, or a span head's greedy spans), with its
    parameters an input."""
    parts = run.parts
    decode = student_fns(parts, DistillSpec(), optimizer=None).decode
    names = list(flat_params(run.params))
    treedef = jax.tree_util.tree_structure(run.params)

    def label(params, input_ids, attention_mask, word_index, word_mask):
        tree = jax.tree_util.tree_unflatten(treedef, [params[n] for n in names])
        rows = input_ids.shape[0]
        batch = Batch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=jnp.zeros_like(input_ids),
            word_index=word_index,
            word_mask=word_mask,
            tags=jnp.zeros(word_mask.shape, jnp.int32),
            sentence_index=jnp.arange(rows, dtype=jnp.int32),
            word_offset=jnp.zeros((rows,), jnp.int32),
        )
        return decode(tree, parts.rest, batch)

    return label


def export_jax(
    workdir: str | Path,
    out: str | Path,
    *,
    checkpoint: str = "best",
    batch_size: int = 32,
    platforms: tuple[str, ...] = ("cpu", "cuda"),
) -> Path:
    """Writes the ``jax`` export of a run (see the module docstring); returns ``out``."""
    if batch_size < 1:
        raise ExportError(f"--batch-size must be >= 1, got {batch_size}")
    out = fresh(out)
    run = load_run(workdir, checkpoint)
    params = flat_params(run.params)
    function = jax.jit(labelling_function(run))
    param_specs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
    blobs = {}
    for t, w in bucket_shapes(run.encoder.window):
        specs = [
            jax.ShapeDtypeStruct((batch_size, n), d)
            for n, d in ((t, np.int32), (t, np.int32), (w, np.int32), (w, np.bool_))
        ]
        exported = jax.export.export(function, platforms=platforms)(param_specs, *specs)
        blobs[(t, w)] = exported.serialize()
    encoder = run.encoder
    manifest = {
        "format": JAX_FORMAT,
        "exported_from": str(workdir),
        "checkpoint": checkpoint,
        "jax_version": jax.__version__,
        "platforms": list(platforms),
        "batch_size": batch_size,
        "shapes": [{"T": t, "W": w, "file": f"label_T{t}.jaxexport"} for t, w in blobs],
        "inputs": ["params (params.safetensors)", "input_ids [B, T] int32", "attention_mask [B, T] int32",
                   "word_index [B, W] int32", "word_mask [B, W] bool"],
        "output": "tags [B, W] int32 (ids into labels)",
        "labels": list(run.labels.labels),
        "special_ids": {"cls": encoder.cls_id, "sep": encoder.sep_id, "pad": encoder.pad_id, "unk": encoder.unk_id},
    }

    def fill(tmp: Path) -> None:
        for (t, _), blob in blobs.items():
            (tmp / f"label_T{t}.jaxexport").write_bytes(blob)
        save_file(params, str(tmp / "params.safetensors"))
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2))
        copy_tokenizer(model_dir(workdir), tmp)
        (tmp / "label.py").write_text((Path(__file__).parent / "exported_labeller.py").read_text())

    return write_dir(out, fill)
