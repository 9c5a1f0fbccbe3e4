"""Export a trained tagger to formats other stacks load.

    python -m jaxkd.export --workdir runs/demo/efficient --out exports/efficient --format hf

``hf`` writes a Hugging Face-style directory:

* ``config.json``: the BERT config with ``architectures:
  ["BertForTokenClassification"]``, ``id2label`` and ``label2id``;
* ``model.safetensors``: the encoder under ``bert.*`` and the emission layer
  as ``classifier.weight`` / ``classifier.bias`` (PyTorch ``[out, in]``
  layout), so ``transformers.BertForTokenClassification.from_pretrained``
  gives the tagger's emissions as its logits (at each word's first
  sub-word), and ``jaxkd.models.bert.load_bert`` reads the encoder back;
* the tokenizer files;
* ``crf.safetensors``: ``transitions [N, N]`` (tag i then tag j), ``start
  [N]``, ``end [N]``, and the constraints ``allowed_transitions``,
  ``allowed_start``, ``allowed_end`` (uint8, 1 = allowed);
* ``README.md``: how to decode with the CRF.

``jax`` writes the compiled labelling function (encoder + Viterbi decoding)
serialised with :mod:`jax.export` (StableHLO), one file per bucket shape, for
a fixed batch size; the parameters in ``params.safetensors`` (an input of the
function, so they are stored once); ``export.json`` (shapes, labels, special
token ids, inputs); the tokenizer files; and ``label.py``, a standalone
labeller of about 100 lines that needs jax, numpy, safetensors and tokenizers
but not jaxkd::

    python -m jaxkd.export --workdir runs/demo/efficient --out exports/efficient-jax --format jax
    python exports/efficient-jax/label.py "EU rejects German call to boycott British lamb ."

Either directory is written under a temporary name and renamed when complete;
an existing ``--out`` is refused. Nothing in them is a pickle.
:func:`jaxkd.load_tagger` also loads an ``hf`` export (:func:`read_hf`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

DECODING_NOTE = """# {name}: a jaxkd BERT-CRF tagger

Exported by `python -m jaxkd.export` from `{workdir}` ({checkpoint} checkpoint).

`BertForTokenClassification.from_pretrained(this_directory)` returns the
tagger's emission scores as `logits [B, T, N]`. jaxkd reads them at the
**first sub-word of each word** (the other sub-words carry no tag), giving
emissions `e [n, N]` for a sentence of n words. Tags are decoded with the
linear-chain CRF stored in `crf.safetensors`, maximising

    start[y_0] + sum_l e[l, y_l] + sum_(l>=1) transitions[y_(l-1), y_l] + end[y_(n-1)]

