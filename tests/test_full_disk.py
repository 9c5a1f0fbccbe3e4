"""A real full disk (a small tmpfs; the tests run as root): the save that
does not fit is one error naming the checkpoint directory and the space a
checkpoint needs, the previous checkpoint stays whole, and once there is
space the same run resumes to the uninterrupted result, bit for bit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxkd.training.loop import run
from tests.runs import final_state, tiny_config

ROOT = Path(__file__).resolve().parents[1]


def _mount(path, size: str, *, remount: bool = False) -> subprocess.CompletedProcess:
    options = f"remount,size={size}" if remount else f"size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = shutil.which("mount") and _mount(disk, "800k").returncode == 0
    if not mounted:
        pytest.skip("mounting a tmpfs is refused here (the test needs root and a kernel that allows it)")
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_keeps_the_last_checkpoint_and_the_run_resumes(assets, small_disk, tmp_path):
    _, ckpt, data = assets
    cfg = tiny_config(ckpt, data)  # 2 epochs: the first save fits in 800k, the second does not
    config_file = tmp_path / "cfg.py"
    config_file.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom tests.runs import tiny_config\n"
        f"def get_config():\n    return tiny_config({str(ckpt)!r}, {str(data)!r})\n"
    )
    workdir = small_disk / "run"
    proc = subprocess.run([sys.executable, "-m", "jaxkd.train", "--config", str(config_file), "--workdir",
                           str(workdir)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("[jaxkd]")]
    assert len(errors) == 1, proc.stderr[-3000:]  # no traceback of orbax's writer threads either
    assert errors[0].startswith(f"jaxkd.train: error: {workdir}/checkpoints: No space left on device")
    assert "a checkpoint needs about" in errors[0] and "epoch 1's checkpoint is kept" in errors[0]
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["0"]
    assert not (workdir / "results.json").exists()

    assert _mount(small_disk, "16m", remount=True).returncode == 0  # space freed
    run(cfg, workdir)
    run(cfg, tmp_path / "uninterrupted")
    results, params = final_state(workdir)
    expected_results, expected_params = final_state(tmp_path / "uninterrupted")
    assert results == expected_results
    for got, want in zip(params, expected_params, strict=True):
        np.testing.assert_array_equal(got, want)
