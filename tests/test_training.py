"""Training runs end to end on a tiny random BERT and a tiny CoNLL corpus:
results.json, every method, resume == uninterrupted, NaN stop, label-set
check, the lambda = 1 / lambda = 0 properties, teacher cache == per batch,
prediction for every word, and the command line's errors."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd.training.checkpoints import CheckpointError, Checkpoints
from jaxkd.training.loop import TrainingError, run
from tests.runs import WORDS, tiny_config, write_corpus

REPO = Path(__file__).resolve().parent.parent



def test_teacher_results_json(teacher):
    workdir, results = teacher
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["mode"] == "teacher" and saved["method"] == "vanilla"
    assert saved["dataset"] == "data" and 1 <= saved["best_epoch"] <= 3
    for split in ("dev", "test"):
        for key in ("precision", "recall", "f1"):
            assert 0.0 <= saved[split][key] <= 100.0
    assert len(saved["epochs"]) == 3
    for row in saved["epochs"]:
        for key in (
            "epoch", "loss", "dev_score", "teacher_forward_s", "student_forward_s", "student_backward_s", "total_s"
        ):
            assert key in row
        assert row["teacher_forward_s"] == 0.0  # no teacher for a teacher
        assert row["student_forward_s"] > 0 and row["student_backward_s"] >= 0
        np.testing.assert_allclose(
            row["total_s"], row["teacher_forward_s"] + row["student_forward_s"] + row["student_backward_s"]
        )
    compiles = saved["compiles"]  # what the run compiled or loaded from the persistent cache
    assert compiles["compilations"] >= 1 and compiles["compile_s"] > 0 and compiles["cache_hits"] >= 0
    # The task is learnable from the words alone: the teacher must have learnt it.
    assert saved["dev"]["f1"] > 60.0, saved["dev"]
    saved = Checkpoints(workdir)  # the last epoch and the best one, and no other
    assert saved.step("latest") == 2 and saved.step("best") == results["best_epoch"] - 1
    steps = sorted(int(p.name) for p in saved.directory.iterdir() if p.name.isdigit())
    assert steps == sorted({2, results["best_epoch"] - 1})
    assert any((workdir / "tensorboard").iterdir())


@pytest.mark.parametrize(
    "method,extra",
    [
        ("vanilla", {}),
        ("efficient", {}),
        ("efficient", {"distill.emissions_only": True, "distill.lambda_schedule": "constant"}),
        ("kbest", {"distill.kbest_weights": "probability"}),
        ("posterior", {"distill.temperature": 2.0}),
        ("structkd", {"distill.lambda_schedule": "linear"}),
    ],
)
def test_every_method_distills(assets, teacher, method, extra, tmp_path):
    _, ckpt, data = assets
    cfg = tiny_config(
        ckpt,
        data,
        **{
            "mode": "student",
            "teacher_workdir": str(teacher[0]),
            "distill.method": method,
            "model.num_layers": 1,
            **extra,
        },
    )
    results = run(cfg, tmp_path / method)
    assert results["mode"] == "student" and results["method"] == method
    epochs = results["epochs"]
    lambdas = [e["lambda"] for e in epochs]
    if method == "vanilla":
        assert lambdas == [0.0, 0.0]
    elif cfg.distill.lambda_schedule == "paper":
        assert lambdas == [1.0, 0.0]
    assert all(np.isfinite(e["loss"]) for e in epochs)
    assert 0.0 <= results["test"]["f1"] <= 100.0
    if method != "vanilla" and cfg.distill.cache_teacher:
        # 0 when an earlier run of this process cached the same teacher targets
        assert (results["teacher_cache_s"] > 0) != results["teacher_cache_reused"]
        assert all(e["teacher_forward_s"] == 0.0 for e in epochs)


def test_fit_head_starts_efficient_kd_lower(assets, teacher, tmp_path):
    """With the head fitted to the teacher, the first KD epoch's loss is far
    below a random head's (same seed, same batches)."""
    _, ckpt, data = assets
    first = {}
    for fit in (False, True):
        cfg = tiny_config(
            ckpt,
            data,
            **{
                "mode": "student",
                "teacher_workdir": str(teacher[0]),
                "distill.method": "efficient",
                "model.num_layers": 1,
                "distill.fit_head": fit,
            },
        )
        run(cfg, tmp_path / str(fit), stop_after_epochs=1)
        state = Checkpoints(tmp_path / str(fit)).loop_state()
        first[fit] = state["history"][0]["loss"]
    assert first[True] < 0.5 * first[False], first


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(assets, tmp_path, capsys):
    _, ckpt, data = assets
    cfg = tiny_config(
        ckpt,
        data,
        **{"train.encoder_lr": 1e30, "train.head_lr": 1e30, "train.clip_norm": 0.0, "train.warmup_fraction": 0.0},
    )
    with pytest.raises(TrainingError, match="loss became .*No checkpoint was saved.*lower learning rates"):
        run(cfg, tmp_path / "nan")
    assert Checkpoints(tmp_path / "nan").step("latest") is None  # nothing bad was saved
    # The error's advice, in the same workdir: a run that saved nothing pinned nothing.
    assert run(tiny_config(ckpt, data), tmp_path / "nan")["best_epoch"] >= 1
    assert "saved no checkpoint; starting again" in capsys.readouterr().err


