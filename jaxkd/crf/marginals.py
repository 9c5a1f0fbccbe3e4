"""Exact unary and pairwise marginals of a linear-chain CRF.

``sequential``: forward-backward with two ``lax.scan`` passes.
``parallel``: the gradient of the parallel log Z with respect to its
potentials (the gradient of a log-partition is the vector of marginals).

Both are ordinary differentiable JAX code, so a loss may be built on them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxkd.crf._common import prepare
from jaxkd.crf.constraints import Constraints
from jaxkd.crf.partition import (
    backward_scan,
    check_algorithm,
    forward_scan,
    log_partition_from_potentials,
    sequential_marginals_from,
    transfer_matrices,
)


def _sequential(p):
    alphas = forward_scan(p.emissions, p.mask, p.transitions, p.start)
    betas = backward_scan(p.emissions, p.mask, p.transitions, p.end)
    log_z = jax.nn.logsumexp(alphas[:, -1] + p.end[None], axis=-1)
    return sequential_marginals_from(p.emissions, p.mask, p.transitions, alphas, betas, log_z)


def _parallel(p):
    init = p.start[None] + p.emissions[:, 0]
    mats = transfer_matrices(p)

    def total(init, mats):
        return log_partition_from_potentials(init, mats, p.end).sum()

    g_init, g_mats = jax.grad(total, argnums=(0, 1))(init, mats)
    unary = jnp.concatenate([g_init[:, None], g_mats.sum(axis=2)], axis=1)
    unary = jnp.where(p.mask[..., None], unary, 0.0)
    pairwise = jnp.where(p.mask[:, 1:, None, None], g_mats, 0.0)
    return unary, pairwise


@functools.partial(jax.jit, static_argnames=("algorithm",))
def marginals(
    emissions,
    mask,
    transitions,
    start,
    end,
    *,
    algorithm: str = "sequential",
    constraints: Constraints | None = None,
):
    """Posterior marginals of every tag and every adjacent tag pair.

    Args:
      emissions: [B, L, N] float.
      mask: [B, L] bool prefix mask.
      transitions: [N, N] float.
      start: [N] float.
      end: [N] float.
      algorithm: "sequential" (forward-backward) or "parallel" (gradient of
        the parallel log Z).
      constraints: optional allowed moves.

    Returns:
      unary: [B, L, N] float32, ``P(y_l = j)``.
      pairwise: [B, L, N, N] float32, ``P(y_{l-1} = i, y_l = j)`` for l >= 1;
        row l = 0 is zero. Padded positions are zero in both.
    """
    check_algorithm(algorithm)
    p = prepare(emissions, mask, transitions, start, end, constraints)
    unary, pairwise = (_sequential if algorithm == "sequential" else _parallel)(p)
    first = jnp.zeros((pairwise.shape[0], 1) + pairwise.shape[2:], pairwise.dtype)
    pairwise = jnp.concatenate([first, pairwise], axis=1)
    return unary, pairwise
