"""A run killed (SIGKILL) at any moment resumes to the same final result as a
run never interrupted, bit for bit: at every point of the first and of the
last epoch's save (before orbax starts; while it writes the step's temporary
directory; after its commit, before the digests; after) and at a step in the
middle of an epoch, each in a real subprocess killed by the kernel, then resumed (in the
test's process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxkd.training import faults
from jaxkd.training.checkpoints import CheckpointError, Checkpoints
from jaxkd.training.loop import run
from tests.runs import final_state, tiny_config, write_corpus
from tests.tiny_bert import write_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent


def _script(ckpt: Path, data: Path, workdir: Path) -> str:
    return (
        "import sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.runs import tiny_config\n"
        "from jaxkd.training.loop import run\n"
        f"run(tiny_config(Path({str(ckpt)!r}), Path({str(data)!r}), **{{'train.epochs': 2}}), Path({str(workdir)!r}))\n"
    )


def _popen(ckpt, data, workdir, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _script(ckpt, data, workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
    )


def _damage_unverified_step(step_dir: Path) -> None:
    """A step committed but never checksummed: a reader refuses it, and its
    weights are damaged here, which a resume must redo rather than read."""
    assert not (step_dir / "digests.json").exists()
    with pytest.raises(CheckpointError, match="not trusted"):
        Checkpoints(step_dir.parent.parent).loop_state()
    for file in (f for f in (step_dir / "params").rglob("*") if f.is_file() and f.stat().st_size > 64):
        data = bytearray(file.read_bytes())
        data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)
        file.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_kill_at_any_moment_of_a_save_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    ckpt = write_tiny_checkpoint(tmp_path / "bert", num_layers=2, max_positions=64)
    data = write_corpus(tmp_path / "data")
    cfg = tiny_config(ckpt, data, **{"train.epochs": 2})
    run(cfg, tmp_path / "full")
    assert run(cfg, tmp_path / "after1", stop_after_epochs=1) == {"interrupted_after_epoch": 1}
    expected_results, expected_params = final_state(tmp_path / "full")
    # A run stopped between epochs resumes to the same result (losses per epoch,
    # dev and test F1, weights); on the way, the kill points of its epoch-2 saves are listed.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "after1", resumed)
    log = tmp_path / "points.log"
    monkeypatch.setenv("JAXKD_FAULT_LOG", str(log))
    faults.reset()
    run(cfg, resumed)
    monkeypatch.delenv("JAXKD_FAULT_LOG")
    results, params = final_state(resumed)
    assert results == expected_results and results["epochs"][1]["loss"] > 0
    for got, want in zip(params, expected_params):
        np.testing.assert_array_equal(got, want)
    points = [p for p in log.read_text().split("\n")[:-1] if p.split()[1] == "save"]
    assert [p.split()[2] for p in points] == ["before-save", "writing", "committed", "saved"], points

    # Kill at each point of epoch 2's save and of epoch 1's (the first: no
    # checkpoint before it), and at a step in the middle of epoch 2 (two
    # processes at a time), then resume in this process.
    kills = [(f"save:{k}", f"epoch 2 {point}", True) for k, point in enumerate(points, 1)]
    kills += [(f"save:{k}", f"epoch 1 {point}", False) for k, point in enumerate(points, 1)]
    kills += [("step:3", "step 3 of epoch 2", True)]

    def start(i):
        workdir = tmp_path / f"kill{i}"
        if kills[i][2]:  # from the end of epoch 1
            shutil.copytree(tmp_path / "after1", workdir)
        return i, workdir, _popen(ckpt, data, workdir, JAXKD_KILL_AT=kills[i][0])

    pending = [start(i) for i in range(2)]
    while pending:
        i, workdir, proc = pending.pop(0)
        if i + 2 < len(kills):
            pending.append(start(i + 2))
        point = kills[i][1]
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == -9, f"point {point}: not killed ({proc.returncode}) {stderr[-1000:]}"
        assert not (workdir / "results.json").exists()
        unfinished = [p.name for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]
        assert bool(unfinished) == point.endswith("writing"), (point, unfinished)
        if point.endswith("committed"):  # committed, no digests yet: the step must not be trusted
            _damage_unverified_step(workdir / "checkpoints" / str(int(point.split()[1]) - 1))
        run(cfg, workdir)
        # removed by the resumed run
        assert not [p.name for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]
        results, params = final_state(workdir)
        assert results == expected_results, f"point {point}"
        assert len(params) == len(expected_params)
        for got, want in zip(params, expected_params):
            np.testing.assert_array_equal(got, want, err_msg=f"point {point}")
