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

The directory is written under a temporary name and renamed when complete; an
existing ``--out`` is refused. Nothing in it is a pickle.
(The ``jax.export`` format is not built yet.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

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

    from jaxkd.inspection import load_run
    from jaxkd.training.model_files import TOKENIZER_FILES, model_dir

    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new --out (an export is never written over)")
    run = load_run(workdir, checkpoint)
    tagger = run.tagger
    labels = list(run.labels.labels)
    config = tagger.encoder.config.to_dict()
    config.update(
        architectures=["BertForTokenClassification"],
        id2label={str(i): label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file(hf_tensors(tagger), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        save_file(crf_tensors(tagger), str(tmp / "crf.safetensors"))
        for name in TOKENIZER_FILES:
            if (model_dir(workdir) / name).is_file():
                shutil.copyfile(model_dir(workdir) / name, tmp / name)
        (tmp / "README.md").write_text(DECODING_NOTE.format(name=out.name, workdir=workdir, checkpoint=checkpoint))
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
    parser.add_argument("--format", default="hf", choices=("hf",), help="hf: a Hugging Face-style directory")
    parser.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    args = parser.parse_args(argv)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    try:
        out = export_hf(args.workdir, args.out, checkpoint=args.checkpoint)
    except (ExportError, FileNotFoundError, ValueError) as err:
        print(f"jaxkd.export: error: {err}", file=sys.stderr)
        return 2
    print(f"[jaxkd] exported {args.workdir} ({args.checkpoint}) to {out} (format {args.format})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