over tag sequences y whose moves are allowed (`allowed_transitions[i, j]`,
`allowed_start[j]`, `allowed_end[i]` equal to 1; all 1 for an unconstrained
tagger). With pytorch-crf: `CRF(N, batch_first=True)` with `transitions`,
`start_transitions`, `end_transitions` copied from the file, and forbidden
moves set to -10000 before `decode`. Label names: `id2label` in `config.json`.
{head_note}"""

SOFTMAX_NOTE = """
This tagger has a per-word softmax head (jaxkd's `model.head = "softmax"`):
its transition, start and end scores are zero, so the decoding above is the
per-word argmax of the logits, or, with the constraints, the most probable
sequence of tags whose moves are allowed.
"""


class ExportError(ValueError):
    pass


def hf_tensors(tagger) -> dict[str, np.ndarray]:
    """The Hugging Face ``BertForTokenClassification`` tensors of a tagger."""
    from jaxkd.models.bert_weights import parameter_slots

    out = {}
    for name, (variable, transposed) in parameter_slots(tagger.encoder).items():
        value = np.asarray(variable.get_value(), np.float32)
        out[f"bert.{name}"] = np.ascontiguousarray(value.T if transposed else value)
    out["classifier.weight"] = np.ascontiguousarray(np.asarray(tagger.head.kernel.get_value(), np.float32).T)
    out["classifier.bias"] = np.asarray(tagger.head.bias.get_value(), np.float32)
    return out


def crf_tensors(tagger) -> dict[str, np.ndarray]:
    """The CRF's scores and allowed moves."""
    return {
        "transitions": np.asarray(tagger.transitions.get_value(), np.float32),
        "start": np.asarray(tagger.start.get_value(), np.float32),
        "end": np.asarray(tagger.end.get_value(), np.float32),
        "allowed_transitions": np.asarray(tagger.allowed_transitions.get_value(), np.uint8),
        "allowed_start": np.asarray(tagger.allowed_start.get_value(), np.uint8),
        "allowed_end": np.asarray(tagger.allowed_end.get_value(), np.uint8),
    }


def export_hf(workdir: str | Path, out: str | Path, *, checkpoint: str = "best") -> Path:
    """Writes the ``hf`` export of a run (see the module docstring); returns ``out``."""
    from safetensors.numpy import save_file

    from jaxkd.training.run_dir import load_run

    out = _fresh(out)
    run = load_run(workdir, checkpoint)
    tagger = run.tagger
    if tagger.head_kind == "span":
        raise ExportError(
            f"{workdir} has a span head (model.head = 'span'): a biaffine span scorer, which transformers' token "
            "classifier cannot hold; use --format jax, whose compiled function includes its greedy span decoding"
        )
    labels = list(run.labels.labels)
    config = tagger.encoder.config.to_dict()
    config.update(
        architectures=["BertForTokenClassification"],
        id2label={str(i): label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
    )

    def fill(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file(hf_tensors(tagger), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        save_file(crf_tensors(tagger), str(tmp / "crf.safetensors"))
        _copy_tokenizer(workdir, tmp)
        head_note = SOFTMAX_NOTE if tagger.head_kind == "softmax" else ""
        (tmp / "README.md").write_text(DECODING_NOTE.format(name=out.name, workdir=workdir, checkpoint=checkpoint, head_note=head_note))

    return _write_dir(out, fill)


def read_hf(path: str | Path, *, dtype: str | None = None):
    """An ``hf`` export directory as a :class:`jaxkd.training.run_dir.Run` (what
    :func:`jaxkd.load_tagger` labels with).

    Raises:
      FileNotFoundError: ``path`` is not an ``hf`` export.
    """
    from flax import nnx
    from safetensors.numpy import load_file

    from jaxkd.crf.constraints import Constraints
    from jaxkd.data.labels import LabelVocab
    from jaxkd.data.tokenization import SubwordEncoder
    from jaxkd.models.bert import load_bert
    from jaxkd.models.tagger import DTYPES, Tagger
    from jaxkd.training.run_dir import Run
    from jaxkd.training.steps import split

    path = Path(path)
    for name in ("config.json", "model.safetensors", "crf.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}: not an hf export of jaxkd (python -m jaxkd.export --format hf)")
    config = json.loads((path / "config.json").read_text())
    id2label = config.get("id2label") or {}
    labels = LabelVocab(tuple(id2label[str(i)] for i in range(len(id2label))))
    crf_file = load_file(str(path / "crf.safetensors"))
    allowed = Constraints(*(crf_file[k].astype(bool) for k in ("allowed_transitions", "allowed_start", "allowed_end")))
    constrained = not all(np.all(a) for a in allowed)
    encoder = load_bert(path, dtype=DTYPES[dtype or "float32"], rngs=nnx.Rngs(0))
    tagger = Tagger(encoder, len(labels), dropout=0.0, constraints=allowed if constrained else None, rngs=nnx.Rngs(1))
    weights = load_file(str(path / "model.safetensors"))
    tagger.head.kernel.set_value(np.ascontiguousarray(weights["classifier.weight"].T))
    tagger.head.bias.set_value(weights["classifier.bias"])
    for name in ("transitions", "start", "end"):
        getattr(tagger, name).set_value(crf_file[name])
    parts = split(tagger)
    return Run(path, labels, SubwordEncoder.from_pretrained(path), parts, parts.params)


def is_hf_export(path: str | Path) -> bool:
    return (Path(path) / "crf.safetensors").is_file()


# ---------------------------------------------------------------------------
# jax.export
# ---------------------------------------------------------------------------

JAX_FORMAT = "jaxkd-jax-export/1"


def flat_params(params) -> dict[str, np.ndarray]:
    """``{"encoder/layers/0/attention/key/kernel": array, ...}``: a tagger's
    parameters by path name (the exported function's first input)."""
    from jaxkd.training.steps import path_names

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
    import jax.numpy as jnp

    from jaxkd.data.batching import Batch
    from jaxkd.training.steps import DistillSpec, student_fns

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
    from safetensors.numpy import save_file

    from jaxkd.labeling import bucket_shapes
    from jaxkd.training.run_dir import load_run

    if batch_size < 1:
        raise ExportError(f"--batch-size must be >= 1, got {batch_size}")
    out = _fresh(out)
    run = load_run(workdir, checkpoint)
    params = flat_params(run.params)
    function = jax.jit(labelling_function(run))
    param_specs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
    blobs = {}
    for t, w in bucket_shapes(run.encoder.window):
        specs = [jax.ShapeDtypeStruct((batch_size, n), d) for n, d in ((t, np.int32), (t, np.int32), (w, np.int32), (w, np.bool_))]
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
        _copy_tokenizer(workdir, tmp)
        (tmp / "label.py").write_text((Path(__file__).parent / "exported_labeller.py").read_text())

    return _write_dir(out, fill)


# ---------------------------------------------------------------------------
# writing a directory whole or not at all
# ---------------------------------------------------------------------------


def _fresh(out: str | Path) -> Path:
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new --out (an export is never written over)")
    return out


def _copy_tokenizer(workdir: str | Path, directory: Path) -> None:
    from jaxkd.training.run_dir import TOKENIZER_FILES, model_dir

    for name in TOKENIZER_FILES:
        if (model_dir(workdir) / name).is_file():
            shutil.copyfile(model_dir(workdir) / name, directory / name)


def _write_dir(out: Path, fill) -> Path:
    """Runs ``fill(tmp)`` on a temporary sibling directory, then renames it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        fill(tmp)
        _readable(tmp)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _readable(directory: Path) -> None:
    """Ordinary permissions (the temporary directory and files start private)."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.iterdir():
        path.chmod(0o666 & ~umask)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a training run's workdir")
    parser.add_argument("--out", required=True, help="the directory to create")
    parser.add_argument("--format", default="hf", choices=("hf", "jax"), help="hf: a Hugging Face-style directory; jax: jax.export (StableHLO)")
    parser.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    parser.add_argument("--batch-size", type=int, default=32, help="jax: rows per call of the exported function")
    parser.add_argument("--platforms", default="cpu,cuda", help="jax: platforms the function is lowered for (comma-separated: cpu, cuda, rocm, tpu)")
    args = parser.parse_args(argv)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    try:
        if args.format == "hf":
            out = export_hf(args.workdir, args.out, checkpoint=args.checkpoint)
        else:
            platforms = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
            out = export_jax(args.workdir, args.out, checkpoint=args.checkpoint, batch_size=args.batch_size, platforms=platforms)
    except (ExportError, FileNotFoundError, ValueError) as err:
        print(f"jaxkd.export: error: {err}", file=sys.stderr)
        return 2
    print(f"[jaxkd] exported {args.workdir} ({args.checkpoint}) to {out} (format {args.format})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
