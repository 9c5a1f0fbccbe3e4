"""Dropout whose masks come from :func:`jaxkd.models.ops.dropout_mask`.

A drop-in for ``nnx.Dropout`` (same ``rate``, ``deterministic`` switch flipped
by ``model.train()`` / ``model.eval()``, keys drawn from an ``nnx.RngStream``
given at call time), without XLA's random-bit generator on the hot path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxkd.models.ops import dropout_mask


class Dropout(nnx.Module):
    """Zeroes each element with probability ``rate`` and scales the rest by
    ``1 / (1 - rate)`` when not ``deterministic`` (eval mode: identity)."""

    def __init__(self, rate: float, *, deterministic: bool = True):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.deterministic = deterministic

    @property
    def active(self) -> bool:
        """Whether a call drops anything (train mode and a positive rate)."""
        return not self.deterministic and self.rate > 0.0

    def mask(self, shape, rngs: nnx.RngStream) -> jax.Array | None:
        """A keep-mask of ``shape`` drawing one key from ``rngs``, or None when
        inactive (for callers that fold the mask into their own computation)."""
        if not self.active:
            return None
        return dropout_mask(rngs(), shape, min(self.rate, 1.0 - 2.0**-32))

    @property
    def scale(self) -> float:
        """The factor applied to kept elements."""
        return 0.0 if self.rate >= 1.0 else 1.0 / (1.0 - self.rate)

    def __call__(self, x: jax.Array, *, rngs: nnx.RngStream) -> jax.Array:
        """x: [...] float -> same shape and dtype."""
        keep = self.mask(x.shape, rngs)
        if keep is None:
            return x
        return jnp.where(keep, x * self.scale, jnp.zeros((), x.dtype))
