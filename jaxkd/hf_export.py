"""The ``hf`` export of a trained tagger: a Hugging Face-style directory,
written and read here.

* ``config.json``: the BERT config with ``architectures:
  ["BertForTokenClassification"]``, ``id2label`` and ``label2id``, and
  ``jaxkd_tag_scheme`` (``"IOB2"``, or ``"token"`` for parts of speech;
  absent in exports before 2026-12, which are IOB2);
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

:func:`jaxkd.load_tagger` loads such a directory (:func:`read_hf`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx
from safetensors.numpy import load_file, save_file

from jaxkd.crf import Constraints
from jaxkd.data.labels import LabelVocab
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.export_files import ExportError, fresh, write_dir
from jaxkd.models.bert import BertConfig, bert_from_weights
from jaxkd.models.bert_weights import parameter_slots, read_weights
from jaxkd.models.heads import unsupported
from jaxkd.models.tagger import DTYPES, Tagger
from jaxkd.training.run_dir import Run, copy_tokenizer, load_run, model_dir
from jaxkd.training.steps import split

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


def hf_tensors(tagger) -> dict[str, np.ndarray]:
    """The Hugging Face ``BertForTokenClassification`` tensors of a tagger."""
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
    out = fresh(out)
    run = load_run(workdir, checkpoint)
    tagger = run.tagger
    refusal = unsupported(tagger.head_kind, "hf")
    if refusal:
        raise ExportError(f"{workdir}: {refusal}")
    labels = list(run.labels.labels)
    config = tagger.encoder.config.to_dict()
    config.update(
        architectures=["BertForTokenClassification"],
        id2label={str(i): label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
        jaxkd_tag_scheme=run.labels.scheme,  # "IOB2" (chunks) or "token" (parts of speech)
    )

    def fill(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file(hf_tensors(tagger), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        save_file(crf_tensors(tagger), str(tmp / "crf.safetensors"))
        copy_tokenizer(model_dir(workdir), tmp)
        head_note = SOFTMAX_NOTE if tagger.head_kind == "softmax" else ""
        (tmp / "README.md").write_text(
            DECODING_NOTE.format(name=out.name, workdir=workdir, checkpoint=checkpoint, head_note=head_note)
        )

    return write_dir(out, fill)


def read_hf(path: str | Path, *, dtype: str | None = None):
    """An ``hf`` export directory as a :class:`jaxkd.training.run_dir.Run` (what
    :func:`jaxkd.load_tagger` labels with).

    Raises:
      FileNotFoundError: ``path`` is not an ``hf`` export.
    """
    path = Path(path)
    dtype = dtype or "float32"
    if dtype not in DTYPES:  # as for a workdir (jaxkd.models.heads.abstract_tagger)
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    for name in ("config.json", "model.safetensors", "crf.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path} has no {name}: not an hf export of jaxkd (python -m jaxkd.export --format hf)"
            )
    config = json.loads((path / "config.json").read_text())
    id2label = config.get("id2label") or {}
    labels = LabelVocab(tuple(id2label[str(i)] for i in range(len(id2label))), config.get("jaxkd_tag_scheme", "IOB2"))
    crf_file = load_file(str(path / "crf.safetensors"))
    allowed = Constraints(*(crf_file[k].astype(bool) for k in ("allowed_transitions", "allowed_start", "allowed_end")))
    constrained = not all(np.all(a) for a in allowed)
    weights = read_weights(path)  # one reader for the encoder and the classifier
    encoder_config = BertConfig.from_dict(config)
    encoder = bert_from_weights(encoder_config, weights, checkpoint_layers=encoder_config.num_hidden_layers,
                                dtype=DTYPES[dtype], rngs=nnx.Rngs(0), source=path)
    tagger = Tagger(encoder, len(labels), dropout=0.0, constraints=allowed if constrained else None, rngs=nnx.Rngs(1))
    tagger.head.kernel.set_value(np.ascontiguousarray(weights["classifier.weight"].T))
    tagger.head.bias.set_value(weights["classifier.bias"])
    for name in ("transitions", "start", "end"):
        getattr(tagger, name).set_value(crf_file[name])
    parts = split(tagger)
    return Run(path, labels, SubwordEncoder.from_pretrained(path), parts, parts.params)


def is_hf_export(path: str | Path) -> bool:
    return (Path(path) / "crf.safetensors").is_file()
