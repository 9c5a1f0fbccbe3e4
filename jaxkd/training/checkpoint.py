"""Orbax checkpoints of arbitrary pytrees, restored into a template.

A pytree is saved as a flat ``{"leaf_00000": array, ...}`` dictionary (plain
arrays only: nothing from a checkpoint is ever executed or unpickled) with a
``structure.json`` beside it (each array's name, shape and dtype, and the
SHA-256 of every file orbax wrote, checked before anything is read back);
restoring needs a template with the same structure (built by the same code),
and a mismatch or a corrupt array is a clear error rather than silently
mis-assigned or damaged weights.

A checkpoint may carry a small JSON ``state`` (the training loop's epoch
counter and history) in the same directory: the arrays and the state are
committed by one rename, so a kill at any moment leaves either the old
checkpoint with its state or the new one with its state, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np

STATE_FILE = "state.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose contents are damaged."""


def _keys_and_leaves(tree):
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path) for path, _ in flat]
    return names, [leaf for _, leaf in flat], treedef


def _write_json(path: Path, value) -> None:
    """Writes and flushes to disk before returning (a later rename publishes it)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=0)
        f.flush()
        os.fsync(f.fileno())


def save(path: str | Path, tree, *, state: dict | None = None) -> None:
    """Saves ``tree`` (and the JSON-able ``state``) to directory ``path``,
    replacing it atomically: everything is written to ``path.tmp``, then the
    old directory is moved to ``path.old``, the new one renamed into place and
    the old one removed (:func:`recover` completes an interrupted swap)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    names, leaves, _ = _keys_and_leaves(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(x)) for i, x in enumerate(leaves)}
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp / "arrays", arrays)
    checkpointer.wait_until_finished()
    meta = [{"name": n, "shape": list(a.shape), "dtype": str(a.dtype)} for n, a in zip(names, arrays.values())]
    if state is not None:
        _write_json(tmp / STATE_FILE, state)
    files = _file_digests(tmp / "arrays")
    _write_json(tmp / "structure.json", {"arrays": meta, "files": files})  # last: marks a complete directory
    _fault_point("before-swap")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
        _fault_point("old-moved")
    tmp.rename(path)
    _fault_point("new-in-place")
    if old.exists():
        shutil.rmtree(old)
    _fault_point("saved")


def _file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory``, by relative path."""
    out = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[str(file.relative_to(directory))] = digest.hexdigest()
    return out


def _check_files(arrays: Path, expected: dict[str, str]) -> None:
    """Compares the array files with the digests saved beside them (before any
    is handed to orbax, whose reader reports damage with stray tracebacks)."""
    found = _file_digests(arrays)
    for name, digest in expected.items():
        if name not in found:
            raise CheckpointError(f"{arrays / name}: missing; the checkpoint is incomplete (restore it from a copy, or delete it to train again)")
        if found[name] != digest:
            raise CheckpointError(
                f"{arrays / name}: does not match the checksum it was saved with; the checkpoint is damaged "
                "(restore it from a copy, or delete it to train again)"
            )


def recover(path: str | Path) -> None:
    """Completes a save interrupted between its renames: the new directory is
    kept if it was renamed into place, else the old one is moved back."""
    path = Path(path).absolute()
    old = path.with_name(path.name + ".old")
    if not exists(path) and exists(old):
        if path.exists():
            shutil.rmtree(path)
        old.rename(path)
    elif old.exists():
        shutil.rmtree(old)


def read_state(path: str | Path) -> dict | None:
    """The ``state`` saved with the checkpoint at ``path`` (None if it has none)."""
    file = Path(path) / STATE_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as err:
        raise CheckpointError(f"{file}: damaged ({err}); delete the checkpoint directory {path} to start over") from None


def read_loop_state(ckpt_dir: str | Path) -> dict | None:
    """A run's loop state (epoch, history, best): saved inside ``latest``, or,
    by runs from before that, beside it in ``<ckpt_dir>/state.json``."""
    ckpt_dir = Path(ckpt_dir)
    return read_state(ckpt_dir / "latest") or read_state(ckpt_dir)


def _fault_point(name: str) -> None:
    """Test hook: ``JAXKD_KILL_AT=<n>`` kills the process (SIGKILL) at the n-th
    point between the file operations of a save (counted from 1), so that the
    tests can check a resume from every such moment."""
    target = os.environ.get("JAXKD_KILL_AT")
    if not target:
        return
    global _FAULT_COUNT
    _FAULT_COUNT += 1
    log = os.environ.get("JAXKD_FAULT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{_FAULT_COUNT} {name}\n")
    if _FAULT_COUNT == int(target):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNT = 0


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
    try:
        meta = json.loads((path / "structure.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} holds no checkpoint (no structure.json)") from None
    except ValueError as err:
        raise CheckpointError(f"{path / 'structure.json'}: damaged ({err})") from None
    if isinstance(meta, dict):  # since file checksums; before: the list of arrays alone
        _check_files(path / "arrays", meta["files"])
        meta = meta["arrays"]
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
    try:
        restored = ocp.StandardCheckpointer().restore(path / "arrays", target)
    except Exception as err:  # noqa: BLE001 - orbax/tensorstore raise many kinds
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise CheckpointError(f"{path / 'arrays'}: cannot be read ({type(err).__name__}: {first})") from None
    return jax.tree_util.tree_unflatten(treedef, [restored[f"leaf_{i:05d}"] for i in positions])
