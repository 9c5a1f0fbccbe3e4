"""The log-partition function log Z of a linear-chain CRF, two ways.

``sequential``: the forward algorithm as a ``lax.scan`` over positions,
O(L N^2) work and O(L) depth.

``parallel``: the product of the per-position transfer matrices
``M_l[i, j] = T[i, j] + e[l, j]`` in the log semiring, combined pairwise in a
balanced tree (the up-sweep of an associative scan: O(L N^3) work, O(log L)
depth). Each product is an exact log-sum-exp; a real matrix product of shifted
exponentials would be faster but can underflow whole entries when scores are
large, so it is not used.

Both are differentiable in reverse mode; their gradients are the marginals.
The sequential one has a hand-written VJP: one backward scan, then all
marginals at once, instead of differentiating through every step of the scan
(about 2x faster for NLL + gradient).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxkd.crf._common import NEG, prepare, time_major
from jaxkd.crf.constraints import Constraints

ALGORITHMS = ("sequential", "parallel")


def forward_scan(emissions, mask, transitions, start):
    """Forward variables alpha.

    Args:
      emissions: [B, L, N] float32, zero at padding.
      mask: [B, L] bool prefix mask.
      transitions: [N, N] float32.
      start: [N] float32.

    Returns:
      alphas: [B, L, N] float32; ``alphas[b, l, j]`` is the log-sum of the scores
      of all prefixes ending in tag j at position l. Past the end of a sequence
      the last valid alpha is carried along.
    """
    alpha0 = start[None, :] + emissions[:, 0]

    def step(alpha, inputs):
        e_l, m_l = inputs
        nxt = jax.nn.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + e_l
        alpha = jnp.where(m_l[:, None], nxt, alpha)
        return alpha, alpha

    _, rest = lax.scan(step, alpha0, (time_major(emissions[:, 1:]), time_major(mask[:, 1:])))
    return jnp.concatenate([alpha0[:, None], time_major(rest)], axis=1)


def backward_scan(emissions, mask, transitions, end):
    """Backward variables beta.

    Args:
      emissions: [B, L, N] float32, zero at padding.
      mask: [B, L] bool prefix mask.
      transitions: [N, N] float32.
      end: [N] float32.

    Returns:
      betas: [B, L, N] float32; ``betas[b, l, i]`` is the log-sum of the scores
      of all suffixes after tag i at position l, end score included. At and past
      the last valid position it equals ``end``.
    """
    batch, _, n = emissions.shape
    last = jnp.broadcast_to(end, (batch, n))
    # Reduce over axis 1 of [B, j, i], as the forward scan does: with the
    # transposed matrix XLA's CPU reduction is ~2.5x faster than over axis 2.
    transposed = transitions.T

    def step(beta_next, inputs):
        e_next, m_next = inputs  # position l + 1
        inner = jax.nn.logsumexp((e_next + beta_next)[:, :, None] + transposed[None], axis=1)
        beta = jnp.where(m_next[:, None], inner, last)
        return beta, beta

    _, rest = lax.scan(step, last, (time_major(emissions[:, 1:]), time_major(mask[:, 1:])), reverse=True)
    return jnp.concatenate([time_major(rest), last[:, None]], axis=1)


def sequential_marginals_from(emissions, mask, transitions, alphas, betas, log_z):
    """Unary [B, L, N] and pairwise [B, L-1, N, N] (positions 1..L-1) marginals
    from forward and backward variables; exactly zero at padded positions."""
    unary_log = alphas + betas - log_z[:, None, None]
    pair_log = (
        alphas[:, :-1, :, None]
        + transitions[None, None]
        + (emissions[:, 1:] + betas[:, 1:])[:, :, None, :]
        - log_z[:, None, None, None]
    )
    # Double-where: padded entries never reach exp, so gradients stay finite.
    unary = jnp.exp(jnp.where(mask[..., None], unary_log, NEG))
    pairwise = jnp.exp(jnp.where(mask[:, 1:, None, None], pair_log, NEG))
    return unary, pairwise


@jax.custom_vjp
def _forward_log_z(emissions, mask, transitions, start, end):
    alphas = forward_scan(emissions, mask, transitions, start)
    return jax.nn.logsumexp(alphas[:, -1] + end[None], axis=-1)


def _forward_log_z_fwd(emissions, mask, transitions, start, end):
    alphas = forward_scan(emissions, mask, transitions, start)
    log_z = jax.nn.logsumexp(alphas[:, -1] + end[None], axis=-1)
    return log_z, (emissions, mask, transitions, end, alphas, log_z)


def _forward_log_z_bwd(residuals, g):
    # The gradient of log Z is the vector of marginals: one backward scan, then
    # every marginal at once (vectorised over positions, no per-step autodiff).
    emissions, mask, transitions, end, alphas, log_z = residuals
    betas = backward_scan(emissions, mask, transitions, end)
    unary, pairwise = sequential_marginals_from(emissions, mask, transitions, alphas, betas, log_z)
    lengths = mask.sum(-1)
    last = jnp.take_along_axis(unary, jnp.maximum(lengths - 1, 0)[:, None, None], axis=1)[:, 0]
    d_emissions = g[:, None, None] * unary
    d_transitions = jnp.sum(g[:, None, None, None] * pairwise, axis=(0, 1))
    # Sums of products, not `g @ ...`: a GPU would run a product in TF32.
    d_start = jnp.sum(g[:, None] * unary[:, 0], axis=0)
    d_end = jnp.sum(g[:, None] * jnp.where((lengths > 0)[:, None], last, 0.0), axis=0)
    return d_emissions, None, d_transitions, d_start, d_end


_forward_log_z.defvjp(_forward_log_z_fwd, _forward_log_z_bwd)


def _log_partition_sequential(p):
    return _forward_log_z(p.emissions, p.mask, p.transitions, p.start, p.end)


def log_matmul(a, b):
    """Matrix product in the log semiring: ``log(exp(a) @ exp(b))``, exactly.

    Computed as a log-sum-exp over the shared axis (no shift that could
    underflow); under ``jit`` XLA fuses the broadcast into the reduction, so
    the [..., N, K, M] intermediate is not stored.

    Args:
      a: [..., N, K] float32.
      b: [..., K, M] float32.

    Returns:
      [..., N, M] float32.
    """
    return jax.nn.logsumexp(a[..., :, :, None] + b[..., None, :, :], axis=-2)


def log_identity(num_tags: int):
    """[N, N] identity of the log semiring: 0 on the diagonal, NEG elsewhere."""
    return jnp.where(jnp.eye(num_tags, dtype=bool), 0.0, NEG).astype(jnp.float32)


def tree_reduce(mats):
    """Log-semiring product ``M_0 (x) M_1 (x) ... (x) M_{K-1}`` in O(log K) depth.

    Args:
      mats: [B, K, N, N] float32 (K may be 0).

    Returns:
      [B, N, N] float32.
    """
    batch, count, n, _ = mats.shape
    size = 1
    while size < max(count, 1):
        size *= 2
    if size != count:
        pad = jnp.broadcast_to(log_identity(n), (batch, size - count, n, n))
        mats = jnp.concatenate([mats, pad], axis=1)
    while mats.shape[1] > 1:
        mats = log_matmul(mats[:, 0::2], mats[:, 1::2])
    return mats[:, 0]


def transfer_matrices(p):
    """[B, L-1, N, N] log transfer matrices for positions 1..L-1; identity at padding."""
    n = p.transitions.shape[0]
    mats = p.transitions[None, None] + p.emissions[:, 1:, None, :]
    return jnp.where(p.mask[:, 1:, None, None], mats, log_identity(n))


def log_partition_from_potentials(init, mats, end):
    """log Z from the start vector and the transfer matrices (parallel form).

    Args:
      init: [B, N] float32, ``start + e[:, 0]``.
      mats: [B, L-1, N, N] float32 transfer matrices (identity at padding).
      end: [N] float32.

    Returns:
      [B] float32.
    """
    total = tree_reduce(mats)
    return jax.nn.logsumexp(init[:, :, None] + total + end[None, None, :], axis=(1, 2))


def _log_partition_parallel(p):
    init = p.start[None] + p.emissions[:, 0]
    return log_partition_from_potentials(init, transfer_matrices(p), p.end)


def check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")


@functools.partial(jax.jit, static_argnames=("algorithm",))
def log_partition(
    emissions,
    mask,
    transitions,
    start,
    end,
    *,
    algorithm: str = "sequential",
    constraints: Constraints | None = None,
):
    """log Z: the log-sum-exp of the scores of every tag sequence.

    Args:
      emissions: [B, L, N] float (bfloat16 is computed in float32).
      mask: [B, L] bool prefix mask; an all-false row gives 0.
      transitions: [N, N] float, ``transitions[i, j]`` scores tag i then tag j.
      start: [N] float, score of the first tag.
      end: [N] float, score of the last tag.
      algorithm: "sequential" (scan) or "parallel" (O(log L) depth).
      constraints: optional allowed moves; forbidden ones score NEG.

    Returns:
      [B] float32.
    """
    check_algorithm(algorithm)
    p = prepare(emissions, mask, transitions, start, end, constraints)
    fn = _log_partition_sequential if algorithm == "sequential" else _log_partition_parallel
    return jnp.where(p.lengths > 0, fn(p), 0.0)
