"""fit_head returns the minimiser of the efficient-KD loss over the student's
head and CRF parameters (encoder fixed): the loss's gradient there is zero,
and the loss is below the random head's and any perturbation's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxkd import crf, losses
from jaxkd.data.batching import Buckets, make_batches
from jaxkd.data.tokenization import Row
from jaxkd.methods import ScoreTargets
from jaxkd.models.bert import BertConfig, BertModel
from jaxkd.models.tagger import Tagger
from jaxkd.training.head_fit import fit_head
from jaxkd.training.steps import merge, split

N = 5


def _setup():
    rng = np.random.default_rng(0)
    cfg = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    student = Tagger(BertModel(cfg, rngs=nnx.Rngs(0)), N, rngs=nnx.Rngs(1))
    rows = []
    for i in range(90):
        n = int(rng.integers(1, 9))
        ids = np.concatenate([[2], rng.integers(5, 60, n), [3]]).astype(np.int32)
        rows.append(Row(ids, np.arange(1, n + 1, dtype=np.int32), np.zeros(n, np.int32), i, 0))
    batches = make_batches(rows, Buckets.fit(rows, 32), 16, filler_ids=(2, 3))
    teacher = {
        "transitions": rng.normal(size=(N, N)).astype(np.float32),
        "start": rng.normal(size=N).astype(np.float32),
        "end": rng.normal(size=N).astype(np.float32),
    }
    targets = {
        id(b): ScoreTargets(
            emissions=(3 * rng.normal(size=b.word_mask.shape + (N,)) + np.arange(N)).astype(np.float32), **teacher
        )
        for b in batches
    }
    return split(student), batches, lambda b: targets[id(b)]


def _batch_loss(eval_def, params, rest, b, t):
    """Summed squared error over every sub-structure of one batch (eval mode)."""
    s = merge(eval_def, params, rest)(b)
    teacher = crf.CRFScores(jnp.asarray(t.emissions), t.transitions, t.start, t.end)
    return losses.efficient_kd_terms(s, teacher, b.word_mask).total


# Compiled once per batch shape (eager, the sums below cost ~40 s).
_batch_loss_jit = jax.jit(_batch_loss, static_argnums=0)
_batch_grad_jit = jax.jit(jax.grad(_batch_loss, argnums=1), static_argnums=0)


def _loss(parts, params, batches, targets_of):
    """Summed squared error over every sub-structure of every batch (eval mode)."""
    return sum(_batch_loss_jit(parts.eval_def, params, parts.rest, b, targets_of(b)) for b in batches)


def _loss_grad(parts, params, batches, targets_of):
    """The gradient of :func:`_loss` with respect to params."""
    grads = [_batch_grad_jit(parts.eval_def, params, parts.rest, b, targets_of(b)) for b in batches]
    return jax.tree_util.tree_map(lambda *g: sum(g), *grads)


def _head(tree):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        tuple(str(getattr(p, "key", p)) for p in path): leaf
        for path, leaf in flat
        if str(getattr(path[0], "key", "")) != "encoder"
    }


def test_fit_is_the_minimiser_over_head_and_crf():
    parts, batches, targets_of = _setup()
    before = float(_loss(parts, parts.params, batches, targets_of))
    params, info = fit_head(parts, parts.params, parts.rest, batches, targets_of, ridge=0.0)
    assert info["words"] == sum(int(b.word_mask.sum()) for b in batches)
    after = float(_loss(parts, params, batches, targets_of))
    assert after < 0.5 * before
    grads = _loss_grad(parts, params, batches, targets_of)
    start_grads = _loss_grad(parts, parts.params, batches, targets_of)
    scale = max(float(jnp.abs(g).max()) for g in _head(start_grads).values())
    for name, g in _head(grads).items():
        assert float(jnp.abs(g).max()) < 1e-3 * scale, name
    # and the encoder is untouched
    for a, b in zip(jax.tree_util.tree_leaves(parts.params["encoder"]), jax.tree_util.tree_leaves(params["encoder"])):
        np.testing.assert_array_equal(a, b)
    # a random perturbation of the head only raises the loss
    rng = np.random.default_rng(1)
    bumped = jax.tree_util.tree_map_with_path(
        lambda path, x: (
            x
            if str(getattr(path[0], "key", "")) == "encoder"
            else x + 0.05 * rng.normal(size=x.shape).astype(np.float32)
        ),
        params,
    )
    assert float(_loss(parts, bumped, batches, targets_of)) > after
