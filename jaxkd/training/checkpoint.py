"""Orbax checkpoints of arbitrary pytrees, restored into a template.

A pytree is saved as a flat ``{"leaf_00000": array, ...}`` dictionary (plain
arrays only: nothing from a checkpoint is ever executed or unpickled) with a
``structure.json`` beside it; restoring needs a template with the same
structure (built by the same code), and a mismatch is a clear error rather
than silently mis-assigned weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np


def _keys_and_leaves(tree):
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path) for path, _ in flat]
    return names, [leaf for _, leaf in flat], treedef


def save(path: str | Path, tree) -> None:
    """Saves ``tree`` to directory ``path`` (replacing it atomically)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    names, leaves, _ = _keys_and_leaves(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(x)) for i, x in enumerate(leaves)}
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp / "arrays", arrays)
    checkpointer.wait_until_finished()
    meta = [{"name": n, "shape": list(a.shape), "dtype": str(a.dtype)} for n, a in zip(names, arrays.values())]
    (tmp / "structure.json").write_text(json.dumps(meta, indent=0))
    old = path.with_name(path.name + ".old")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)


def exists(path: str | Path) -> bool:
    return (Path(path) / "structure.json").is_file()


def restore(path: str | Path, template, *, ignore_extra: bool = False):
    """Restores the pytree saved at ``path`` into the structure of ``template``.

    Leaves are matched by name. ``ignore_extra=True`` restores a part of a
    checkpoint: its other arrays (e.g. the optimizer state beside the
    parameters of a ``latest`` checkpoint) are skipped.

    Raises:
      ValueError: naming the first leaf that is missing or has another shape.
    """
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    meta = json.loads((path / "structure.json").read_text())
    names, leaves, treedef = _keys_and_leaves(template)
    if not ignore_extra and len(meta) != len(leaves):
        raise ValueError(f"checkpoint {path} holds {len(meta)} arrays but the model expects {len(leaves)}")
    index = {m["name"]: i for i, m in enumerate(meta)}
    positions = []
    for name, leaf in zip(names, leaves):
        pos = index.get(name)
        if pos is None:
            raise ValueError(f"checkpoint {path} does not fit the model: it has no array {name}")
        shape = list(np.shape(leaf))
        if meta[pos]["shape"] != shape:
            raise ValueError(f"checkpoint {path} does not fit the model: {name} {meta[pos]['shape']} where the model has {shape}")
        positions.append(pos)
    # orbax restores the whole item: every saved array is read (in the
    # template's dtype where the template has it), only the template's are kept.
    dtypes = {pos: np.dtype(leaf.dtype) for pos, leaf in zip(positions, leaves)}
    target = {
        f"leaf_{i:05d}": np.zeros(m["shape"], dtypes[i] if i in dtypes else jax.numpy.dtype(m["dtype"])) for i, m in enumerate(meta)
    }
    restored = ocp.StandardCheckpointer().restore(path / "arrays", target)
    return jax.tree_util.tree_unflatten(treedef, [restored[f"leaf_{i:05d}"] for i in positions])
