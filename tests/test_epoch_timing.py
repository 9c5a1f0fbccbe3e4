"""``python -m benchmarks.epoch_timing`` on a few methods of the tiny preset:
the JSON it writes, the consistency of its phases, and the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks import epoch_timing
from jaxkd.data.batching import Buckets, make_batches
from jaxkd.data.labels import LabelVocab


def test_synthetic_corpus_follows_the_preset():
    p = epoch_timing.PRESETS["conll03"]
    labels = LabelVocab.from_types(p.types)
    assert len(labels) == 9
    rows = epoch_timing.synthetic_rows(p, len(labels))
    words = np.array([len(r.word_index) for r in rows])
    assert len(rows) == 14041
    assert 13.5 < words.mean() < 15.5 and words.min() >= 1 and words.max() <= 113
    assert all(len(r.input_ids) <= p.teacher.max_position_embeddings for r in rows)
    buckets = Buckets.fit(rows, p.teacher.max_position_embeddings)
    batches = make_batches(rows, buckets, 32)
    assert sum(int((b.sentence_index >= 0).sum()) for b in batches) == 14041


def test_tiny_run_writes_json_and_plot(tmp_path):
    out, png = tmp_path / "t.json", tmp_path / "t.png"
    epoch_timing.main(["--preset", "tiny", "--sentences", "96", "--methods", "vanilla,kbest,efficient_cached",
                       "--epochs", "2", "--json", str(out), "--plot", str(png), "--quiet"])
    result = json.loads(out.read_text())
    assert {"device", "jax_version", "preset", "methods"} <= set(result)
    assert result["preset"] == "tiny" and list(result["methods"]) == ["vanilla", "kbest", "efficient_cached"]
    for name, m in result["methods"].items():
        assert all(m[k] >= 0 for k in epoch_timing.PHASES), name
        assert m["student_forward_s"] > 0
    assert result["methods"]["vanilla"]["teacher_forward_s"] == 0.0
    assert result["methods"]["kbest"]["teacher_forward_s"] > 0
    assert result["methods"]["efficient_cached"]["cache_build_s"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_as_a_module_of_the_benchmarks_package():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.epoch_timing", "--help"], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "python -m benchmarks.epoch_timing --preset tiny" in done.stdout
