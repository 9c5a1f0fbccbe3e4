"""The demo's configurations and tables (its training is the README's first
command; the check after it reads runs/demo/summary.json)."""

from __future__ import annotations

import io

from jaxkd.demo import print_tables
from jaxkd.methods import METHODS
from jaxkd.presets import STUDENTS, demo_config


def test_demo_students_follow_their_setup():
    for name, setup in STUDENTS.items():
        for method in METHODS:
            c = demo_config(
                "student", method, "t", train_sentences=1000, epochs=setup.epochs, student=name, unlabeled=True
            )
            assert (c.model.checkpoint, c.model.num_layers, c.train.encoder_lr) == setup[:3]
            # vanilla cannot use text without tags; every distilling method does.
            assert c.data.unlabeled == ("" if method == "vanilla" else "wnut16-unused")
    assert demo_config("student", "efficient", "t", train_sentences=1000, epochs=1).data.unlabeled == ""


def _scores(f1):
    return {"precision": f1 + 1, "recall": f1 - 1, "f1": f1}


def test_tables_show_every_student_and_its_margin_over_vanilla():
    f1s = {"vanilla": 35.0, "efficient": 38.5, "kbest": 36.25, "posterior": 34.0, "structkd": 35.0}
    seconds = {"teacher_forward_s": 0.0, "student_forward_s": 0.5, "student_backward_s": 1.0, "total_s": 1.5}
    summary = {
        "teacher": {"dev": _scores(56.0), "test": _scores(45.0)},
        "student_setup": {"name": "tiny", "unlabeled": True},
        "students": {m: {"dev": _scores(50.0), "test": _scores(f), "epoch_seconds": seconds} for m, f in f1s.items()},
    }
    out = io.StringIO()
    print_tables(summary, out)
    text = out.getvalue()
    assert all(f"student tiny {m}" in text for m in METHODS)
    assert "teacher +10.00, efficient +3.50, kbest +1.25, posterior -1.00, structkd +0.00" in text
    assert "unlabelled" in text
