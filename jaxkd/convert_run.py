"""Converts the checkpoints of a run trained by jaxkd before 2026-11 to the
current layout (:mod:`jaxkd.training.run_dir`), in place:

    python -m jaxkd.convert_run runs/demo/teacher

The old layout kept ``checkpoints/best`` (parameters) and ``checkpoints/latest``
(parameters, optimizer state and ``state.json``), each a flat dictionary of
arrays with their names in ``structure.json``. They become the steps of the
best and the latest epoch; the old directory is kept as
``checkpoints.legacy`` (delete it once the run loads).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxkd.training.checkpoints import CheckpointError, Checkpoints, check_files, is_legacy
from jaxkd.training.run_dir import read_run
from jaxkd.training.steps import make_optimizer, split


def _legacy_dir(directory: Path, name: str) -> Path | None:
    """``name``, or ``name.old`` where a save was cut short between its renames."""
    for candidate in (directory / name, directory / f"{name}.old"):
        if (candidate / "structure.json").is_file():
            return candidate
    return None


def _legacy_restore(path: Path, template: dict) -> dict:
    """The arrays of an old-layout checkpoint, by name, into ``template``'s
    structure (its other arrays are skipped)."""
    meta = json.loads((path / "structure.json").read_text())
    if isinstance(meta, dict):  # with file checksums; the oldest runs saved the list alone
        check_files(path / "arrays", meta["files"])
        meta = meta["arrays"]
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    index = {m["name"]: i for i, m in enumerate(meta)}
    positions = []
    for key_path, leaf in flat:
        name = jax.tree_util.keystr(key_path)
        if name not in index or list(meta[index[name]]["shape"]) != list(leaf.shape):
            raise CheckpointError(f"{path}: its array {name} is missing or has another shape than the run's model")
        positions.append(index[name])
    target = {f"leaf_{i:05d}": np.zeros(m["shape"], jax.numpy.dtype(m["dtype"])) for i, m in enumerate(meta)}
    restored = ocp.StandardCheckpointer().restore(path / "arrays", target)
    return jax.tree_util.tree_unflatten(treedef, [restored[f"leaf_{i:05d}"] for i in positions])


def _optimizer_template(workdir: Path, params):
    train = json.loads((workdir / "config.json").read_text())["train"]
    optimizer = make_optimizer(
        params, encoder_lr=train["encoder_lr"], head_lr=train["head_lr"], total_steps=1,
        warmup_fraction=train["warmup_fraction"], weight_decay=train["weight_decay"], clip_norm=train["clip_norm"],
    )
    return jax.eval_shape(optimizer.init, params)


def convert(workdir: str | Path) -> tuple[int, int]:
    """Converts ``<workdir>/checkpoints`` in place; returns the (best, latest) epochs."""
    workdir = Path(workdir).absolute()  # orbax reads absolute paths only
    new, kept = workdir / "checkpoints", workdir / "checkpoints.legacy"
    if is_legacy(new):
        old = new
    elif is_legacy(kept):  # a conversion cut short: start it again
        old = kept
    else:
        raise CheckpointError(
            f"{new} holds no checkpoints of the old layout (best/ and latest/ with structure.json): nothing to convert"
        )
    latest, best = _legacy_dir(old, "latest"), _legacy_dir(old, "best")
    state_file = next(
        (p for p in (latest / "state.json" if latest else None, old / "state.json") if p and p.is_file()), None
    )
    if latest is None or best is None or state_file is None:
        raise CheckpointError(f"{old}: the old layout needs best/, latest/ and the loop state; this run has "
                              f"{', '.join(p.name for p in sorted(old.iterdir()))}")
    state = json.loads(state_file.read_text())
    if old == kept and new.is_dir() and Checkpoints(workdir).step("latest") == state["epoch"]:
        raise CheckpointError(f"{new} is converted already (the old files are in {kept})")
    params = split(read_run(workdir).tagger()).params
    tree = _legacy_restore(latest, {"params": params, "opt_state": _optimizer_template(workdir, params)})
    best_params = _legacy_restore(best, {"params": params})["params"]
    epoch, best_epoch, history = state["epoch"], state["best"]["epoch"], state["history"]
    if old == new:
        new.rename(kept)
    elif new.exists():
        shutil.rmtree(new)
    checkpoints = Checkpoints(workdir, writable=True)
    if best_epoch != epoch:
        loop = {"epoch": best_epoch, "history": history[: best_epoch + 1], "best": state["best"]}
        checkpoints.save(
            best_epoch, params=best_params, opt_state=None, loop_state=loop, dev_score=state["best"]["dev_f1"]
        )
    checkpoints.save(
        epoch, params=tree["params"], opt_state=tree["opt_state"], loop_state=state, dev_score=history[epoch]["dev_f1"]
    )
    return best_epoch, epoch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxkd.convert_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", help="run workdirs whose checkpoints are in the old layout")
    args = parser.parse_args(argv)
    for workdir in args.workdirs:
        try:
            best, latest = convert(workdir)
        except (CheckpointError, FileNotFoundError, ValueError, KeyError) as err:
            print(f"error: {workdir}: {err}", file=sys.stderr)
            return 2
        print(f"{workdir}: converted (best epoch {best + 1}, latest epoch {latest + 1}); "
              f"the old files are in {Path(workdir) / 'checkpoints.legacy'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
