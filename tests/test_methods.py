"""The method registry (jaxkd/methods.py) is the one place a method is
defined: every entry is consistent, and a method added to it alone trains
end to end (teacher targets, cache, step, checks) with no other change."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd import methods
from jaxkd.training.loop import run
from tests.runs import tiny_config


def test_every_entry_is_consistent():
    assert methods.METHODS[0] == "vanilla" and methods.REGISTRY["vanilla"].targets is None
    for m in methods.REGISTRY.values():
        assert (m.targets is None) == (m.kd is None) == (m.name == "vanilla")
    for kind in (
        methods.ScoreTargets,
        methods.TeacherScores,
        methods.KBestTargets,
        methods.UnaryTargets,
        methods.PairTargets,
    ):
        assert len(kind.LAYOUT) == len(kind._fields)
        assert set(kind.LAYOUT) <= {methods.WORD, methods.PATHS, methods.ROW, methods.GLOBAL}


def _softmax_targets(spec, scores, mask, constraints):
    return methods.UnaryTargets(jax.nn.softmax(scores.emissions, axis=-1))


def _softmax_l2(spec, student, mask, targets, constraints):
    diff = jax.nn.softmax(student.emissions, axis=-1) - targets.unary
    return jnp.sum(jnp.where(mask[..., None], diff**2, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def test_a_method_added_to_the_registry_alone_trains(assets, teacher, tmp_path, monkeypatch):
    monkeypatch.setitem(
        methods.REGISTRY, "softmax_l2", methods.Method("softmax_l2", "a test method", _softmax_targets, _softmax_l2)
    )
    _, ckpt, data = assets
    cfg = tiny_config(
        ckpt,
        data,
        **{
            "mode": "student",
            "teacher_workdir": str(teacher[0]),
            "distill.method": "softmax_l2",
            "model.num_layers": 1,
            "distill.lambda_schedule": "constant",
            "distill.lambda_value": 1.0,
        },
    )
    results = run(cfg, tmp_path / "softmax_l2")
    assert results["method"] == "softmax_l2" and results["teacher_cache_s"] > 0
    losses = [e["loss"] for e in results["epochs"]]
    assert all(np.isfinite(losses)) and losses[1] < losses[0]  # the KD term alone, and it is learnt


def test_structkd_derives_its_pair_marginals_in_the_step_from_cached_scores():
    """The cache keeps the teacher's scores (N per word); the step's loss from
    them equals the loss from the pair marginals computed directly."""
    from jaxkd import crf
    from jaxkd.crf import CRFScores
    from jaxkd.training.steps import DistillSpec, kd_loss

    rng = np.random.default_rng(0)
    b, w, n = 3, 6, 5

    def scores():
        return CRFScores(*(jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((b, w, n), (n, n), (n,), (n,))))

    teacher, student = scores(), scores()
    mask = jnp.asarray(np.arange(w)[None, :] < np.array([[6], [3], [0]]))
    transitions_allowed = jnp.asarray(rng.random((n, n)) > 0.3).at[:, 0].set(True)
    allowed = crf.Constraints(transitions_allowed, jnp.ones(n, bool), jnp.ones(n, bool))
    spec = DistillSpec(method="structkd", targets_in_step=True)
    method = methods.REGISTRY["structkd"]
    for cons in (None, allowed):
        cached = methods.TeacherScores.of(teacher, cons)
        layout = methods.TeacherScores.LAYOUT
        assert [layout[i] for i, f in enumerate(cached._fields) if f == "emissions"] == [methods.WORD]
        direct = method.targets(spec, teacher, mask, cons)
        want = method.kd(spec, student, mask, direct, cons)
        np.testing.assert_allclose(kd_loss(spec, student, mask, cached, cons), want, rtol=1e-5)


def test_a_large_structkd_cache_becomes_scores_with_the_same_training(assets, teacher, tmp_path, monkeypatch):
    from jaxkd.training import teacher as teacher_module

    _, ckpt, data = assets
    cfg = tiny_config(
        ckpt,
        data,
        **{"mode": "student", "teacher_workdir": str(teacher[0]), "distill.method": "structkd", "model.num_layers": 1},
    )
    cached_pairs = run(cfg, tmp_path / "pairs")
    monkeypatch.setattr(teacher_module, "IN_STEP_ABOVE_BYTES", 0)  # every cache is "large"
    in_step = run(cfg, tmp_path / "scores")
    assert not cached_pairs["targets_in_step"] and in_step["targets_in_step"]
    np.testing.assert_allclose(
        [e["loss"] for e in in_step["epochs"]], [e["loss"] for e in cached_pairs["epochs"]], rtol=1e-5
    )
    assert in_step["dev"]["f1"] == cached_pairs["dev"]["f1"]
