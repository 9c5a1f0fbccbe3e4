"""Runs on disk in the layout of jaxkd before 2026-11 (``checkpoints/best`` and
``latest`` with ``structure.json``): refused with the command that converts
them, and converted to the same weights, loop state and resumable run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxkd.convert_run import _optimizer_template, main
from jaxkd.training.checkpoints import CheckpointError, Checkpoints, file_digests
from jaxkd.training.loop import run
from jaxkd.training.run_dir import load_run, read_run
from jaxkd.training.steps import split
from tests.runs import tiny_config


def _write_legacy(path: Path, tree, state: dict | None = None) -> None:
    """A checkpoint as jaxkd wrote them before 2026-11: a flat dictionary of
    arrays, their names in structure.json (with file digests), the loop state."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    arrays = {f"leaf_{i:05d}": np.asarray(leaf) for i, (_, leaf) in enumerate(flat)}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((path / "arrays").absolute(), arrays)
    checkpointer.wait_until_finished()
    meta = [
        {"name": jax.tree_util.keystr(p), "shape": list(a.shape), "dtype": str(a.dtype)}
        for (p, _), a in zip(flat, arrays.values())
    ]
    if state is not None:
        (path / "state.json").write_text(json.dumps(state))
    (path / "structure.json").write_text(json.dumps({"arrays": meta, "files": file_digests(path / "arrays")}))


def test_an_old_run_is_refused_then_converted_and_resumes(assets, teacher, tmp_path, capsys, monkeypatch):
    _, ckpt, data = assets
    copy = tmp_path / "old"
    shutil.copytree(teacher[0], copy)
    saved = Checkpoints(copy)
    loop = saved.loop_state()
    params = split(read_run(copy).tagger()).params
    latest = saved.restore("latest", params=params, opt_state=_optimizer_template(copy, params))
    # An old run whose best epoch (the second) is not its latest: other weights, a higher dev F1.
    best_step = 1
    assert loop["epoch"] > best_step
    best = jax.tree_util.tree_map(lambda x: x + 1, saved.restore("latest", params=params)["params"])
    for row in loop["history"]:  # the old layout's name of the dev score
        row["dev_f1"] = row.pop("dev_score")
    loop["history"][best_step]["dev_f1"] = 100.0
    loop["best"] = {"epoch": best_step, "dev_f1": 100.0}
    shutil.rmtree(copy / "checkpoints")
    _write_legacy(copy / "checkpoints" / "latest", latest, state=loop)
    _write_legacy(copy / "checkpoints" / "best", {"params": best})

    with pytest.raises(CheckpointError, match=rf"python -m jaxkd.convert_run {copy}"):
        load_run(copy)
    monkeypatch.chdir(tmp_path)  # a relative workdir, as typed
    assert main([copy.name]) == 0
    assert f"best epoch {best_step + 1}, latest epoch {loop['epoch'] + 1}" in capsys.readouterr().out
    converted = Checkpoints(copy)
    restored = (converted.step("best"), converted.step("latest"), converted.loop_state())
    assert restored == (best_step, loop["epoch"], loop)
    for got, want in zip(jax.tree_util.tree_leaves(load_run(copy, "best").params), jax.tree_util.tree_leaves(best)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert main([str(copy)]) == 2  # converted already: an error, not a second conversion
    assert "converted already" in capsys.readouterr().err
    # The converted run resumes: one more epoch after the saved ones.
    changes = {
        "train.epochs": loop["epoch"] + 2,
        "train.head_lr": 3e-2,
        "timing.forward_batches": -1,
        "log.tensorboard": True,
    }
    results = run(tiny_config(ckpt, data, **changes), copy)
    assert [e["epoch"] for e in results["epochs"]] == list(range(1, loop["epoch"] + 3))
    assert results["epochs"][: loop["epoch"] + 1] == loop["history"]
    assert results["best_epoch"] == best_step + 1  # nothing beats 100 (of equal scores the earlier is best)
    for got, want in zip(jax.tree_util.tree_leaves(load_run(copy, "best").params), jax.tree_util.tree_leaves(best)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

