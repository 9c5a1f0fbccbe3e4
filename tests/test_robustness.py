"""Bad input and faults, as a user meets them: each test names the defect it
guards against (issue #15) and fails on the code that had it."""

from __future__ import annotations

import errno
import gc
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxkd.data.tokenization import SubwordEncoder
from jaxkd.training.checkpoints import CheckpointError, Checkpoints
from jaxkd.training.loop import TrainingError, run
from jaxkd.training.teacher import tokenizer_difference
from tests.runs import tiny_config
from tests.tiny_bert import write_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent



def _student(assets, teacher_dir, method="kbest", **changes):
    """A student config as test_training's test_every_method_distills builds
    it (same compiled programs, shared through the compilation cache)."""
    _, ckpt, data = assets
    return tiny_config(ckpt, data, **{"mode": "student", "teacher_workdir": str(teacher_dir), "distill.method": method,
                                      "model.num_layers": 1, **changes})


def _copy(teacher, path: Path) -> Path:
    shutil.copytree(teacher[0], path)
    return path


def test_unconstrained_teacher_and_constrained_student_are_refused_for_distribution_methods(assets, teacher, tmp_path):
    loose = _copy(teacher, tmp_path / "loose")
    meta = loose / "model" / "tagger.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "constrained": False}))
    for method in ("kbest", "posterior", "structkd"):
        with pytest.raises(TrainingError, match="unconstrained teacher .* model.constraints = False"):
            run(_student(assets, loose, method), tmp_path / method)


def test_an_unfinished_teacher_needs_a_named_checkpoint(assets, teacher, tmp_path):
    half = _copy(teacher, tmp_path / "half")
    (half / "results.json").unlink()  # as a run stopped after its last save
    with pytest.raises(TrainingError, match="unfinished run .*stopped after epoch 3.*teacher_checkpoint"):
        run(_student(assets, half, "efficient"), tmp_path / "s1")
    results = run(_student(assets, half, "efficient", **{"distill.teacher_checkpoint": "latest"}), tmp_path / "s2")
    assert results["method"] == "efficient"
    empty = tmp_path / "empty"
    shutil.copytree(half / "model", empty / "model")
    with pytest.raises(TrainingError, match="has no 'best' checkpoint"):
        run(_student(assets, empty, "efficient"), tmp_path / "s3")
    with pytest.raises(TrainingError, match="not a jaxkd training workdir"):
        run(_student(assets, tmp_path / "nowhere", "efficient"), tmp_path / "s4")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.encoder_lr", -1e-4, "train.encoder_lr must be >= 0"),
        ("train.head_lr", float("nan"), "train.head_lr must be >= 0"),
        ("model.dropout", 1.5, "model.dropout must be in"),
        ("train.epochs", 0, "train.epochs must be >= 1"),
        ("train.batch_size", -3, "train.batch_size must be >= 1"),
        ("distill.lambda_value", 2.0, "distill.lambda_value must be in"),
        ("distill.temperature", 0.0, "distill.temperature must be in"),
        ("distill.kbest_k", 0, "distill.kbest_k must be in"),
        ("model.dtype", "float16", "model.dtype must be one of"),
    ],
)
def test_numeric_keys_are_validated_before_anything_runs(assets, tmp_path, key, value, message):
    _, ckpt, data = assets
    with pytest.raises(TrainingError, match=message):
        run(tiny_config(ckpt, data, **{key: value}), tmp_path / "w")
    assert not (tmp_path / "w").exists()  # refused before the workdir is touched


def test_only_a_saved_checkpoint_pins_the_configuration(assets, teacher, tmp_path, capsys):
    """(A failed run that saved nothing is retried with any change: the NaN
    test in test_training.py reruns its workdir with other rates.)"""
    from jaxkd.training.state import pin_config

    _, ckpt, data = assets
    workdir = _copy(teacher, tmp_path / "run")
    saved = json.loads((workdir / "config.json").read_text())
    cfg = tiny_config(
        ckpt, data, **{"train.epochs": 5, "train.head_lr": 5e-3, "timing.forward_batches": -1, "log.tensorboard": True}
    )
    pin_config(workdir, cfg)  # rates and epochs: allowed on resume, noted
    assert "resuming with a changed configuration (train.epochs, train.head_lr)" in capsys.readouterr().err
    assert json.loads((workdir / "config.json").read_text())["train"]["epochs"] == 5
    cfg.model.dropout = 0.2
    with pytest.raises(TrainingError, match="different configuration .*model.dropout"):
        pin_config(workdir, cfg)
    shutil.rmtree(workdir / "checkpoints")  # nothing saved: nothing pinned
    pin_config(workdir, cfg)
    assert "saved no checkpoint; starting again with a changed configuration (model.dropout" in capsys.readouterr().err
    assert saved["model"]["dropout"] != 0.2


def _step_dir(workdir: Path, name: str) -> Path:
    saved = Checkpoints(workdir)
    return saved.directory / str(saved.require(name))


