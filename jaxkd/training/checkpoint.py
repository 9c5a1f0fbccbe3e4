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

    ``ignore_extra=True`` restores a part of a checkpoint: the template's leaves
    are looked up by name and the checkpoint's other arrays (e.g. the optimizer
    state beside the parameters of a ``latest`` checkpoint) are skipped.

    Raises:
      ValueError: naming the first leaf whose name, shape or dtype differs.
    """
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    meta = json.loads((path / "structure.json").read_text())
    names, leaves, treedef = _keys_and_leaves(template)
    if ignore_extra:
        index = {m["name"]: i for i, m in enumerate(meta)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"checkpoint {path} has no array {missing[0]} ({len(missing)} of the model's arrays are missing)")
        positions = [index[n] for n in names]
    else:
        if len(meta) != len(leaves):
            raise ValueError(f"checkpoint {path} holds {len(meta)} arrays but the model expects {len(leaves)}")
        positions = list(range(len(leaves)))
    for pos, name, leaf in zip(positions, names, leaves):
        m = meta[pos]
        shape = list(np.shape(leaf))
        if m["name"] != name or m["shape"] != shape:
            raise ValueError(
                f"checkpoint {path} does not fit the model: {m['name']} {m['shape']} "
                f"where the model has {name} {shape}"
            )
    # Every saved array is read (orbax restores the whole item); only the
    # template's are kept.
    dtypes = [jax.numpy.dtype(m["dtype"]) for m in meta]
    for pos, leaf in zip(positions, leaves):
        dtypes[pos] = np.dtype(leaf.dtype)
    target = {f"leaf_{i:05d}": np.zeros(m["shape"], dtypes[i]) for i, m in enumerate(meta)}
    restored = ocp.StandardCheckpointer().restore(path / "arrays", target)
    return jax.tree_util.tree_unflatten(treedef, [restored[f"leaf_{i:05d}"] for i in positions])
