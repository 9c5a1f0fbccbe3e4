"""The training optimizer against optax's own two-group AdamW (the oracle)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkd.training.steps import group_labels, make_optimizer


def _reference(params, *, encoder_lr, head_lr, total_steps, warmup_fraction, weight_decay, clip_norm):
    warm = max(1, int(round(warmup_fraction * total_steps)))

    def schedule(peak):
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, warm), optax.linear_schedule(peak, 0.0, total_steps - warm)], [warm]
        )

    return optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.multi_transform(
            {
                "encoder": optax.adamw(schedule(encoder_lr), weight_decay=weight_decay),
                "head": optax.adamw(schedule(head_lr), weight_decay=weight_decay),
            },
            group_labels(params),
        ),
    )


def test_two_learning_rates_match_multi_transform_adamw():
    rng = np.random.default_rng(0)
    params = {
        "encoder": {"w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), "b": jnp.zeros(3)},
        "head": {"kernel": jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)},
        "transitions": jnp.asarray(rng.normal(size=(5, 5)), jnp.float32),
    }
    assert group_labels(params) == {
        "encoder": {"w": "encoder", "b": "encoder"},
        "head": {"kernel": "head"},
        "transitions": "head",
    }
    kw = dict(encoder_lr=2e-3, head_lr=5e-2, total_steps=10, warmup_fraction=0.2, weight_decay=0.01, clip_norm=1.0)
    ours, ref = make_optimizer(params, **kw), _reference(params, **kw)
    p1, p2 = params, params
    s1, s2 = ours.init(p1), ref.init(p2)
    for step in range(10):
        grads = jax.tree_util.tree_map(
            lambda x, step=step: jnp.asarray(rng.normal(size=x.shape), jnp.float32) * (step + 1), params
        )
        u1, s1 = jax.jit(ours.update)(grads, s1, p1)
        u2, s2 = ref.update(grads, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the head moved by its larger rate: the groups really differ
    moved_enc = float(jnp.abs(p1["encoder"]["w"] - params["encoder"]["w"]).mean())
    moved_head = float(jnp.abs(p1["head"]["kernel"] - params["head"]["kernel"]).mean())
    assert moved_head > 5 * moved_enc
