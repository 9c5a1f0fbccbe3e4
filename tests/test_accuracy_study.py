"""``python -m benchmarks.accuracy`` end to end on the tiny set-up: runs,
scores, statistics, outputs, and a rerun that trains nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks import accuracy
from jaxkd.stats import micro_f1

CONFIG = """
from tests.runs import tiny_config

CKPT, DATA = {ckpt!r}, {data!r}


def get_config(arg="teacher"):
    if arg == "teacher":  # the session's teacher fixture (copied into the study)
        keys = {{"train.epochs": 3, "train.head_lr": 3e-2, "timing.forward_batches": -1, "log.tensorboard": True}}
        return tiny_config(CKPT, DATA, **keys)
    return tiny_config(CKPT, DATA, **{{"mode": "student", "distill.method": arg, "model.num_layers": 1}})
"""


@pytest.fixture(scope="module")
def study(assets, teacher, tmp_path_factory):
    root, ckpt, data = assets
    tmp = tmp_path_factory.mktemp("study")
    config = tmp / "study_config.py"
    config.write_text(CONFIG.format(ckpt=str(ckpt), data=str(data)))
    shutil.copytree(teacher[0], tmp / "runs" / "teacher")
    text = tmp / "unlabeled.txt"
    text.write_text("alice went to rome\nbob saw paris and rome\n" * 8)
    variants = "vanilla,efficient+unlabeled@distill.centered=true"
    argv = ["--config", str(config), "--variants", variants, "--seeds", "2",
            "--workdir", str(tmp / "runs"), "--out", str(tmp / "out" / "study"), "--replicates", "200",
            "--unlabeled", str(text)]
    assert accuracy.main(argv) == 0
    return tmp, argv


def test_study_scores_every_run_and_compares_with_vanilla(study):
    tmp, _ = study
    summary = json.loads((tmp / "out" / "study.json").read_text())["summary"]
    tweaked = "efficient+unlabeled@distill.centered=true"  # a variant's own key changes after '@'
    assert list(summary) == ["teacher", "vanilla", tweaked]
    unlabeled = json.loads((tmp / "runs" / tweaked / "seed1" / "eval.json").read_text())
    assert unlabeled["config"]["data"]["unlabeled"].endswith("unlabeled.txt")
    assert unlabeled["config"]["distill"]["centered"] is True
    assert "vs_vanilla" in summary[tweaked]
    for variant in ("vanilla", tweaked):
        runs = [tmp / "runs" / variant / f"seed{s}" for s in (0, 1)]
        evals = [json.loads((r / "eval.json").read_text()) for r in runs]
        # The study's scoring (the labelling API) agrees with the training loop's.
        for r, e in zip(runs, evals):
            assert e["test"]["score"] == pytest.approx(json.loads((r / "results.json").read_text())["test"]["f1"])
            assert e["config"]["seed"] == int(r.name[-1])
        assert summary[variant]["test"]["runs"] == pytest.approx([e["test"]["score"] for e in evals])
        test_scores = [e["test"]["score"] for e in evals]
        assert summary[variant]["test"]["std"] == pytest.approx(float(np.std(test_scores, ddof=1)))
    counts = {
        v: np.array([json.loads((tmp / "runs" / v / f"seed{s}" / "eval.json").read_text())["test"]["counts"]
                     for s in (0, 1)])
        for v in ("vanilla", tweaked)
    }
    diff = summary[tweaked]["vs_vanilla"]["sentences"]
    expected = micro_f1(counts[tweaked].sum(1)).mean() - micro_f1(counts["vanilla"].sum(1)).mean()
    assert diff["difference"] == pytest.approx(expected)
    assert diff["low"] <= diff["difference"] <= diff["high"] or diff["low"] == diff["high"]
    table = (tmp / "out" / "study.md").read_text()
    assert f"| {tweaked} |" in table and "| vanilla |" in table and "| teacher |" in table
    assert (tmp / "out" / "study.png").stat().st_size > 1000


def test_a_rerun_reads_the_finished_runs(study, capsys):
    tmp, argv = study
    done = tmp / "runs" / "efficient+unlabeled@distill.centered=true" / "seed1" / "eval.json"
    before = done.stat().st_mtime_ns
    capsys.readouterr()
    assert accuracy.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("done earlier") == 5  # the teacher and 2 variants x 2 seeds
    assert done.stat().st_mtime_ns == before


def test_a_bad_configuration_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        accuracy.main(["--config", str(tmp_path / "none.py"), "--workdir", str(tmp_path)])
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(arg='teacher'):\n    raise ValueError('no such student')\n")
    with pytest.raises(SystemExit) as exit_:
        accuracy.main(["--config", str(bad), "--workdir", str(tmp_path)])
    assert exit_.value.code == 2 and "no such student" in capsys.readouterr().err


def test_a_rerun_with_other_options_is_refused(study, capsys):
    tmp, argv = study
    with pytest.raises(SystemExit, match="another configuration.*train.epochs"):
        accuracy.main(argv + ["--set", "train.epochs=5"])