def test_student_with_other_labels_is_refused(assets, teacher, tmp_path):
    _, ckpt, _ = assets
    other = write_corpus(tmp_path / "other", types=("PER",))
    cfg = tiny_config(
        ckpt, other, **{"mode": "student", "teacher_workdir": str(teacher[0]), "distill.method": "efficient"}
    )
    with pytest.raises(TrainingError, match=r"(?s)label set differs.*B-LOC.*student data"):
        run(cfg, tmp_path / "s")


def test_lambda_one_computes_no_log_partition_and_lambda_zero_no_teacher(assets, teacher):
    from jaxkd.data.pipeline import encode_corpus
    from jaxkd.data.sources import load_corpus
    from jaxkd.data.tokenization import SubwordEncoder
    from jaxkd.models.heads import build_tagger
    from jaxkd.training.run_dir import restore_params
    from jaxkd.training.steps import (
        DistillSpec,
        split,
        student_fns,
        targets_of_scores_fn,
        teacher_fn,
        teacher_scores_fn,
    )
    from jaxkd.training.targets import TeacherCache

    _, ckpt, data = assets
    corpus = load_corpus(str(data))
    encoded = encode_corpus(corpus, SubwordEncoder.from_pretrained(ckpt), min_length=64)  # the runs' shape
    batch = encoded.batches("train", 16, shuffle=False)[0]
    tagger = build_tagger(ckpt, corpus.labels, num_layers=1, dropout=0.1, constrained=True, dtype="float32", seed=0)
    parts = split(tagger)
    t_parts, t_params = restore_params(teacher[0])
    spec = DistillSpec(method="efficient")
    targets = teacher_fn(t_parts, spec)(t_params, t_parts.rest, batch)
    fns = student_fns(parts, spec, optimizer=None)
    key = jax.random.key(0)

    def jaxpr(tg, use_kd, use_nll):
        def loss(p):
            return fns.forward_loss(p, parts.rest, batch, tg, 0.5, key, use_kd=use_kd, use_nll=use_nll)

        return str(jax.make_jaxpr(loss)(parts.params))

    # The forward algorithm is the only scan in the model: present iff the NLL is.
    assert "scan" not in jaxpr(targets, True, False)
    assert "scan" in jaxpr(targets, True, True)
    # lambda = 0: the step takes no teacher input at all and equals the plain NLL.
    nll_only = fns.forward_loss(parts.params, parts.rest, batch, {}, 0.0, key, use_kd=False, use_nll=True)
    vanilla = student_fns(parts, DistillSpec(method="vanilla"), optimizer=None)
    np.testing.assert_allclose(
        nll_only, vanilla.forward_loss(parts.params, parts.rest, batch, {}, 0.0, key, use_kd=False, use_nll=True)
    )
    # Both terms: the weighted sum; a batch without gold tags (same program,
    # gold False) has the KD term alone.
    kd_only = fns.forward_loss(parts.params, parts.rest, batch, targets, 0.5, key, use_kd=True, use_nll=False)
    both = functools.partial(fns.forward_loss, parts.params, parts.rest, batch, targets, 0.5, key, use_kd=True,
                             use_nll=True)
    np.testing.assert_allclose(both(gold=np.bool_(True)), 0.5 * kd_only + 0.5 * nll_only, rtol=1e-6)
    np.testing.assert_array_equal(both(gold=np.bool_(False)), kd_only)
    # The cache gives the same targets as a per-batch teacher forward, and so
    # do the targets each method derives from the teacher's cached scores (as
    # the loop builds them: one teacher pass for every method).
    rows = encoded.batches("train", 32, shuffle=False)
    scores = TeacherCache.build(teacher_scores_fn(t_parts), t_params, t_parts.rest, rows).on_device(None)
    for method in ("efficient", "kbest", "posterior", "structkd"):
        fn = teacher_fn(t_parts, DistillSpec(method=method))
        cache = TeacherCache.build(fn, t_params, t_parts.rest, rows)
        derive = targets_of_scores_fn(DistillSpec(method=method))
        from_scores = functools.partial(lambda derive, _p, _r, b: derive(scores.of(b), b.word_mask), derive)
        derived = TeacherCache.build(from_scores, None, None, rows)
        direct = jax.device_get(fn(t_params, t_parts.rest, batch))._asdict()
        for name in ("emissions", "unary", "pairwise"):  # the cache holds valid words only
            if name in direct:
                shape = batch.word_mask.shape + (1,) * (direct[name].ndim - 2)
                direct[name] = direct[name] * batch.word_mask.reshape(shape)
        for how, got in (("cached", cache), ("derived", derived)):
            got = got.assemble(batch)._asdict()
            assert set(direct) == set(got)
            for name in direct:
                np.testing.assert_allclose(got[name], direct[name], rtol=1e-4, atol=1e-5,
                                           err_msg=f"{how} {method}:{name}")


