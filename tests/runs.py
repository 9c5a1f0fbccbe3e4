"""A tiny training set-up shared by the tests: a random BERT checkpoint, a
CoNLL corpus whose entities are predictable from the word, and a fast
configuration (the session fixtures are in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxkd.config import base

TYPES = ("PER", "LOC")
WORDS = ["alice", "bob", "paris", "rome", "went", "to", "and", "saw", "the", "city", "met", "in"]


def _sentences(seed: int, count: int):
    """Random sentences whose entities are predictable from the word."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(3, 9))
        words = list(rng.choice(WORDS, size=n))
        tags = []
        for i, w in enumerate(words):
            kind = "PER" if w in ("alice", "bob") else "LOC" if w in ("paris", "rome") else None
            if kind is None:
                tags.append("O")
            elif i > 0 and tags[-1].endswith(kind) and words[i - 1] == w:
                tags.append(f"I-{kind}")
            else:
                tags.append(f"B-{kind}")
        out.append((words, tags))
    return out


def write_corpus(directory: Path, *, types=TYPES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, seed, count in (("train.txt", 0, 96), ("valid.txt", 1, 24), ("test.txt", 2, 24)):
        lines = []
        for words, tags in _sentences(seed, count):
            if "LOC" not in types:
                tags = ["O" if t.endswith("LOC") else t for t in tags]
            lines += [f"{w} {t}" for w, t in zip(words, tags)] + [""]
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


# Parts of speech of WORDS (a token-tag corpus: each tag follows from its word).
POS = {"alice": "NNP", "bob": "NNP", "paris": "NNP", "rome": "NNP", "went": "VBD", "to": "TO", "and": "CC",
       "saw": "VBD", "the": "DT", "city": "NN", "met": "VBD", "in": "IN"}


def write_pos_corpus(directory: Path) -> Path:
    """A CoNLL-U corpus (train/dev/test) of the sentences of :func:`write_corpus`
    tagged with :data:`POS` (UPOS and XPOS columns both), with comment lines
    and a multi-word token range like UD's."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, seed, count in (("train", 0, 96), ("dev", 1, 24), ("test", 2, 24)):
        lines = []
        for n, (words, _) in enumerate(_sentences(seed, count)):
            lines += [f"# sent_id = {split}-{n}", f"1-2\t{words[0]}{words[1]}" + "\t_" * 8]
            lines += [f"{i}\t{w}\t_\t{POS[w]}\t{POS[w]}" + "\t_" * 5 for i, w in enumerate(words, 1)] + [""]
        (directory / f"tiny-ud-{split}.conllu").write_text("\n".join(lines) + "\n")
    return directory


def tiny_config(ckpt, data, **changes):
    c = base()
    c.data.source = str(data)
    c.model.checkpoint = str(ckpt)
    c.model.dropout = 0.1
    c.train.epochs = 2
    c.train.batch_size = 16
    c.train.eval_batch_size = 32
    c.train.encoder_lr = 1e-3
    c.train.head_lr = 1e-2
    c.data.min_bucket_length = 64  # one batch shape (the window): one compilation per function
    c.log.progress = "never"
    c.log.tensorboard = False  # its import alone costs a process 1.5 s
    for key, value in changes.items():
        node = c
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return c


TIMING_KEYS = ("_s", "time", "timing", "wall", "compiles")  # facts of a process, not of the run


def untimed(value):
    """results.json without wall-clock and compilation fields (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not any(t in k for t in TIMING_KEYS)}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def final_state(workdir: Path):
    """(a run's results.json untimed, its best checkpoint's parameters as a flat
    list): what two runs that end alike, bit for bit, share."""
    import jax

    from jaxkd.inspection import load_run

    results = untimed(json.loads((workdir / "results.json").read_text()))
    return results, [np.asarray(x) for x in jax.tree_util.tree_leaves(load_run(workdir, "best").params)]
