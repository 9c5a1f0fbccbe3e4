"""Several processes training one run (``jax.distributed`` on 127.0.0.1, two
processes of two forced CPU devices each, launched through the command line,
a checkpoint every 4 steps): a SIGTERM to one process stops both at the same
step, saved there (exit code 75); the rerun's second process is then killed
(SIGKILL) in the middle of epoch 2; the run started again ends bit for bit
as a two-process run never interrupted, and with one device's losses, dev F1
and test F1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from jaxkd.training.preemption import EXIT_CODE
from tests.runs import final_state

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
import sys
sys.path.insert(0, {root!r})
from tests.runs import tiny_config


def get_config(teacher):  # the student fixture's configuration (tests/conftest.py)
    changes = {{"mode": "student", "distill.method": "efficient", "model.num_layers": 1, "teacher_workdir": teacher,
               "checkpoint.every_steps": 4}}
    return tiny_config({ckpt!r}, {data!r}, **changes)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(config: Path, arg: str, workdir: Path, *, kill_at: str | None = None):
    """Both processes of a run; process 1 kills itself, or sends itself
    SIGTERM, at ``kill_at`` (``JAXKD_KILL_AT``: jaxkd/training/faults.py)."""
    port = _free_port()
    procs = []
    for i in range(2):
        pythonpath = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=pythonpath)
        env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        if kill_at is not None and i == 1:
            env["JAXKD_KILL_AT"] = kill_at
        command = [
            sys.executable, "-m", "jaxkd.train", "--config", f"{config}:{arg}", "--workdir", str(workdir),
            "--config.mesh.data=0", "--coordinator_address", f"127.0.0.1:{port}",
            "--num_processes", "2", "--process_id", str(i),
        ]
        # Standard error to a file, not a pipe: a process that fills a pipe no
        # one reads yet blocks, and the other then waits for it forever.
        err = tempfile.TemporaryFile("w+")
        procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True))
        procs[-1].err = err
    return procs


def _finish(procs, code: int = 0) -> list[str]:
    for p in procs:
        p.wait(timeout=300)
    errs = []
    for p in procs:
        p.err.seek(0)
        errs.append(p.err.read())
        p.err.close()
        assert p.returncode == code, errs[-1][-3000:]
    return errs


@pytest.fixture(scope="module")
def two_processes(assets, teacher, tmp_path_factory):
    """The student fixture's run (an efficient student of the tiny teacher: 2
    epochs of 6 steps) over 2 processes, uninterrupted; and again with a
    SIGTERM to process 1 at its 3rd step, rerun with process 1 killed at its
    7th (the fifth of epoch 2), then rerun to the end."""
    _, ckpt, data = assets
    out = tmp_path_factory.mktemp("processes")
    config = out / "tiny.py"
    config.write_text(CONFIG.format(root=str(ROOT), ckpt=str(ckpt), data=str(data)))
    teacher_dir = str(teacher[0])
    whole = _start(config, teacher_dir, out / "whole")  # beside the first of the interrupted runs
    stopped = _finish(_start(config, teacher_dir, out / "student", kill_at="step:3:TERM"), code=EXIT_CODE)
    _finish(whole)
    procs = _start(config, teacher_dir, out / "student", kill_at="step:7")
    procs[1].wait(timeout=300)
    killed = procs[1].returncode
    procs[0].send_signal(signal.SIGKILL)  # the other waits for it forever (as a cluster would end the job)
    procs[0].wait(timeout=60)
    for p in procs:
        p.err.close()
    saved_before = {d: sorted(p.name for p in (out / "student" / d).iterdir() if p.name.isdigit())
                    for d in ("checkpoints", "mid_epoch")}
    logs = _finish(_start(config, teacher_dir, out / "student"))
    return {
        "stopped": stopped,
        "killed": killed,
        "steps_before_resume": saved_before,
        "whole": final_state(out / "whole"),
        "resumed": final_state(out / "student"),
        "results": json.loads((out / "student" / "results.json").read_text()),
        "logs": logs,
    }


@pytest.mark.slow
def test_preempted_and_killed_processes_resume_and_two_processes_train_as_one_device(two_processes, student):
    r = two_processes
    # Process 0 never got the signal: it stopped with process 1, at the checkpoint after step 4.
    assert "stopped on a signal to another process in epoch 1, after its step 4 of 6" in r["stopped"][0]
    assert "[jaxkd]" not in r["stopped"][1]  # process 0 alone logs
    assert r["killed"] == -signal.SIGKILL
    assert r["steps_before_resume"] == {"checkpoints": ["0"], "mid_epoch": ["10"]}  # epoch 2, after its step 4
    assert "resuming" in r["logs"][0] and "in epoch 2, after its step 4" in r["logs"][0]
    assert r["results"]["mesh"] == {"devices": 4, "processes": 2, "axes": {"data": 4, "model": 1}}
    results, params = r["resumed"]
    assert results == r["whole"][0]
    for got, want in zip(params, r["whole"][1], strict=True):
        np.testing.assert_array_equal(got, want)
    # The same losses, dev F1 and test F1 as one device: the steps, and the
    # teacher targets cached from both processes' rows (gathered).
    np.testing.assert_allclose(
        [e["loss"] for e in r["results"]["epochs"]], [e["loss"] for e in student[1]["epochs"]], rtol=1e-5
    )
    assert [e["dev_score"] for e in r["results"]["epochs"]] == [e["dev_score"] for e in student[1]["epochs"]]
    assert r["results"]["test"]["f1"] == student[1]["test"]["f1"]


def test_process_flags_go_together():
    proc = subprocess.run(
        [
            sys.executable, "-m", "jaxkd.train", "--config", str(ROOT / "configs" / "wnut16_minilm.py"),
            "--workdir", "/nonexistent", "--coordinator_address", "127.0.0.1:1",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "--coordinator_address, --num_processes and --process_id go together" in proc.stderr
