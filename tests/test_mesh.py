"""Data parallelism over a mesh of 4 devices (forced host devices, in a
subprocess): a teacher's losses, dev F1 and results are the same as on one
device, and a checkpoint saved on 4 devices resumes on 4, on 2 and on 1. (A
distilling student on 4 devices, with its teacher's targets, is
tests/test_processes.py's: 2 processes of 2 devices each.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxkd.training.loop import run
from tests.runs import tiny_config

ROOT = Path(__file__).resolve().parents[1]
TEACHER = {"train.epochs": 3, "train.head_lr": 3e-2}  # the teacher fixture's training (tests/conftest.py)

SCRIPT = r"""
import json, shutil, sys
from pathlib import Path
import jax
from jaxkd.training.loop import TrainingError, run
from jaxkd.training.mesh import Placement
from tests.runs import tiny_config

ckpt, data, out = sys.argv[1:4]
out = Path(out)
assert jax.device_count() == 4, jax.devices()
TEACHER = json.loads(sys.argv[4])
res = {}
on_four = tiny_config(ckpt, data, **TEACHER, **{"mesh.data": 4})
# Saved on 4 devices after epoch 1, then copied: resumed on 4 (teacher4) and
# on 2 here, on 1 in the test's process.
run(on_four, out / "teacher4", stop_after_epochs=1)
for n in (1, 2):
    shutil.copytree(out / "teacher4", out / f"resume{n}")
res["teacher4"] = run(on_four, out / "teacher4")
res["resumed_on_2"] = run(tiny_config(ckpt, data, **TEACHER, **{"mesh.data": 2}), out / "resume2")
try:
    run(tiny_config(ckpt, data, **TEACHER, **{"mesh.data": 3}), out / "three")
except TrainingError as err:
    res["three"] = str(err)
batch = Placement(4).rows(jax.numpy.zeros((16, 8)))
res["shards"] = [list(s.data.shape) for s in batch.addressable_shards]
# The head fit's normal equations summed over 4 devices (all-reduced) against one.
from jaxkd.training.head_fit import fit_head
from tests.test_head_fit import _setup
parts, batches, targets_of = _setup()
one = fit_head(parts, parts.params, parts.rest, batches, targets_of)[0]
place = Placement(4)
split_of = lambda b: targets_of(b)._replace(emissions=place.rows(targets_of(b).emissions))
four = fit_head(parts, place.replicate(parts.params), place.replicate(parts.rest), batches, split_of, place=place)[0]
res["fit_head_scale"] = max(float(abs(x).max()) for x in jax.tree_util.tree_leaves(one))
res["fit_head_diff"] = max(
    float(abs(x - y).max()) for x, y in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(four))
)
(out / "results.json").write_text(json.dumps(res))
"""


@pytest.fixture(scope="module")
def four(assets, teacher, tmp_path_factory):
    _, ckpt, data = assets
    out = tmp_path_factory.mktemp("mesh")
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ckpt), str(data), str(out), json.dumps(TEACHER)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    # One device resumes here, with the programs the teacher fixture compiled.
    res["resumed_on_1"] = run(tiny_config(ckpt, data, **TEACHER, **{"mesh.data": 1}), out / "resume1")
    return res


def _same_run(a: dict, b: dict) -> None:
    np.testing.assert_allclose([e["loss"] for e in a["epochs"]], [e["loss"] for e in b["epochs"]], rtol=1e-5)
    assert [e["dev_score"] for e in a["epochs"]] == [e["dev_score"] for e in b["epochs"]]
    assert a["test"]["f1"] == b["test"]["f1"]


def test_four_devices_train_as_one(four, teacher):
    assert four["shards"] == [[4, 8]] * 4  # a batch's rows split over the data axis
    assert four["teacher4"]["mesh"] == {"devices": 4, "processes": 1, "axes": {"data": 4, "model": 1}}
    assert teacher[1]["mesh"]["devices"] == 1
    _same_run(four["teacher4"], teacher[1])


def test_the_head_fit_sums_its_normal_equations_over_devices(four):
    assert four["fit_head_diff"] <= 1e-4 * four["fit_head_scale"], (four["fit_head_diff"], four["fit_head_scale"])


def test_a_checkpoint_saved_on_four_devices_resumes_on_one_and_two(four, teacher):
    for n in (1, 2):
        assert four[f"resumed_on_{n}"]["mesh"]["devices"] == n
        _same_run(four[f"resumed_on_{n}"], teacher[1])


def test_a_batch_that_does_not_divide_is_refused(four):
    assert "train.batch_size = 16 is not divisible by the 3 devices" in four["three"]
