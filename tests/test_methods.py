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
    for kind in (methods.ScoreTargets, methods.KBestTargets, methods.UnaryTargets, methods.PairTargets):
        assert len(kind.LAYOUT) == len(kind._fields)
        assert set(kind.LAYOUT) <= {methods.WORD, methods.PATHS, methods.ROW, methods.GLOBAL}


def _softmax_targets(spec, scores, mask, constraints):
    return methods.UnaryTargets(jax.nn.softmax(scores.emissions, axis=-1))


def _softmax_l2(spec, student, mask, targets, constraints):
    diff = jax.nn.softmax(student.emissions, axis=-1) - targets.unary
    return jnp.sum(jnp.where(mask[..., None], diff**2, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def test_a_method_added_to_the_registry_alone_trains(assets, teacher, tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "softmax_l2", methods.Method("softmax_l2", "a test method", _softmax_targets, _softmax_l2))
    _, ckpt, data = assets
    cfg = tiny_config(ckpt, data, **{"mode": "student", "teacher_workdir": str(teacher[0]), "distill.method": "softmax_l2",
                                     "model.num_layers": 1, "distill.lambda_schedule": "constant", "distill.lambda_value": 1.0})
    results = run(cfg, tmp_path / "softmax_l2")
    assert results["method"] == "softmax_l2" and results["teacher_cache_s"] > 0
    losses = [e["loss"] for e in results["epochs"]]
    assert all(np.isfinite(losses)) and losses[1] < losses[0]  # the KD term alone, and it is learnt
