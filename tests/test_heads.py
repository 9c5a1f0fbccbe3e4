"""The softmax and span heads (``model.head = "softmax" | "span"``) and
distillation across heads (Structural KD's scenarios 2, 3 and 4): their
losses against enumeration of every tag sequence or by hand, a softmax
teacher's distributions as a zero-transition CRF's, and tiny runs that
train, distil and label every word."""

from __future__ import annotations

import importlib.util
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import crf, losses
from jaxkd.crf import CRFScores
from jaxkd.data.labels import LabelVocab
from tests import crf_oracle
from tests.runs import tiny_config

N = 3  # O, B-PER, I-PER


def _scores(rng, b, length, n, transitions=True):
    zeros = (np.zeros((n, n)), np.zeros(n), np.zeros(n))
    extra = (rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n)) if transitions else zeros
    return CRFScores(*(jnp.asarray(x, jnp.float32) for x in (rng.normal(size=(b, length, n)) * 2, *extra)))


def _mask(lengths, length):
    return jnp.asarray(np.arange(length)[None, :] < np.asarray(lengths)[:, None])


# ---------------------------------------------------------------- losses


def test_token_nll_is_the_likelihood_of_independent_words():
    rng = np.random.default_rng(0)
    s = _scores(rng, 3, 4, N, transitions=False)
    lengths, mask = [4, 2, 0], _mask([4, 2, 0], 4)
    tags = jnp.asarray(rng.integers(0, N, size=(3, 4)))
    got = losses.token_nll(s.emissions, mask, tags)
    for b, n in enumerate(lengths):
        if n == 0:
            assert float(got[b]) == 0.0
            continue
        ys, sc = crf_oracle.row(s.emissions[b], n, *s[1:])  # every sequence, no transition scores
        gold = np.flatnonzero((ys == np.asarray(tags[b, :n])).all(-1))[0]
        np.testing.assert_allclose(got[b], jax.nn.logsumexp(sc) - sc[gold], rtol=1e-5)


def test_a_softmax_teachers_distribution_is_a_zero_transition_crf():
    """Unconstrained: unary marginals are the per-word softmaxes and the pair
    marginals their products (scenario 3's q). Constrained (BIO): the
    distribution over valid sequences, renormalised, with no mass on a
    forbidden move, where the plain product has some."""
    rng = np.random.default_rng(1)
    s = _scores(rng, 2, 5, N, transitions=False)
    lengths, mask = [5, 3], _mask([5, 3], 5)
    unary, pair = crf.marginals(s.emissions, mask, *s[1:])
    p = jax.nn.softmax(s.emissions, -1)
    m = np.asarray(mask)[..., None]
    np.testing.assert_allclose(np.where(m, unary, 0), np.where(m, p, 0), atol=1e-5)
    product = p[:, :-1, :, None] * p[:, 1:, None, :]
    np.testing.assert_allclose(
        np.where(m[:, 1:, :, None], pair[:, 1:], 0), np.where(m[:, 1:, :, None], product, 0), atol=1e-5
    )

    allowed = LabelVocab.from_types(["PER"]).constraints()
    u_c, p_c = crf.marginals(s.emissions, mask, *s[1:], constraints=allowed)
    for b, n in enumerate(lengths):
        want_u, want_p = crf_oracle.marginals(s.emissions[b], n, *s[1:], constraints=allowed)
        np.testing.assert_allclose(u_c[b], want_u, atol=1e-5)
        np.testing.assert_allclose(p_c[b, 1:n], want_p[1:n], atol=1e-5)
    forbidden = ~np.asarray(allowed.transitions)
    assert float(np.asarray(p_c)[:, 1:, forbidden].max()) < 1e-6
    assert float(np.asarray(product)[..., forbidden].max()) > 1e-3


def test_structkd_at_a_temperature_is_the_sequence_cross_entropy_times_tau_squared():
    rng = np.random.default_rng(2)
    teacher, student = _scores(rng, 2, 4, N), _scores(rng, 2, 4, N)
    lengths, mask, tau = [4, 3], _mask([4, 3], 4), 2.0
    unary, pair = losses.teacher_marginals(teacher, mask, temperature=tau)
    got = losses.structkd(student, mask, unary, pair, temperature=tau)
    for b, n in enumerate(lengths):
        ys, s_t = crf_oracle.row(teacher.emissions[b] / tau, n, *(x / tau for x in teacher[1:]))
        _, s_s = crf_oracle.row(student.emissions[b] / tau, n, *(x / tau for x in student[1:]))
        want = tau**2 * -(jax.nn.softmax(s_t) * jax.nn.log_softmax(s_s)).sum()
        np.testing.assert_allclose(got[b], want, rtol=1e-4)


