"""One writer per workdir (jaxkd/training/workdir_lock.py): a second run in a
workdir that a live process holds is refused at once, naming that process;
a lock left by a killed process is taken over with a note."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jaxkd.training import workdir_lock
from jaxkd.training.loop import TrainingError, run
from tests.runs import tiny_config

ROOT = Path(__file__).resolve().parents[1]
HOLDER = (
    "import sys; from pathlib import Path; from jaxkd.training.workdir_lock import hold\n"
    "with hold(Path(sys.argv[1])):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)


def _holder(workdir: Path) -> subprocess.Popen:
    """A process that holds ``workdir``'s lock until its standard input closes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_holder_and_writes_nothing(assets, tmp_path):
    _, ckpt, data = assets
    workdir = tmp_path / "run"
    holder = _holder(workdir)
    try:
        with pytest.raises(TrainingError) as err:
            run(tiny_config(ckpt, data), workdir)
        message = str(err.value)
        assert "another run is writing this workdir" in message
        assert f"process {holder.pid} on host {socket.gethostname()}" in message
        assert sorted(p.name for p in workdir.iterdir()) == [workdir_lock.NAME]  # no config, no checkpoint
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (workdir / workdir_lock.NAME).exists()  # a run that ends removes its lock


def test_a_killed_holders_lock_is_taken_over_with_a_note(tmp_path):
    workdir = tmp_path / "run"
    holder = _holder(workdir)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    left = json.loads((workdir / workdir_lock.NAME).read_text())
    assert left["pid"] == holder.pid and left["host"] == socket.gethostname()
    notes = []
    with workdir_lock.hold(workdir, note=notes.append):
        mine = json.loads((workdir / workdir_lock.NAME).read_text())
        assert mine["pid"] == os.getpid()
        with pytest.raises(workdir_lock.WorkdirInUse, match=f"process {os.getpid()} "):
            with workdir_lock.hold(workdir, note=notes.append):  # held: even this process is refused
                pass
    assert len(notes) == 1 and f"process {holder.pid}" in notes[0] and "taking the lock over" in notes[0]
    assert not (workdir / workdir_lock.NAME).exists()
    with workdir_lock.hold(workdir, note=notes.append):  # a clean end leaves nothing to take over
        pass
    assert len(notes) == 1
    with workdir_lock.hold(workdir, main=False, note=notes.append):  # processes other than 0 take no lock
        assert not (workdir / workdir_lock.NAME).exists()