def test_damaged_loop_state_and_arrays_are_named_not_loaded(teacher, tmp_path, caplog, monkeypatch):
    from jaxkd.inspection import load_run

    copy = tmp_path / "run"
    shutil.copytree(teacher[0], copy)
    # A truncated loop state: its checksum names the file; without digests
    # (a step saved before them), the reader's error names the item.
    latest = _step_dir(copy, "latest")
    state = latest / "loop" / "metadata"
    state.write_text(state.read_text()[:20])
    with pytest.raises(CheckpointError, match=rf"{state}: does not match the checksum"):
        Checkpoints(copy).loop_state()
    digests = (latest / "digests.json").read_bytes()
    (latest / "digests.json").unlink()
    with pytest.raises(CheckpointError, match=rf"{latest}/loop: damaged"):
        Checkpoints(copy).loop_state()
    (latest / "digests.json").write_bytes(digests)
    # A flipped 4 KiB block in the largest parameter file: a checksum error naming it.
    best = _step_dir(copy, "best")
    target = max((p for p in (best / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    start = len(data) // 2
    data[start : start + 4096] = bytes(b ^ 0xFF for b in data[start : start + 4096])
    target.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{target}: does not match the checksum"):
        load_run(copy, "best")
    # Truncated, and without the digests to catch it: orbax's read error, named.
    target.write_bytes(bytes(data[: len(data) // 3]))
    (best / "digests.json").unlink()
    # ... and once: not again from orbax's abandoned reads, as logged task
    # failures and unraisable coroutines, when they are collected.
    # (What earlier runs in this worker's process left to orbax is collected
    # first: a whole restore, then a collection.)
    load_run(teacher[0], "best")
    gc.collect()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with caplog.at_level(logging.ERROR):
        with pytest.raises(CheckpointError, match=f"{best}: cannot be read"):
            load_run(copy, "best")
        time.sleep(0.5)  # reads still running in tensorstore's threads fail, as they would in a user's process
        gc.collect()
    assert [r.getMessage() for r in caplog.records] == [] and unraisable == []


def test_a_student_with_another_tokenizer_is_refused(tmp_path):
    base_dir = write_tiny_checkpoint(tmp_path / "a")
    a = SubwordEncoder.from_pretrained(base_dir)
    assert tokenizer_difference(a, SubwordEncoder.from_pretrained(base_dir)) == ""
    vocab = [line for line in (base_dir / "vocab.txt").read_text().splitlines()[5:]]
    vocab[0], vocab[1] = vocab[1], vocab[0]  # same size, two ids swapped
    swapped = SubwordEncoder.from_pretrained(write_tiny_checkpoint(tmp_path / "b", vocab=vocab))
    assert f"sub-word {vocab[1]!r} has id 5 against 6" in tokenizer_difference(a, swapped)
    lower = SubwordEncoder.from_pretrained(write_tiny_checkpoint(tmp_path / "c", lowercase=True))
    assert tokenizer_difference(a, lower).startswith("normalizer")


def _cli(*args, script=None, cwd=REPO):
    code = script or "from jaxkd.train import cli; cli()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_command_line_user_errors_are_one_line_with_exit_code_2(tmp_path):
    missing = _cli("--config", "configs/nope.py", "--workdir", str(tmp_path / "w"))
    bad_arg = _cli("--config", "configs/wnut16_minilm.py:nomethod", "--workdir", str(tmp_path / "w"))
    bad_flag = _cli("--config", "configs/wnut16_minilm.py", "--workdir", str(tmp_path / "w"), "--no_such_flag")
    for proc, words in ((missing, "configs/nope.py: no such file"), (bad_arg, "nomethod"), (bad_flag, "no_such_flag")):
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and len(bad_arg.stderr.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_naming_the_path(assets, tmp_path):
    _, ckpt, data = assets
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from pathlib import Path\n"
        "from tests.runs import tiny_config\n"
        "def get_config():\n"
        f"    return tiny_config(Path({str(ckpt)!r}), Path({str(data)!r}), **{{'train.epochs': 1}})\n"
    )
    # The disk fills when the run writes its configuration (the first file it writes).
    script = (
        "import jaxkd.training.loop as loop\n"
        "def full(workdir, config):\n"
        f"    raise OSError({errno.ENOSPC}, 'No space left on device', str(workdir / 'config.json'))\n"
        "loop.pin_config = full\n"
        "from jaxkd.train import cli; cli()\n"
    )
    proc = _cli("--config", str(cfg), "--workdir", str(tmp_path / "w"), script=script)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "w/config.json: No space left on device" in lines[0], proc.stderr


def test_small_messages(assets, tmp_path, capsys):
    from jaxkd.config import validate
    from jaxkd.data.sources import load_corpus
    from jaxkd.training.inputs import load_data

    _, ckpt, data = assets
    # the unseen-tag advice is the flag a user types
    odd = tmp_path / "odd"
    shutil.copytree(data, odd)
    (odd / "test.txt").write_text((odd / "test.txt").read_text() + "zed B-ORG\n\n")
    with pytest.raises(ValueError, match=r"--config.data.allow_unseen_tags=true"):
        load_corpus(str(odd))
    # no "limited to its first n" note when the limit is above the size
    notes = load_data(tiny_config(ckpt, data, **{"data.max_train_sentences": 1000})).notes
    assert not any("limited" in n for n in notes)
    notes = load_data(tiny_config(ckpt, data, **{"data.max_train_sentences": 50})).notes
    assert any("limited to its first 50" in n for n in notes)
    # one epoch of the 'paper' schedule never distils: a warning
    validate(_student(assets, tmp_path, "efficient", **{"train.epochs": 1}))
    assert "lambda 0 to the only epoch" in capsys.readouterr().err