def test_scenario_2_and_kbest_terms_of_a_softmax_student_by_hand():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 3, N)).astype(np.float32)
    mask = _mask([3, 2], 3)
    teacher_unary = jax.nn.softmax(jnp.asarray(rng.normal(size=(2, 3, N))), -1)
    tau = 2.0
    got = losses.structkd_token_student(logits, mask, teacher_unary, temperature=tau)
    q = np.exp(logits / tau) / np.exp(logits / tau).sum(-1, keepdims=True)
    t = np.asarray(teacher_unary)
    kl = (t * (np.log(t) - np.log(q))).sum(-1) * np.asarray(mask)
    np.testing.assert_allclose(got, tau**2 * kl.sum(-1), rtol=1e-5)

    paths = rng.integers(0, N, size=(2, 2, 3))
    weights = np.array([[0.7, 0.3], [0.5, 0.5]], np.float32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = [
        sum(weights[b, k] * -sum(logp[b, i, paths[b, k, i]] for i in range(n)) for k in range(2))
        for b, n in enumerate([3, 2])
    ]
    np.testing.assert_allclose(losses.kbest_token_kd(logits, mask, paths, weights), want, rtol=1e-5)


def test_span_nll_by_hand():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 3, 3))
    mask = _mask([3, 2], 3)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = [-sum(logp[b, i, j, labels[b, i, j]] for i in range(n) for j in range(i, n)) for b, n in enumerate([3, 2])]
    np.testing.assert_allclose(losses.span_nll(logits, mask, labels), want, rtol=1e-5)


# ---------------------------------------------------------------- runs


def _teacher_with_head(assets, head: str):
    """(workdir, results) of a 3-epoch tiny teacher with ``model.head = head``."""
    from jaxkd.training.loop import run

    root, ckpt, data = assets
    workdir = root / f"{head}_teacher"
    changes = {"train.epochs": 3, "train.head_lr": 3e-2, "model.head": head}
    return workdir, run(tiny_config(ckpt, data, **changes), workdir)


@pytest.fixture(scope="module")
def softmax_teacher(assets):
    return _teacher_with_head(assets, "softmax")


def _student(assets, teacher_dir, head, method, **changes):
    _, ckpt, data = assets
    return tiny_config(
        ckpt,
        data,
        **{
            "mode": "student",
            "teacher_workdir": str(teacher_dir),
            "distill.method": method,
            "model.num_layers": 1,
            "model.head": head,
            "distill.lambda_schedule": "constant",
            "distill.lambda_value": 1.0,
            **changes,
        },
    )


def test_a_softmax_tagger_trains_and_labels_every_word_with_valid_tags(softmax_teacher):
    from jaxkd.models.softmax_tagger import SoftmaxTagger
    from jaxkd.predict import label
    from jaxkd.training.run_dir import load_run

    workdir, results = softmax_teacher
    assert results["dev"]["f1"] > 60.0, results["dev"]  # learnable from the words alone
    assert json.loads((workdir / "model" / "tagger.json").read_text())["head"] == "softmax"
    run = load_run(workdir)
    assert isinstance(run.tagger, SoftmaxTagger)
    assert "transitions" not in run.params and "start" not in run.params  # fixed at zero, not trained
    sentences = [["bob", "met", "alice", "in", "rome"], ["alice", "went", "to", "paris", "and", "saw", "rome"] * 20]
    tags = label(workdir, sentences)
    assert [len(t) for t in tags] == [len(s) for s in sentences]  # past the 64-position window too
    for sentence in tags:
        for prev, tag in zip(["O"] + sentence[:-1], sentence):
            assert not tag.startswith("I-") or prev[2:] == tag[2:], sentence  # the BIO repair of decoding


def test_a_softmax_tagger_exports_to_hugging_face_and_labels_the_same(softmax_teacher, tmp_path):
    from jaxkd.export import export_hf
    from jaxkd.labeling import load_tagger

    out = export_hf(softmax_teacher[0], tmp_path / "hf")
    assert "per-word softmax head" in (out / "README.md").read_text()
    sentences = [["bob", "met", "alice", "in", "rome"], ["alice", "saw", "paris"]]
    assert load_tagger(out).label(sentences) == load_tagger(softmax_teacher[0]).label(sentences)


def test_scenario_2_a_softmax_student_distils_a_crf_teacher(assets, teacher, tmp_path):
    from jaxkd import methods
    from jaxkd.training.loop import run

    # For a softmax student Struct. KD and posterior KD are one term, on the
    # teacher's unary marginals (no N x N pair marginals cached).
    structkd, posterior = (methods.require(m, "softmax", "crf") for m in ("structkd", "posterior"))
    assert structkd.targets is posterior.targets is methods.get("posterior").targets
    assert structkd.kd is posterior.kd is not None and structkd.number == 2
    results = run(_student(assets, teacher[0], "softmax", "structkd", **{"train.epochs": 3}), tmp_path / "s2")
    losses_ = [e["loss"] for e in results["epochs"]]
    assert all(np.isfinite(losses_)) and losses_[-1] < losses_[0], losses_
    assert results["targets_in_step"] is False


