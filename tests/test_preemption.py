"""A SIGTERM, as a batch scheduler sends before it preempts a run (or
Ctrl-C's SIGINT), stops the run after its current step, saved there; the
rerun continues from that step and ends bit for bit as a run never
interrupted. The signals are real (``os.kill`` of the test's own process, at
chosen points of the run)."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from jaxkd.training import faults
from jaxkd.training.checkpoints import Checkpoints
from jaxkd.training.loop import Preempted, TrainingError, run
from tests.runs import final_state, tiny_config, write_corpus
from tests.tiny_bert import write_tiny_checkpoint


def _preempted(cfg, workdir, point: str, monkeypatch) -> str:
    """Runs in ``workdir`` with a signal at ``point`` (``JAXKD_KILL_AT``); the message it stopped with."""
    monkeypatch.setenv("JAXKD_KILL_AT", point)
    faults.reset()
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(Preempted) as stop:
            run(cfg, workdir)
    finally:
        monkeypatch.delenv("JAXKD_KILL_AT")
    # the run's handlers are gone
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is on_ctrl_c
    assert not (workdir / "results.json").exists()
    return str(stop.value)


def _mid_epoch_steps(workdir) -> list[int]:
    mid = workdir / "mid_epoch"
    return sorted(int(p.name) for p in mid.iterdir() if p.name.isdigit()) if mid.is_dir() else []


@pytest.mark.slow
def test_a_sigterm_saves_after_the_current_step_and_the_rerun_ends_bit_for_bit(tmp_path, monkeypatch):
    ckpt = write_tiny_checkpoint(tmp_path / "bert", num_layers=2, max_positions=64)
    data = write_corpus(tmp_path / "data")
    cfg = tiny_config(ckpt, data, **{"train.epochs": 2})  # 2 epochs of 6 steps
    run(cfg, tmp_path / "full")
    expected_results, expected_params = final_state(tmp_path / "full")

    # In the middle of epoch 1 (SIGTERM as its step 3 is dispatched), then
    # Ctrl-C in the rerun (at its second step: epoch 1's fifth): each stop is
    # saved as the run's step, the second replacing the first.
    mid = tmp_path / "mid"
    message = _preempted(cfg, mid, "step:3:TERM", monkeypatch)
    assert "in epoch 1, after its step 3 of 6" in message and str(mid / "mid_epoch") in message
    assert _mid_epoch_steps(mid) == [3] and Checkpoints(mid).step("latest") is None
    with pytest.raises(TrainingError, match="different configuration"):  # pinned, as by an epoch's checkpoint
        run(tiny_config(ckpt, data, **{"train.epochs": 2, "train.batch_size": 8}), mid)
    assert "stopped on SIGINT in epoch 1, after its step 5" in _preempted(cfg, mid, "step:2:INT", monkeypatch)
    assert _mid_epoch_steps(mid) == [5]
    # At the last step of an epoch the epoch ends and its own checkpoint is the
    # stop; so with a SIGTERM inside that save (orbax writing the step).
    ends = tmp_path / "epoch_end"
    assert "after epoch 1" in _preempted(cfg, ends, "step:6:TERM", monkeypatch)
    during_save = tmp_path / "during_save"
    assert "after epoch 1" in _preempted(cfg, during_save, "save:2:TERM", monkeypatch)
    for workdir in (ends, during_save):
        assert Checkpoints(workdir).step("latest") == 0 and _mid_epoch_steps(workdir) == []

    # Checkpoints every 4 steps: written after step 4 of each epoch, then
    # replaced by the epoch's own; the run ends as without them.
    every = tmp_path / "every"
    log = tmp_path / "points.log"
    monkeypatch.setenv("JAXKD_FAULT_LOG", str(log))
    faults.reset()
    run(tiny_config(ckpt, data, **{"train.epochs": 2, "checkpoint.every_steps": 4}), every)
    monkeypatch.delenv("JAXKD_FAULT_LOG")
    saves = [line.split()[2] for line in log.read_text().splitlines() if line.split()[1] == "save"]
    assert saves == ["before-save", "writing", "committed", "saved"] * 4, saves

    for workdir in (mid, ends, during_save, every):
        if workdir is not every:
            run(cfg, workdir)
        results, params = final_state(workdir)
        assert results == expected_results, workdir.name
        for got, want in zip(params, expected_params, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=workdir.name)
        assert _mid_epoch_steps(workdir) == []  # removed once the epoch's own checkpoint was saved
