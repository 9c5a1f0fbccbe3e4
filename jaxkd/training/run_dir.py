"""A run on disk, the unit users hand around: everything jaxkd reads or writes
in a workdir goes through here, and each command opens a run once
(:func:`read_run`).

    <workdir>/model/             what the tagger is: the encoder's config.json
                                 (layers kept), tokenizer files, labels.json,
                                 tagger.json (head, dropout, constraints, dtype)
    <workdir>/checkpoints/       the saved epochs (jaxkd/training/checkpoints.py)
    <workdir>/config.json        the run's configuration (pins a resumed run)
    <workdir>/results.json       the outcome of a finished run

Nothing in a run is executed when it is read: arrays go through tensorstore,
everything else is JSON or tokenizer files.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from jaxkd.data.labels import LabelVocab
from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.models.bert import BertConfig
from jaxkd.models.heads import abstract_tagger
from jaxkd.training.checkpoints import Checkpoints
from jaxkd.training.mesh import is_main_process
from jaxkd.training.steps import Split, merge, split

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
RESULTS = "results.json"


def model_dir(workdir: str | Path) -> Path:
    return Path(workdir) / "model"


def write_model_files(workdir: str | Path, encoder_dir: Path, tagger, labels: LabelVocab, *, dtype: str) -> None:
    """Writes ``<workdir>/model/`` for ``tagger`` (any head), process 0 only."""
    if not is_main_process():
        return
    out = model_dir(workdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(tagger.encoder.config.to_dict(), indent=2))
    copy_tokenizer(encoder_dir, out)
    (out / "labels.json").write_text(labels.to_json())
    meta = {
        "dropout": float(tagger.dropout.rate),
        "constrained": bool(tagger.constrained),
        "dtype": dtype,
        "head": tagger.head_kind,
    }
    (out / "tagger.json").write_text(json.dumps(meta, indent=2))


def copy_tokenizer(source: str | Path, target: Path) -> None:
    """Copies the tokenizer files of a model directory that it has."""
    for name in TOKENIZER_FILES:
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, target / name)


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """What ``<workdir>/model/`` describes, read once, and the run's
    checkpoints, opened once (read-only)."""

    workdir: Path
    encoder_config: BertConfig
    labels: LabelVocab
    head: str  # model.head
    dropout: float
    constrained: bool  # model.constraints
    dtype: str  # model.dtype
    encoder: SubwordEncoder  # the tokenizer and its window

    @cached_property
    def checkpoints(self) -> Checkpoints:
        return Checkpoints(self.workdir)

    @property
    def finished(self) -> bool:
        """The run wrote its results (it trained every epoch)."""
        return (self.workdir / RESULTS).is_file()

    def tagger(self, dtype: str | None = None):
        """The tagger described, with uninitialised weights (to be filled from
        a checkpoint); ``dtype`` overrides the run's compute dtype."""
        return abstract_tagger(
            self.encoder_config, self.labels, head=self.head, dropout=self.dropout, constrained=self.constrained,
            dtype=dtype or self.dtype,
        )

    def restore(self, name: str = "best", *, dtype: str | None = None) -> tuple[Split, Any]:
        """(the tagger taken apart with :func:`~jaxkd.training.steps.split`,
        the parameters of checkpoint ``name``); only the parameters are read."""
        parts = split(self.tagger(dtype))
        return parts, self.checkpoints.restore(name, params=parts.params)["params"]


def read_run(workdir: str | Path) -> RunFiles:
    """The run in ``workdir``, described by its ``model/`` files.

    Raises:
      FileNotFoundError: ``workdir`` is not a jaxkd training workdir.
    """
    workdir = Path(workdir)
    files = model_dir(workdir)
    if not (files / "labels.json").is_file():
        raise FileNotFoundError(f"{workdir} is not a jaxkd training workdir (no model/labels.json)")
    meta = {"head": "crf", **json.loads((files / "tagger.json").read_text())}  # runs before the softmax head: crf
    return RunFiles(
        workdir=workdir,
        encoder_config=BertConfig.from_json_file(files / "config.json"),
        labels=LabelVocab.from_json((files / "labels.json").read_text()),
        head=meta["head"],
        dropout=meta["dropout"],
        constrained=meta["constrained"],
        dtype=meta["dtype"],
        encoder=SubwordEncoder.from_pretrained(files),
    )


class Run(NamedTuple):
    """A trained tagger restored from its workdir (or from an hf export)."""

    workdir: Path
    labels: LabelVocab
    encoder: SubwordEncoder
    parts: Split  # graph definitions and the restored tagger's state
    params: Any  # the checkpoint's parameters (replace parts.params)

    @property
    def tagger(self):
        """The tagger (any head) with the checkpoint's weights, in eval mode."""
        return merge(self.parts.eval_def, self.params, self.parts.rest)


def restore_params(workdir: str | Path, name: str = "best", *, dtype: str | None = None):
    """(the tagger taken apart, the parameters of checkpoint ``name``) of the
    run in ``workdir``; only the parameters are read."""
    return read_run(workdir).restore(name, dtype=dtype)


def load_run(workdir: str | Path, checkpoint_name: str = "best", *, dtype: str | None = None) -> Run:
    """Restores the tagger of ``<workdir>`` from checkpoint ``checkpoint_name``
    ("best" or "latest"); ``dtype`` overrides the run's compute dtype."""
    files = read_run(workdir)
    parts, params = files.restore(checkpoint_name, dtype=dtype)
    return Run(files.workdir, files.labels, files.encoder, parts, params)