def test_scenario_3_a_crf_student_distils_a_softmax_teacher(assets, softmax_teacher, tmp_path):
    from jaxkd.training.loop import TrainingError, run

    results = run(_student(assets, softmax_teacher[0], "crf", "structkd", **{"train.epochs": 3}), tmp_path / "s3")
    losses_ = [e["loss"] for e in results["epochs"]]
    assert all(np.isfinite(losses_)) and losses_[-1] < losses_[0], losses_
    # An unconstrained softmax teacher under a constrained CRF student: refused, naming both.
    loose = tmp_path / "loose"
    shutil.copytree(softmax_teacher[0], loose)
    meta = json.loads((loose / "model" / "tagger.json").read_text())
    (loose / "model" / "tagger.json").write_text(json.dumps({**meta, "constrained": False}))
    with pytest.raises(TrainingError, match=r"unconstrained teacher .*softmax head.*product of per-word softmaxes"):
        run(_student(assets, loose, "crf", "structkd"), tmp_path / "refused")
    # A softmax student has no transition scores for the efficient head fit.
    with pytest.raises(TrainingError, match="distill.fit_head"):
        cfg = _student(assets, softmax_teacher[0], "softmax", "efficient", **{"distill.fit_head": True})
        run(cfg, tmp_path / "nofit")


@pytest.fixture(scope="module")
def span_teacher(assets):
    return _teacher_with_head(assets, "span")


def test_a_span_tagger_trains_and_labels_every_word(span_teacher, tmp_path):
    from jaxkd.export import ExportError, export_hf, export_jax
    from jaxkd.labeling import load_tagger
    from jaxkd.models.span_tagger import SpanTagger

    workdir, results = span_teacher
    assert results["dev"]["f1"] > 60.0, results["dev"]
    tagger = load_tagger(workdir)
    assert isinstance(tagger.run.tagger, SpanTagger)
    sentences = [["bob", "met", "alice", "in", "rome"], ["alice", "went", "to", "paris", "and", "saw", "rome"] * 20]
    out = tagger.label(sentences, marginals=True)
    assert [len(s.tags) for s in out] == [len(s) for s in sentences]  # past the 64-position window too
    assert [e.type for e in out[0].entities] == ["PER", "PER", "LOC"], out[0]
    for s in out:
        np.testing.assert_allclose(s.marginals.sum(-1), 1.0, atol=1e-4)  # the BIO marginals of its spans
    # The jax export carries the greedy span decoding; hf has no span head.
    with pytest.raises(ExportError, match="span head"):
        export_hf(workdir, tmp_path / "hf")
    exported = export_jax(workdir, tmp_path / "jax")
    spec = importlib.util.spec_from_file_location("exported_label", exported / "label.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    short = sentences[:1] + [["alice", "saw", "paris", "and", "rome"]]
    assert module.ExportedTagger(exported)(short) == [s.tags for s in tagger.label(short)]


@pytest.mark.parametrize("head, method", [("softmax", "posterior"), ("crf", "structkd")])
def test_scenario_4_a_token_student_distils_a_span_teacher(assets, span_teacher, head, method, tmp_path):
    from jaxkd.training.loop import run

    results = run(_student(assets, span_teacher[0], head, method, **{"train.epochs": 3}), tmp_path / "s4")
    losses_ = [e["loss"] for e in results["epochs"]]
    assert all(np.isfinite(losses_)) and losses_[-1] < losses_[0], losses_


def test_span_heads_refuse_what_no_scenario_covers(assets, span_teacher, teacher, tmp_path):
    from jaxkd.training.loop import TrainingError, run

    with pytest.raises(TrainingError, match="cannot learn from the span teacher.*emission and transition scores"):
        run(_student(assets, span_teacher[0], "crf", "efficient"), tmp_path / "a")
    with pytest.raises(TrainingError, match="cannot learn from the span teacher.*k best"):
        run(_student(assets, span_teacher[0], "softmax", "kbest"), tmp_path / "b")
    with pytest.raises(TrainingError, match="span student .* gold spans only"):
        run(_student(assets, teacher[0], "span", "posterior"), tmp_path / "c")
    # A vanilla student beside a span teacher (a study's baseline) needs nothing from it.
    from jaxkd.training.run_dir import read_run
    from jaxkd.training.teacher import open_teacher

    files = read_run(span_teacher[0])
    open_teacher(_student(assets, span_teacher[0], "crf", "vanilla"), files.labels, files.encoder)
