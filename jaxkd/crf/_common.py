"""Input preparation shared by every CRF kernel.

Every public kernel calls :func:`prepare` first. It

* casts emissions and parameters to float32 (emissions may arrive in bfloat16),
* turns the mask into booleans and zeroes the emissions at padded positions
  (so garbage or NaN in padding can never reach a value or a gradient),
* replaces the scores of moves forbidden by ``constraints`` with :data:`NEG`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxkd.crf.constraints import Constraints

#: Finite stand-in for log(0). Large enough that a path using one forbidden
#: move can never outscore an allowed path, small enough that summing it over
#: thousands of positions stays finite in float32.
NEG = -1e9


class Prepared(NamedTuple):
    emissions: jnp.ndarray  # [B, L, N] float32, zero at padding
    mask: jnp.ndarray  # [B, L] bool
    lengths: jnp.ndarray  # [B] int32
    transitions: jnp.ndarray  # [N, N] float32
    start: jnp.ndarray  # [N] float32
    end: jnp.ndarray  # [N] float32


def prepare(emissions, mask, transitions, start, end, constraints: Constraints | None) -> Prepared:
    """Validates shapes and returns float32 inputs with constraints applied."""
    emissions = jnp.asarray(emissions)
    if emissions.ndim != 3:
        raise ValueError(f"emissions must be [B, L, N]; got shape {emissions.shape}")
    _, length, num_tags = emissions.shape
    if length < 1:
        raise ValueError("emissions need at least one position (L >= 1)")
    mask = jnp.asarray(mask).astype(bool)
    if mask.shape != emissions.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match emissions {emissions.shape[:2]}")
    transitions = jnp.asarray(transitions, jnp.float32)
    start = jnp.asarray(start, jnp.float32)
    end = jnp.asarray(end, jnp.float32)
    if transitions.shape != (num_tags, num_tags) or start.shape != (num_tags,) or end.shape != (num_tags,):
        raise ValueError(
            f"with N={num_tags} tags, transitions must be [N, N] and start/end [N]; got "
            f"{transitions.shape}, {start.shape}, {end.shape}"
        )
    if constraints is not None:
        transitions = jnp.where(constraints.transitions, transitions, NEG)
        start = jnp.where(constraints.start, start, NEG)
        end = jnp.where(constraints.end, end, NEG)
    emissions = jnp.where(mask[..., None], emissions.astype(jnp.float32), 0.0)
    lengths = mask.sum(-1).astype(jnp.int32)
    return Prepared(emissions, mask, lengths, transitions, start, end)


def time_major(x):
    """``[B, L, ...] -> [L, B, ...]`` for ``lax.scan``."""
    return jnp.swapaxes(x, 0, 1)