def test_predict_labels_every_word_even_past_the_window(teacher, tmp_path):
    from jaxkd.predict import main

    long_sentence = " ".join(["alice went to paris and saw rome"] * 20)  # 140 words > 64 positions
    text = tmp_path / "in.txt"
    text.write_text(f"bob met alice in rome\n\n{long_sentence}\nthe city\n")
    out = tmp_path / "out.conll"
    assert main(["--workdir", str(teacher[0]), "--input", str(text), "--output", str(out)]) == 0
    blocks = out.read_text().strip("\n").split("\n\n")
    assert [len(b.splitlines()) for b in blocks] == [5, 140, 2]
    first = [line.split("\t") for line in blocks[0].splitlines()]
    assert [w for w, _ in first] == ["bob", "met", "alice", "in", "rome"]
    assert all(t in ("O", "B-PER", "I-PER", "B-LOC", "I-LOC") for _, t in first)
    # Bad input: a clear error and no output file.
    bad = tmp_path / "bad.conll"
    bad.write_text("alice\tB-PER\nwent\tO\textra\n")
    missing = tmp_path / "never.conll"
    assert main(["--workdir", str(teacher[0]), "--input", str(bad), "--format", "conll", "--output", str(missing)]) == 2
    assert not missing.exists()


def test_checkpoints_keep_latest_and_best_and_restore_items_alone(tmp_path):
    """Each epoch is a step; the latest and the best (highest dev F1, the
    earlier of equal scores) are kept. An item is restored alone, reading only
    its files; a template that does not fit is refused naming the array."""
    rng = np.random.default_rng(0)
    params = {
        "dense": {
            "kernel": rng.normal(size=(3, 4)).astype(np.float32),
            "bias": rng.normal(size=(4,)).astype(np.float32),
        }
    }
    opt = {"mu": {"kernel": rng.normal(size=(3, 4)).astype(np.float32)}, "count": np.array(7, np.int32)}
    ckpts = Checkpoints(tmp_path, writable=True)
    kept = []
    for epoch, f1 in enumerate([50.0, 70.0, 60.0, 70.0]):
        step_params = jax.tree_util.tree_map(lambda x, e=epoch: x + e, params)
        ckpts.save(epoch, params=step_params, opt_state=opt, loop_state={"epoch": epoch}, dev_score=f1)
        kept.append(sorted(int(p.name) for p in ckpts.directory.iterdir() if p.name.isdigit()))
    assert kept == [[0], [1], [1, 2], [1, 3]]
    reopened = Checkpoints(tmp_path)
    assert (reopened.step("best"), reopened.step("latest"), reopened.loop_state()) == (1, 3, {"epoch": 3})
    template = jax.tree_util.tree_map(np.zeros_like, params)
    # Parameters alone: the optimizer state's files are not read (here: gone).
    shutil.rmtree(reopened.directory / "1" / "opt_state")
    got = reopened.restore("best", params=template)["params"]
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(np.asarray(got["dense"][name]), params["dense"][name] + 1)
    with pytest.raises(CheckpointError, match=r"1/opt_state"):
        reopened.restore("best", params=template, opt_state=opt)
    np.testing.assert_array_equal(np.asarray(reopened.restore("latest", opt_state=opt)["opt_state"]["count"]), 7)
    with pytest.raises(ValueError, match="has no array other"):
        reopened.restore("latest", params={"other": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"dense.bias \[4\] where the model has \[5\]"):
        reopened.restore(
            "latest", params={"dense": {"kernel": template["dense"]["kernel"], "bias": np.zeros(5, np.float32)}}
        )
    with pytest.raises(ValueError, match="holds 2 arrays but the model expects 1"):
        reopened.restore("latest", params={"dense": {"kernel": template["dense"]["kernel"]}})
    with pytest.raises(ValueError, match="named best or latest"):
        reopened.step("first")
    assert Checkpoints(tmp_path / "none").step("best") is None  # no directory: no checkpoint, nothing created
    assert not (tmp_path / "none").exists()


def test_predict_from_the_latest_checkpoint(teacher, tmp_path):
    from jaxkd.predict import main

    text = tmp_path / "in.txt"
    text.write_text("bob met alice in rome\n")
    out = tmp_path / "latest.conll"
    args = ["--workdir", str(teacher[0]), "--checkpoint", "latest", "--input", str(text), "--output", str(out)]
    assert main(args) == 0
    words = [line.split("\t")[0] for line in out.read_text().strip().splitlines()]
    assert words == ["bob", "met", "alice", "in", "rome"]


def test_cli_unknown_key_lists_valid_keys(tmp_path):
    proc = subprocess.run(
        [
            sys.executable, "-m", "jaxkd.train", "--config", str(REPO / "configs" / "wnut16_minilm.py"),
            "--config.train.nope=1", "--workdir", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown configuration key train.nope" in proc.stderr
    assert "train.encoder_lr" in proc.stderr and "distill.method" in proc.stderr


def test_cli_reports_a_fault_inside_training_as_such(tmp_path):
    """A KeyError raised by training itself is not an unknown configuration key."""
    script = (
        "import sys, jaxkd.training.loop as loop\n"
        "def fault(*args, **kwargs):\n"
        "    raise KeyError('inner')\n"
        "loop.run = fault\n"
        "from jaxkd.train import cli\n"
        f"cli(['jaxkd.train', '--config', {str(REPO / 'configs' / 'wnut16_minilm.py')!r}, "
        f"'--workdir', {str(tmp_path)!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    assert "unknown configuration key" not in proc.stderr
    assert "failed inside training: KeyError" in proc.stderr


def test_entities_follow_conlleval_reading_of_bio():
    from jaxkd.labeling import Entity, entities_of

    words = ["a", "b", "c", "d", "e", "f"]
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-PER"]
    assert entities_of(words, tags) == [
        Entity("PER", 0, 2, "a b"),
        Entity("LOC", 3, 4, "d"),  # I- after O opens a chunk
        Entity("LOC", 4, 5, "e"),
        Entity("PER", 5, 6, "f"),  # I- of another type too
    ]


def test_load_tagger_labels_like_viterbi_on_each_sentence_alone(teacher):
    """The Python API against an independent path: each sentence's own CRF
    scores (one-sentence batch, eager model) decoded and marginalised by the
    kernels; plus empty sentences, options, errors and compile-once shapes."""
    import jaxkd
    from jaxkd import crf
    from jaxkd.inspection import sentence_scores

    tagger = jaxkd.load_tagger(teacher[0], batch_size=4)
    texts = ["bob met alice in rome", "", "paris", "the city and the city saw bob in paris and rome"]
    results = tagger(texts, marginals=True)
    assert [r.words for r in results] == [t.split() for t in texts]
    cons = tagger.run.tagger.constraints
    for r in results:
        assert len(r.tags) == len(r.words) and r.marginals.shape == (len(r.words), len(tagger.labels))
        if not r.words:
            assert r.entities == []
            continue
        s = sentence_scores(tagger.run, r.words)
        args = (s.emissions[None], np.ones((1, len(r.words)), bool), s.transitions, s.start, s.end)
        expected_ids, _ = crf.viterbi(*args, constraints=cons)
        assert r.tags == tagger.run.labels.decode(np.asarray(expected_ids[0]))
        unary, _ = crf.marginals(*args, constraints=cons)
        np.testing.assert_allclose(r.marginals, np.asarray(unary[0]), atol=1e-5)
        np.testing.assert_allclose(r.marginals.sum(-1), 1.0, atol=1e-5)
        spans = [(e.start, e.end) for e in jaxkd.labeling.entities_of(r.words, r.tags)]
        assert [(e.start, e.end) for e in r.entities] == spans
    assert any(e.type == "PER" and e.text == "bob" for e in results[0].entities)
    # Compiled once per shape (a batch takes the shape of its longest
    # sentence): the same lengths again, in another order, add no compilation.
    sentences = [t.split() for t in texts if t] * 5
    shapes = {
        tagger.buckets.shape_for(len(r.input_ids), len(r.word_index)) for r in tagger.run.encoder.encode(sentences)
    }
    before = tagger._decode._cache_size()  # shared with every tagger of this graph in the process
    tagger.label(sentences)
    compiled = tagger._decode._cache_size()
    assert compiled - before <= len(shapes)
    tagger.label(sentences[::-1] + sentences[:3])
    assert tagger._decode._cache_size() == compiled
    with pytest.raises(ValueError, match="non-blank string"):
        tagger.label([["bob", " "]])
    # bf16 products for labelling: the override reaches the encoder, every word still gets a tag
    fast = jaxkd.load_tagger(teacher[0], dtype="bfloat16")
    assert fast.run.tagger.encoder.dtype == jnp.bfloat16
    assert [len(r.tags) for r in fast(texts)] == [len(t.split()) for t in texts]
    with pytest.raises(ValueError, match="dtype must be one of"):
        jaxkd.load_tagger(teacher[0], dtype="float16")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        jaxkd.load_tagger(teacher[0] / "missing")


def test_export_hf_round_trips_and_loads_in_transformers(teacher, tmp_path):
    """The hf export: jaxkd's own loader reads the encoder back exactly, the
    classifier gives the emissions, the CRF file holds the CRF; transformers
    (where PyTorch is installed) gives the same emissions as its logits."""
    from flax import nnx
    from safetensors.numpy import load_file

    from jaxkd.export import main as export_main
    from jaxkd.inspection import load_run, sentence_scores
    from jaxkd.models.bert import load_bert

    out = tmp_path / "hf"
    assert export_main(["--workdir", str(teacher[0]), "--out", str(out)]) == 0
    run = load_run(teacher[0])
    words = "bob met alice in rome".split()
    expected = sentence_scores(run, words)
    encoder = run.encoder
    (row,) = encoder.encode([words])
    ids = np.asarray(row.input_ids)[None]
    first = np.asarray(row.word_index)[: len(words)]
    forward = nnx.jit(lambda encoder, ids: encoder(ids))  # compiled: eager, each is seconds of dispatch
    hidden = np.asarray(forward(load_bert(out), ids))[0, first]
    np.testing.assert_allclose(hidden, np.asarray(forward(run.tagger.encoder, ids))[0, first], atol=1e-6)
    weights = load_file(str(out / "model.safetensors"))
    emissions = hidden @ weights["classifier.weight"].T + weights["classifier.bias"]
    np.testing.assert_allclose(emissions, expected.emissions, atol=1e-5)
    crf_file = load_file(str(out / "crf.safetensors"))
    np.testing.assert_array_equal(crf_file["transitions"], expected.transitions)
    np.testing.assert_array_equal(crf_file["start"], expected.start)
    config = json.loads((out / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(run.labels.labels))] == list(run.labels.labels)
    # An existing directory is never written over.
    assert export_main(["--workdir", str(teacher[0]), "--out", str(out)]) == 2
    # jaxkd.load_tagger reads the export back: the same tags and marginals as the run.
    import jaxkd

    texts = ["bob met alice in rome", "paris", "the city and the city saw bob"]
    live, exported = (jaxkd.load_tagger(p)(texts, marginals=True) for p in (teacher[0], out))
    assert [r.tags for r in exported] == [r.tags for r in live]
    for a, b in zip(exported, live):
        np.testing.assert_allclose(a.marginals, b.marginals, atol=1e-6)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the transformers check needs it")
    from transformers import BertForTokenClassification

    model = BertForTokenClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids.astype(np.int64))).logits[0].numpy()
    np.testing.assert_allclose(logits[first], expected.emissions, atol=1e-4)


def test_export_jax_labels_without_jaxkd_like_the_live_model(teacher, tmp_path):
    """The jax.export directory: its label.py, in a process where jaxkd cannot
    be imported, tags sentences of several bucket shapes and batches exactly
    as the live model does."""
    import jaxkd
    from jaxkd.export import main as export_main

    out = tmp_path / "jax"
    args = [
        "--workdir", str(teacher[0]), "--out", str(out), "--format", "jax", "--batch-size", "4", "--platforms", "cpu"
    ]
    assert export_main(args) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["batch_size"] == 4 and manifest["labels"] == list(jaxkd.load_tagger(teacher[0]).labels)
    rng = np.random.default_rng(3)
    sentences = [[str(w) for w in rng.choice(WORDS, size=n)] for n in (1, 3, 5, 9, 14, 20, 7, 2, 11, 4)] + [[]]
    expected = [r.tags for r in jaxkd.load_tagger(teacher[0]).label(sentences)]
    script = (
        "import json, sys; sys.modules['jaxkd'] = None; "  # any import of jaxkd fails
        f"sys.path.insert(0, {str(out)!r}); import label; "
        f"print(json.dumps(label.ExportedTagger({str(out)!r})(json.loads(sys.stdin.read()))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(sentences), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == expected
    lengths = {len(jaxkd.load_tagger(teacher[0]).run.encoder.encode([s])[0].input_ids) for s in sentences if s}
    assert len({min(t["T"] for t in manifest["shapes"] if t["T"] >= n) for n in lengths}) >= 2  # several shapes used
    assert export_main(args) == 2  # never written over


def test_predict_reads_what_the_content_is_and_writes_each_format(teacher, tmp_path, capsys, monkeypatch):
    import io

    from jaxkd.labeling import entities_of
    from jaxkd.predict import detect_format, main

    assert detect_format(["bob B-PER", "met O", "", "rome B-LOC"])[0] == "conll"
    assert detect_format(["bob\tNNP\tB-PER", "met\tVBD\tO"])[0] == "conll"
    assert detect_format(["bob", "met", "", "rome", "paris"])[0] == "conll"
    assert detect_format(["bob met", "alice saw"], ["O", "B-PER"])[0] == "text"
    assert detect_format(["bob met alice", "paris"])[0] == "text"
    # The training format (space-separated word TAG, a .txt name) is read as CoNLL, not as text.
    gold = tmp_path / "gold.txt"
    gold.write_text("bob B-PER\nmet O\nalice B-PER\n\nrome B-LOC\n")
    out = tmp_path / "out.jsonl"
    args = ["--workdir", str(teacher[0]), "--input", str(gold), "--output", str(out), "--output-format", "jsonl"]
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["words"] for r in records] == [["bob", "met", "alice"], ["rome"]]
    assert [r["gold"] for r in records] == [["B-PER", "O", "B-PER"], ["B-LOC"]]
    for r in records:
        assert len(r["tags"]) == len(r["words"])
        assert r["entities"] == [list(e) for e in entities_of(r["words"], r["tags"])]
    err = capsys.readouterr().err
    assert "as CoNLL columns" in err and "entity scores" in err
    # Raw text from standard input, written as word/TAG.
    monkeypatch.setattr(sys, "stdin", io.StringIO("bob met alice\n\nparis\n"))
    assert main(["--workdir", str(teacher[0]), "--output-format", "tags"]) == 0
    captured = capsys.readouterr()
    words = [[p.rsplit("/", 1)[0] for p in line.split()] for line in captured.out.splitlines()]
    assert words == [["bob", "met", "alice"], ["paris"]]
    assert "as raw text" in captured.err
