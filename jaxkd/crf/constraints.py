"""Allowed-transition constraints for linear-chain CRFs.

A :class:`Constraints` holds three boolean masks. Every kernel in
:mod:`jaxkd.crf` takes ``constraints=`` and replaces the scores of disallowed
moves by the finite large negative :data:`jaxkd.crf.NEG`, so that a sequence
using one is (in practice) impossible but every value and gradient stays
finite.

:func:`jaxkd.data.scheme.bio_constraints` (next to the tag parser) derives the
masks from label names in the IOB2 (BIO) or IOBES schemes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class Constraints(NamedTuple):
    """Allowed moves of a linear-chain CRF (a JAX pytree).

    Attributes:
      transitions: ``[N, N] bool``; ``transitions[i, j]`` allows tag ``i``
        followed by tag ``j``.
      start: ``[N] bool``; tags allowed at the first position.
      end: ``[N] bool``; tags allowed at the last position.
    """

    transitions: jnp.ndarray
    start: jnp.ndarray
    end: jnp.ndarray

    @classmethod
    def none(cls, num_tags: int) -> "Constraints":
        """Constraints that allow everything, for ``num_tags`` tags."""
        return cls(
            jnp.ones((num_tags, num_tags), bool),
            jnp.ones((num_tags,), bool),
            jnp.ones((num_tags,), bool),
        )

    @classmethod
    def from_masks(cls, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> "Constraints":
        """Constraints from host (numpy) masks, as JAX arrays."""
        return cls(jnp.asarray(transitions), jnp.asarray(start), jnp.asarray(end))
