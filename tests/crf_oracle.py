"""Brute-force oracle for linear-chain CRFs: enumerate every tag sequence.

Independent of jaxkd.crf: no dynamic programme, no masking tricks. Written in
jax.numpy so its gradients serve as an oracle too. Only for L <= 6, N <= 4.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def paths(n: int, num_tags: int, constraints=None) -> np.ndarray:
    """[S, n] every tag sequence of length n (allowed ones only)."""
    out = np.array(list(itertools.product(range(num_tags), repeat=n)), dtype=np.int32)
    out = out.reshape(len(out), n)
    if constraints is not None and n > 0:
        trans, start, end = (np.asarray(c) for c in constraints)
        ok = start[out[:, 0]] & end[out[:, -1]]
        for pos in range(1, n):
            ok &= trans[out[:, pos - 1], out[:, pos]]
        out = out[ok]
    return out


def scores(emissions, transitions, start, end, ys):
    """[S] scores of sequences ys [S, n] for one sentence (emissions [>=n, N])."""
    n = ys.shape[1]
    pos = np.arange(n)
    s = start[ys[:, 0]] + end[ys[:, -1]] + emissions[pos, ys].sum(-1)
    if n > 1:
        s = s + transitions[ys[:, :-1], ys[:, 1:]].sum(-1)
    return s


def row(emissions, length, transitions, start, end, constraints=None):
    """(paths [S, n], scores [S]) for one row of length ``length``."""
    ys = paths(int(length), emissions.shape[-1], constraints)
    if length == 0:
        return ys, jnp.zeros((1,))
    return ys, scores(emissions, transitions, start, end, ys)


def log_z(emissions, length, transitions, start, end, constraints=None):
    _, s = row(emissions, length, transitions, start, end, constraints)
    return jax.nn.logsumexp(s)


def marginals(emissions, length, transitions, start, end, constraints=None):
    """unary [L, N], pairwise [L, N, N] for one row, zero past ``length``."""
    max_len, num_tags = emissions.shape
    ys, s = row(emissions, length, transitions, start, end, constraints)
    if length == 0:
        return jnp.zeros((max_len, num_tags)), jnp.zeros((max_len, num_tags, num_tags))
    prob = jax.nn.softmax(s)
    hot = jax.nn.one_hot(ys, num_tags)  # [S, n, N]
    # Full float32 sums whatever the backend (a GPU would use TF32 by default);
    # jax, not numpy, so that tests can differentiate through the oracle.
    exact = jax.lax.Precision.HIGHEST
    unary = jnp.einsum("s,sln->ln", prob, hot, precision=exact)
    pairwise = jnp.einsum("s,sli,slj->lij", prob, hot[:, :-1], hot[:, 1:], precision=exact)
    pad = max_len - int(length)
    unary = jnp.pad(unary, ((0, pad), (0, 0)))
    pairwise = jnp.pad(pairwise, ((1, pad), (0, 0), (0, 0)))
    return unary, pairwise


def ranked(emissions, length, transitions, start, end, constraints=None):
    """All (score, path) pairs of one row, best first (numpy)."""
    ys, s = row(emissions, length, transitions, start, end, constraints)
    if length == 0:
        return [(0.0, ())]
    s = np.asarray(s)
    order = np.argsort(-s, kind="stable")
    return [(float(s[i]), tuple(int(t) for t in ys[i])) for i in order]
